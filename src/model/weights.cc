#include "model/weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "interop/pickle.h"
#include "interop/zip.h"
#include "util/files.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

// A file's bytes through a read-only mapping: a large model's tensor data is read for its CRC
// but never copied.
class MappedFile {
 public:
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  bool Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat info {};
    bool ok = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
    size_ = ok ? static_cast<size_t>(info.st_size) : 0;
    if (ok && size_ > 0) {
      void* data = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      ok = data != MAP_FAILED;
      data_ = ok ? data : nullptr;
    }
    ::close(fd);
    return ok;
  }
  std::string_view bytes() const {
    if (data_ == nullptr) return {};
    return std::string_view(static_cast<const char*>(data_), size_);
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Why the archive is damaged, or "": its zip directory, every entry's CRC-32 (the deflated
// code/ files inflated), the pickles, and that every storage a pickle names is there and large
// enough. libtorch 1.13 checks none of it before use: it built a tensor over a shorter storage
// and read past its end, its TorchScript importer crashed on a damaged code/ file, and it
// allocated for seconds for a huge string length or memo index in data.pkl. Unknown
// classes (__torch__.Module, ...) are kept as names: only structure and lengths are checked.
// A crafted archive with valid CRCs can still crash libtorch's importer (docs/fuzzing.md).
std::string ArchiveDamage(std::string_view bytes) {
  absl::StatusOr<std::vector<ZipEntry>> entries =
      ReadZipDirectory(bytes, "zip", /*allow_compressed=*/true);
  if (!entries.ok()) return std::string(entries.status().message());
  std::map<std::string, const ZipEntry*> by_name;
  for (const ZipEntry& entry : *entries) by_name[entry.name] = &entry;
  for (const ZipEntry& entry : *entries) {
    if (absl::Status crc = CheckZipEntry(bytes, entry, "zip"); !crc.ok()) {
      return std::string(crc.message());
    }
    if (entry.name.size() < 4 || entry.name.compare(entry.name.size() - 4, 4, ".pkl") != 0) {
      continue;
    }
    absl::StatusOr<std::string_view> data = ZipEntryData(bytes, entry, "zip");
    if (!data.ok()) return std::string(data.status().message());
    absl::StatusOr<Unpickled> pickle = Unpickle(
        *data, {Quoted(entry.name), 0, /*opaque_globals=*/true, /*dense_memo=*/true});
    if (!pickle.ok()) return std::string(pickle.status().message());
    // archive/data.pkl keeps its storages in archive/data/<key>.
    const std::string folder = entry.name.substr(0, entry.name.size() - 4) + "/";
    for (const StorageInfo& storage : pickle->storages) {
      auto it = by_name.find(folder + storage.key);
      const uint64_t element_size = c10::elementSize(storage.dtype);
      if (it == by_name.end() || it->second->compressed ||
          static_cast<uint64_t>(storage.numel) > it->second->size / element_size) {
        return fmt::format("{} names a storage of {} elements that {} does not hold",
                           Quoted(entry.name), storage.numel, Quoted(folder + storage.key));
      }
    }
  }
  return "";
}

}  // namespace

std::string FirstLineOf(const std::exception& e) {
  const std::string_view text = e.what();
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return "no message";
  std::string_view line = text.substr(start, text.find_first_of("\r\n", start) - start);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  return line.size() > 300 ? std::string(line.substr(0, 300)) + "..." : std::string(line);
}

absl::Status OpenArchive(const std::string& path, const std::string& what,
                         torch::serialize::InputArchive* archive) {
  if (!fs::exists(path)) return absl::NotFoundError(fmt::format("{}: {} not found", path, what));
  auto damaged = [&](const std::string& why) {
    return absl::DataLossError(fmt::format(
        "{}: corrupt or unreadable {} ({}); delete it or restore a good copy", path, what, why));
  };
  {
    MappedFile file;
    if (!file.Open(path)) return damaged("cannot read it");
    if (std::string why = ArchiveDamage(file.bytes()); !why.empty()) return damaged(why);
  }
  try {
    archive->load_from(path);
  } catch (const c10::Error& e) {
    return damaged(FirstLineOf(e));
  } catch (const std::exception& e) {  // TorchScript's parser throws its own kinds
    return damaged(FirstLineOf(e));
  }
  return absl::OkStatus();
}

absl::Status SaveArchive(torch::serialize::OutputArchive& archive, const std::string& path) {
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        fmt::format("{}: cannot serialize: {}", path, e.what_without_backtrace()));
  }
  return WriteFileAtomic(path, bytes.str());
}

absl::Status SaveModuleWeights(const torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    archive.write(item.key(), item.value().detach().cpu());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    archive.write(item.key(), item.value().detach().cpu(), /*is_buffer=*/true);
  }
  return SaveArchive(archive, path);
}

absl::Status LoadModuleWeights(torch::nn::Module& module, const std::string& path) {
  torch::serialize::InputArchive archive;
  RETURN_IF_ERROR(OpenArchive(path, "weights file", &archive));
  torch::NoGradGuard no_grad;
  auto load_one = [&](const std::string& key, torch::Tensor& target,
                      bool is_buffer) -> absl::Status {
    torch::Tensor value;
    if (!archive.try_read(key, value, is_buffer)) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: has no '{}'; it was saved from a different model (check the model section of "
          "the config)", path, key));
    }
    if (value.sizes() != target.sizes()) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: '{}' has shape {} but the model expects {}; it was saved with different model "
          "settings or vocabulary", path, key, fmt::join(value.sizes(), "x"),
          fmt::join(target.sizes(), "x")));
    }
    // A flipped bit or a diverged run: refuse the file rather than predict NaN.
    if (value.is_floating_point() && !torch::isfinite(value).all().item<bool>()) {
      return absl::DataLossError(fmt::format(
          "{}: '{}' holds NaN or infinite values; the file is damaged or comes from a diverged "
          "run: restore a good copy or train again", path, key));
    }
    target.copy_(value);
    return absl::OkStatus();
  };
  // A damaged archive that libtorch opened can still hold values of the wrong kind.
  try {
    for (auto& item : module.named_parameters(/*recurse=*/true)) {
      RETURN_IF_ERROR(load_one(item.key(), item.value(), false));
    }
    for (auto& item : module.named_buffers(/*recurse=*/true)) {
      RETURN_IF_ERROR(load_one(item.key(), item.value(), true));
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(fmt::format(
        "{}: corrupt weights file ({}); delete it or restore a good copy", path, FirstLineOf(e)));
  }
  return absl::OkStatus();
}

}  // namespace ulmfit
