#include "interop/torch_file.h"

#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "interop/zip.h"
#include "util/files.h"

namespace ulmfit {
namespace {

using Kind = PickleValue::Kind;

// The legacy format's first pickle: PROTO p, [FRAME n], LONG1 of 10 bytes holding
// 0x1950a86a20f9469cfc6c (torch/serialization.py MAGIC_NUMBER), STOP. Its integer is wider
// than the unpickler's 64 bits, so it is matched byte for byte.
constexpr std::string_view kMagicLong("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 12);
constexpr int64_t kLegacyProtocolVersion = 1001;

// The magic pickle's length, or 0 when `b` does not start with it.
size_t LegacyMagicLength(std::string_view b) {
  if (b.size() < 2 || static_cast<uint8_t>(b[0]) != 0x80) return 0;
  size_t at = 2;
  if (b.size() > at && static_cast<uint8_t>(b[at]) == 0x95) at += 9;  // FRAME (protocol 4+)
  if (b.size() < at + kMagicLong.size() + 1 || b.substr(at, kMagicLong.size()) != kMagicLong ||
      b[at + kMagicLong.size()] != '.') {
    return 0;
  }
  return at + kMagicLong.size() + 1;
}

absl::Status Invalid(const std::string& name, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(name, ": ", what));
}

// A 1-D CPU tensor holding a storage's bytes.
absl::StatusOr<torch::Tensor> StorageTensor(const StorageInfo& s, std::string_view bytes,
                                            const std::string& where) {
  const int64_t element_size = c10::elementSize(s.dtype);
  if (static_cast<uint64_t>(s.numel) > bytes.size() / element_size ||
      bytes.size() != static_cast<uint64_t>(s.numel) * element_size) {
    return Invalid(where, absl::StrCat("storage ", Quoted(s.key), " has ", bytes.size(),
                                       " bytes; the pickle says ", s.numel, " elements of ",
                                       element_size, " bytes"));
  }
  torch::Tensor t = torch::empty({s.numel}, torch::TensorOptions().dtype(s.dtype));
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

// The state dict in a saved object: the object itself, or 'model' in learn.save's
// {'model': ..., 'opt': ...} (fastai tells the wrapper apart by exactly these two keys).
const PickleValue& StateDictValue(const PickleValue& root) {
  if (root.is(Kind::kDict) && root.dict().entries.size() == 2 && root.dict().Find("model") &&
      root.dict().Find("opt")) {
    return *root.dict().Find("model");
  }
  return root;
}

// Whether a file read with opaque globals is still a state dict: then the unknown classes sat
// in the optimizer state (or in metadata), which is dropped.
bool IsStateDict(const PickleValue& root) {
  const PickleValue& sd = StateDictValue(root);
  if (!sd.is(Kind::kDict)) return false;
  for (const auto& entry : sd.dict().entries) {
    if (!entry.second.is(Kind::kTensor)) return false;
  }
  return true;
}

// The saved object. The optimizer state of learn.save(with_opt=True) may hold classes outside
// the allow-list (fastai v2's hypers are a fastcore L): then the pickle is read again keeping
// those as inert names, which is accepted only if the state dict itself is plain tensors.
absl::StatusOr<Unpickled> UnpickleObject(std::string_view bytes, UnpickleOptions options) {
  absl::StatusOr<Unpickled> strict = Unpickle(bytes, options);
  if (strict.ok() || !absl::IsPermissionDenied(strict.status())) return strict;
  options.opaque_globals = true;
  absl::StatusOr<Unpickled> lenient = Unpickle(bytes, options);
  if (lenient.ok() && IsStateDict(lenient->value)) return lenient;
  return strict.status();
}

// Reads the pickle at `at`, advancing it.
absl::StatusOr<Unpickled> NextPickle(std::string_view bytes, size_t& at, const std::string& name,
                                     bool object = false) {
  UnpickleOptions options{name, at, false};
  ASSIGN_OR_RETURN(Unpickled u, object ? UnpickleObject(bytes.substr(at), options)
                                       : Unpickle(bytes.substr(at), options));
  at += u.end;
  return u;
}

absl::Status ReadLegacy(std::string_view bytes, TorchFile& file) {
  const std::string& name = file.name;
  size_t at = LegacyMagicLength(bytes);
  ASSIGN_OR_RETURN(Unpickled version, NextPickle(bytes, at, name));
  if (!version.value.is(Kind::kInt) || version.value.AsInt() != kLegacyProtocolVersion) {
    return Invalid(name, "unknown legacy torch.save protocol version (expected 1001)");
  }
  ASSIGN_OR_RETURN(Unpickled sys_info, NextPickle(bytes, at, name));
  if (sys_info.value.is(Kind::kDict)) {
    const PickleValue* little = sys_info.value.dict().Find("little_endian");
    if (little && little->is(Kind::kBool) && !little->AsBool()) {
      return Invalid(name, "saved on a big-endian machine, which is not read");
    }
  }
  ASSIGN_OR_RETURN(Unpickled object, NextPickle(bytes, at, name, /*object=*/true));
  file.root = object.value;

  const size_t keys_at = at;
  ASSIGN_OR_RETURN(Unpickled keys, NextPickle(bytes, at, name));
  if (!keys.value.is(Kind::kList)) return Invalid(name, "the storage key list is missing");
  absl::flat_hash_map<std::string, const StorageInfo*> named;
  for (const auto& s : object.storages) named[s.key] = &s;
  for (const PickleValue& key : keys.value.items()) {
    const std::string k = key.is(Kind::kString) ? key.AsString()
                          : key.is(Kind::kInt)  ? absl::StrCat(key.AsInt())
                                                : "";
    auto it = named.find(k);
    if (it == named.end() || file.storages.contains(k)) {
      return Invalid(name, absl::StrCat("byte ", keys_at, ": the storage key list names ", Quoted(k),
                                        ", which the object does not use (or names it twice)"));
    }
    if (bytes.size() - at < 8) {
      return Invalid(name, absl::StrCat("byte ", at, ": the file ends before storage '", k, "'"));
    }
    uint64_t numel = 0;
    for (int i = 7; i >= 0; --i) numel = (numel << 8) | static_cast<uint8_t>(bytes[at + i]);
    at += 8;
    const uint64_t element_size = c10::elementSize(it->second->dtype);
    if (numel != static_cast<uint64_t>(it->second->numel) || numel > (bytes.size() - at) / element_size) {
      return Invalid(name, absl::StrCat("byte ", at - 8, ": storage '", k, "' holds ", numel,
                                        " elements where ", it->second->numel, " are expected and ",
                                        (bytes.size() - at) / element_size, " remain in the file"));
    }
    ASSIGN_OR_RETURN(file.storages[k],
                     StorageTensor(*it->second, bytes.substr(at, numel * element_size), name));
    at += numel * element_size;
  }
  for (const auto& s : object.storages) {
    if (!file.storages.contains(s.key)) {
      return Invalid(name, absl::StrCat("no data for storage ", Quoted(s.key)));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadZip(std::string_view bytes, TorchFile& file) {
  const std::string& name = file.name;
  ASSIGN_OR_RETURN(std::vector<ZipEntry> entries, ReadZipDirectory(bytes, name));
  absl::flat_hash_map<std::string, const ZipEntry*> by_name;
  const ZipEntry* pickle = nullptr;
  for (const auto& e : entries) {
    by_name[e.name] = &e;
    const size_t slash = e.name.find('/');
    if (!pickle && slash != std::string::npos && e.name.substr(slash) == "/data.pkl") pickle = &e;
  }
  if (!pickle) return Invalid(name, "a zip archive without <name>/data.pkl; not a torch.save file");
  const std::string prefix = pickle->name.substr(0, pickle->name.find('/') + 1);
  if (auto it = by_name.find(prefix + "byteorder"); it != by_name.end()) {
    ASSIGN_OR_RETURN(std::string_view order, ZipEntryData(bytes, *it->second, name));
    if (order != "little") return Invalid(name, absl::StrCat("saved with byte order ", Quoted(std::string(order)), "; only 'little' is read"));
  }
  ASSIGN_OR_RETURN(std::string_view pkl, ZipEntryData(bytes, *pickle, name));
  ASSIGN_OR_RETURN(Unpickled object, UnpickleObject(pkl, {name, pickle->data_offset, false}));
  file.root = object.value;
  for (const auto& s : object.storages) {
    auto it = by_name.find(prefix + "data/" + s.key);
    if (it == by_name.end()) {
      return Invalid(name, absl::StrCat("the archive has no entry ", Quoted(prefix + "data/" + s.key),
                                        " for a storage that data.pkl names"));
    }
    ASSIGN_OR_RETURN(std::string_view data, ZipEntryData(bytes, *it->second, name));
    ASSIGN_OR_RETURN(file.storages[s.key], StorageTensor(s, data, name));
  }
  return absl::OkStatus();
}

// The first line of an exception's message (c10::Error appends a backtrace).
std::string FirstLine(const char* what) {
  std::string s = what;
  return s.substr(0, s.find('\n'));
}

}  // namespace

absl::StatusOr<torch::Tensor> TorchFile::Materialize(const TensorRef& ref) const {
  auto it = storages.find(ref.storage_key);
  if (it == storages.end()) {
    return Invalid(name, absl::StrCat("no storage ", Quoted(ref.storage_key)));
  }
  // The unpickler checked that every element lies inside the storage.
  try {
    return torch::as_strided(it->second, ref.size, ref.stride, ref.storage_offset)
        .clone(at::MemoryFormat::Contiguous);
  } catch (const c10::Error& e) {
    return Invalid(name, FirstLine(e.what_without_backtrace()));
  }
}

absl::StatusOr<TorchFile> ParseTorchFile(std::string_view bytes, const std::string& name) {
  TorchFile file;
  file.name = name;
  try {
    if (LegacyMagicLength(bytes) > 0) {
      file.legacy = true;
      RETURN_IF_ERROR(ReadLegacy(bytes, file));
    } else if (bytes.substr(0, 4) == std::string_view("PK\x03\x04", 4)) {
      RETURN_IF_ERROR(ReadZip(bytes, file));
    } else {
      std::string start;
      for (size_t i = 0; i < std::min<size_t>(bytes.size(), 4); ++i) {
        absl::StrAppendFormat(&start, " %02x", static_cast<uint8_t>(bytes[i]));
      }
      return Invalid(name, absl::StrCat("not a torch.save file (neither a zip archive nor the "
                                        "legacy format's magic number; it starts with",
                                        start.empty() ? " nothing" : start, ")"));
    }
  } catch (const c10::Error& e) {  // not expected: every size is checked before use
    return absl::InternalError(absl::StrCat(name, ": ", FirstLine(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(name, ": ", FirstLine(e.what())));
  }
  return file;
}

absl::StatusOr<TorchFile> ReadTorchFile(const std::string& path) {
  // One allocation of the file's size (util's ReadFile goes through a stringstream, which holds
  // two copies at its peak; a WT103 model is 180-220 MB).
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return absl::NotFoundError(path + ": cannot read file (missing, or not a regular file)");
  }
  std::string bytes(static_cast<size_t>(info.st_size), '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    return absl::DataLossError(path + ": cannot read file");
  }
  return ParseTorchFile(bytes, path);
}

absl::StatusOr<NamedTensors> StateDictOf(const TorchFile& file) {
  const PickleValue* sd = &StateDictValue(file.root);
  if (!sd->is(Kind::kDict)) {
    return Invalid(file.name, absl::StrCat("holds ", PickleValue::KindName(sd->kind()),
                                           ", not a state dict of tensors"));
  }
  NamedTensors out;
  for (const auto& [key, value] : sd->dict().entries) {
    if (!value.is(Kind::kTensor)) {
      return Invalid(file.name, absl::StrCat(Quoted(key), " is ", PickleValue::KindName(value.kind()),
                                             ", not a tensor; not a state dict"));
    }
    ASSIGN_OR_RETURN(torch::Tensor t, file.Materialize(value.tensor()));
    out.emplace_back(key, std::move(t));
  }
  return out;
}

absl::StatusOr<NamedTensors> ReadStateDict(const std::string& path) {
  ASSIGN_OR_RETURN(TorchFile file, ReadTorchFile(path));
  return StateDictOf(file);
}

absl::StatusOr<std::string> SerializeStateDict(const NamedTensors& tensors,
                                               const std::string& archive_name) {
  PickleValue sd = PickleValue::NewDict(/*ordered=*/true);
  std::vector<torch::Tensor> storages;  // contiguous CPU copies (or the tensors themselves)
  for (const auto& [key, tensor] : tensors) {
    if (StorageClassName(tensor.scalar_type()).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(Quoted(key), " has type ", c10::toString(tensor.scalar_type()),
                                                     ", which torch.save files do not hold"));
    }
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    size_t index = 0;
    while (index < storages.size() &&
           !(storages[index].data_ptr() == t.data_ptr() && storages[index].sizes() == t.sizes() &&
             storages[index].scalar_type() == t.scalar_type())) {
      ++index;
    }
    if (index == storages.size()) storages.push_back(t);
    TensorRef ref;
    ref.storage_key = std::to_string(index);
    ref.dtype = t.scalar_type();
    ref.storage_numel = t.numel();
    ref.size = t.sizes().vec();
    ref.stride = t.strides().vec();
    sd.mutable_dict().Set(key, PickleValue::Tensor(std::move(ref)));
  }
  ASSIGN_OR_RETURN(std::string pkl, Pickle(sd));
  const std::string dir = archive_name + "/";
  std::vector<ZipRecord> records = {{dir + "data.pkl", pkl}, {dir + "byteorder", "little"}};
  for (size_t i = 0; i < storages.size(); ++i) {
    records.push_back({dir + "data/" + std::to_string(i),
                       std::string_view(static_cast<const char*>(storages[i].data_ptr()),
                                        storages[i].nbytes())});
  }
  records.push_back({dir + "version", "3\n"});
  return WriteZip(records);
}

absl::Status WriteStateDict(const std::string& path, const NamedTensors& tensors) {
  absl::StatusOr<std::string> bytes = SerializeStateDict(tensors);
  if (!bytes.ok()) return Invalid(path, std::string(bytes.status().message()));
  return WriteFileAtomic(path, *bytes);
}

}  // namespace ulmfit
