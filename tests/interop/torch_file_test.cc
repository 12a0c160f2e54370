// torch.save files (interop/torch_file.h): both formats, written by Debian's python3-torch 1.13
// (scripts/make_fastai_fixtures.py), our zip writer, and damaged or hostile files.
//
// A file written by SerializeStateDict was checked by hand with Python's reader:
//   ULMFIT_KEEP_INTEROP_FILES=/tmp/keep build/ulmfit_tests --gtest_filter='TorchFile*'
//   /usr/bin/python3 -c "import torch; sd=torch.load('/tmp/keep/written.pth'); \
//     print(type(sd).__name__, {k: (v.dtype, tuple(v.shape)) for k, v in sd.items()}); \
//     print(sd['b'].data_ptr() == sd['a'].data_ptr(), sd['c'])"
// which printed OrderedDict, the six tensors with their dtypes and shapes, True (the tied pair
// shares one storage) and tensor([[0., 3.], [1., 4.], [2., 5.]]).
#include "interop/torch_file.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "interop/pickle.h"
#include "interop/vocab.h"
#include "interop/zip.h"
#include "util/files.h"

namespace ulmfit {
namespace {

template <size_t N>
std::string B(const char (&s)[N]) {  // all the literal's bytes, NULs included
  return std::string(s, N - 1);
}

std::string Fixture(const std::string& name) {
  return std::string(ULMFIT_SOURCE_DIR) + "/tests/fixtures/fastai/" + name;
}

std::string Bytes(const std::string& fixture) {
  auto b = ReadFile(Fixture(fixture));
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? *b : "";
}

torch::Tensor Find(const NamedTensors& tensors, const std::string& key) {
  for (const auto& [k, t] : tensors) {
    if (k == key) return t;
  }
  ADD_FAILURE() << "no " << key;
  return torch::Tensor();
}

// One line starting with "<name>: ".
void ExpectOneLineError(const absl::Status& status, const std::string& name,
                        const std::string& part = "") {
  ASSERT_FALSE(status.ok()) << "accepted: " << part;
  const std::string msg(status.message());
  EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find(part), std::string::npos) << msg;
}

absl::Status ParseStateDict(const std::string& bytes, const std::string& name) {
  absl::StatusOr<TorchFile> file = ParseTorchFile(bytes, name);
  if (!file.ok()) return file.status();
  return StateDictOf(*file).status();
}

void ExpectAssortedTensors(const NamedTensors& t) {
  const auto f = torch::TensorOptions().dtype(torch::kFloat);
  EXPECT_TRUE(torch::equal(Find(t, "float"), torch::arange(6, f).reshape({2, 3})));
  EXPECT_EQ(Find(t, "half").scalar_type(), torch::kHalf);
  EXPECT_TRUE(torch::equal(Find(t, "half"), torch::arange(6, f).reshape({3, 2}).to(torch::kHalf)));
  EXPECT_EQ(Find(t, "bfloat16").scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(Find(t, "bfloat16").to(torch::kFloat), torch::arange(4, f)));
  EXPECT_TRUE(torch::equal(Find(t, "double"), torch::arange(5, torch::kDouble) / 4));
  EXPECT_TRUE(torch::equal(Find(t, "long"), torch::arange(-3, 3, torch::kLong)));
  EXPECT_TRUE(torch::equal(Find(t, "int"), torch::arange(3, torch::kInt)));
  const torch::Tensor transposed = Find(t, "transposed");
  EXPECT_TRUE(transposed.is_contiguous());
  EXPECT_TRUE(torch::equal(transposed, torch::arange(6, f).reshape({2, 3}).t()));
  EXPECT_TRUE(torch::equal(Find(t, "slice"), torch::arange(5, 11, f)));  // storage offset 5
  EXPECT_TRUE(torch::equal(Find(t, "param"), torch::arange(3, f)));     // _rebuild_parameter
  EXPECT_EQ(Find(t, "scalar").dim(), 0);
  EXPECT_EQ(Find(t, "scalar").item<float>(), 7.5f);
  EXPECT_EQ(Find(t, "empty").sizes(), (std::vector<int64_t>{0, 3}));
}

TEST(TorchFileTest, ReadsBothFormatsOfAssortedTensors) {
  for (const char* name : {"tensors_zip.pth", "tensors_legacy.pth"}) {
    SCOPED_TRACE(name);
    auto file = ReadTorchFile(Fixture(name));
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(file->legacy, std::string(name) == "tensors_legacy.pth");
    auto sd = StateDictOf(*file);
    ASSERT_TRUE(sd.ok()) << sd.status();
    ASSERT_EQ(sd->size(), 11u);
    EXPECT_EQ((*sd)[0].first, "float");  // file order
    ExpectAssortedTensors(*sd);
  }
}

TEST(TorchFileTest, UnwrapsLearnSaveWithAnOptimizerStateOfUnknownClasses) {
  // {'model': sd, 'opt': {'state': [...], 'hypers': fastcore.foundation.L(...)}}
  auto file = ReadTorchFile(Fixture("lm_v2_h12_zip.pth"));
  ASSERT_TRUE(file.ok()) << file.status();
  const PickleValue* opt = file->root.dict().Find("opt");
  ASSERT_NE(opt, nullptr);
  EXPECT_TRUE(opt->dict().Find("hypers")->is(PickleValue::Kind::kOpaque));
  EXPECT_EQ(opt->dict().Find("hypers")->AsString(), "fastcore.foundation.L");
  EXPECT_EQ(opt->dict().Find("state")->items().size(), 14u);
  auto sd = StateDictOf(*file);
  ASSERT_TRUE(sd.ok()) << sd.status();
  ASSERT_EQ(sd->size(), 16u);
  EXPECT_EQ((*sd)[0].first, "0.encoder.weight");
  EXPECT_TRUE(torch::equal((*sd)[0].second, Find(*sd, "1.decoder.weight")));
}

TEST(TorchFileTest, WrittenFilesReadBackBitIdenticalWithTiedStoragesShared) {
  torch::manual_seed(3);
  const torch::Tensor tied = torch::randn({4, 3});
  NamedTensors tensors = {{"a", tied}, {"b", tied}, {"c", torch::arange(6.0f).reshape({2, 3}).t()},
                          {"d", torch::randn({5}).to(torch::kHalf)},
                          {"e", torch::zeros({0})}, {"f", torch::tensor(2.5f)}};
  auto bytes = SerializeStateDict(tensors);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto file = ParseTorchFile(*bytes, "written.pth");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->storages.size(), 5u);  // a and b share one
  auto back = StateDictOf(*file);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ((*back)[i].first, tensors[i].first);
    EXPECT_TRUE(torch::equal((*back)[i].second, tensors[i].second)) << tensors[i].first;
    EXPECT_EQ((*back)[i].second.scalar_type(), tensors[i].second.scalar_type());
  }
  auto entries = ReadZipDirectory(*bytes, "written.pth");
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->front().name, "archive/data.pkl");
  EXPECT_EQ(entries->back().name, "archive/version");
  EXPECT_EQ(*ZipEntryData(*bytes, entries->back(), "w"), "3\n");
  EXPECT_FALSE(SerializeStateDict({{"z", torch::zeros({2}, torch::kComplexFloat)}}).ok());
  if (const char* keep = std::getenv("ULMFIT_KEEP_INTEROP_FILES")) {
    ASSERT_TRUE(WriteStateDict(std::string(keep) + "/written.pth", tensors).ok());
  }
}

// The archive with its data.pkl replaced by `pkl`, CRCs recomputed.
std::string WithPickle(const std::string& zip, const std::string& pkl) {
  const std::vector<ZipEntry> entries = ReadZipDirectory(zip, "z").value();
  std::vector<ZipRecord> records;
  for (const auto& e : entries) {
    const bool is_pkl = e.name.size() >= 8 && e.name.substr(e.name.size() - 8) == "data.pkl";
    records.push_back({e.name, is_pkl ? std::string_view(pkl) : ZipEntryData(zip, e, "z").value()});
  }
  return WriteZip(records).value();
}

TEST(TorchFileTest, LoadsStoragesOfAnyLocationOntoTheCpu) {
  const std::string zip = SerializeStateDict({{"w", torch::arange(4.0f)}}).value();
  std::string pkl(ZipEntryData(zip, ReadZipDirectory(zip, "z").value()[0], "z").value());
  const std::string cpu = B("X\x03\x00\x00\x00" "cpu"), cuda = B("X\x06\x00\x00\x00" "cuda:0");
  ASSERT_NE(pkl.find(cpu), std::string::npos);
  pkl.replace(pkl.find(cpu), cpu.size(), cuda);
  auto file = ParseTorchFile(WithPickle(zip, pkl), "gpu.pth");
  ASSERT_TRUE(file.ok()) << file.status();
  auto sd = StateDictOf(*file);
  ASSERT_TRUE(sd.ok()) << sd.status();
  EXPECT_TRUE((*sd)[0].second.device().is_cpu());
  EXPECT_TRUE(torch::equal((*sd)[0].second, torch::arange(4.0f)));
}

TEST(TorchFileTest, EveryTruncationIsAOneLineError) {
  for (const char* name : {"tensors_zip.pth", "tensors_legacy.pth", "lm_v1_h10_legacy.pth"}) {
    const std::string bytes = Bytes(name);
    // Every cut (every 7th in the larger file): inside the zip directory, the pickles, and
    // each storage's data.
    const size_t step = bytes.size() > 4000 ? 7 : 1;
    for (size_t cut = 0; cut < bytes.size(); cut += step) {
      SCOPED_TRACE(std::string(name) + " cut at " + std::to_string(cut));
      ExpectOneLineError(ParseStateDict(bytes.substr(0, cut), name), name);
      if (HasFailure()) return;
    }
  }
  // Inside the last storage of the legacy file: its int64 count says more than remains.
  const std::string legacy = Bytes("tensors_legacy.pth");
  ExpectOneLineError(ParseStateDict(legacy.substr(0, legacy.size() - 3), "t.pth"), "t.pth",
                     "remain in the file");
}

TEST(TorchFileTest, RefusesWrongMagicAndMissingEntries) {
  ExpectOneLineError(ReadTorchFile("/nonexistent/x.pth").status(), "/nonexistent/x.pth",
                     "cannot read file");
  ExpectOneLineError(ReadTorchFile(std::string(ULMFIT_SOURCE_DIR) + "/tests").status(),
                     std::string(ULMFIT_SOURCE_DIR) + "/tests");
  ExpectOneLineError(ParseStateDict("hello world", "m.pth"), "m.pth",
                     "not a torch.save file (neither a zip archive nor the legacy format's magic "
                     "number; it starts with 68 65 6c 6c)");
  ExpectOneLineError(ParseStateDict("", "m.pth"), "m.pth", "it starts with nothing");
  std::string legacy = Bytes("tensors_legacy.pth");
  legacy[5] ^= 0x40;  // inside the magic number
  ExpectOneLineError(ParseStateDict(legacy, "m.pth"), "m.pth", "not a torch.save file");

  // A zip whose data.pkl names storage "0" but holds no data/0 entry.
  TensorRef ref;
  ref.storage_key = "0";
  ref.storage_numel = 2;
  ref.size = {2};
  ref.stride = {1};
  PickleValue sd = PickleValue::NewDict(true);
  sd.mutable_dict().Set("w", PickleValue::Tensor(ref));
  const std::string pkl = Pickle(sd).value();
  const std::string no_data = WriteZip({{"archive/data.pkl", pkl}, {"archive/version", "3\n"}}).value();
  ExpectOneLineError(ParseStateDict(no_data, "n.pth"), "n.pth",
                     "the archive has no entry 'archive/data/0' for a storage that data.pkl names");
  const std::string short_data =
      WriteZip({{"archive/data.pkl", pkl}, {"archive/data/0", "1234"}}).value();
  ExpectOneLineError(ParseStateDict(short_data, "n.pth"), "n.pth",
                     "storage '0' has 4 bytes; the pickle says 2 elements of 4 bytes");
  const std::string no_pickle = WriteZip({{"archive/version", "3\n"}}).value();
  ExpectOneLineError(ParseStateDict(no_pickle, "n.pth"), "n.pth", "without <name>/data.pkl");
  const std::string big_endian =
      WriteZip({{"archive/data.pkl", pkl}, {"archive/byteorder", "big"}}).value();
  ExpectOneLineError(ParseStateDict(big_endian, "n.pth"), "n.pth", "byte order 'big'");
}

TEST(TorchFileTest, RefusesForeignGlobalsInTheModelButNotInTheOptimizerState) {
  const std::string evil = B("\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00" "ls\x85R.");
  const std::string zip = WriteZip({{"archive/data.pkl", evil}}).value();
  const uint64_t pkl_at = ReadZipDirectory(zip, "e").value()[0].data_offset;
  EXPECT_EQ(ParseStateDict(zip, "evil.pth").message(),
            "evil.pth: byte " + std::to_string(pkl_at + 2) +
                ": the pickle names global 'os.system', which a weights file may not use; only "
                "tensors and dictionaries are read");
  // {'model': {}, 'opt': os.system('ls')}: the optimizer part is an inert name, never called.
  const std::string wrapped = B(
      "\x80\x02}(X\x05\x00\x00\x00" "modelccollections\nOrderedDict\n)R"
      "X\x03\x00\x00\x00" "optcos\nsystem\nX\x02\x00\x00\x00" "ls\x85Ru.");
  auto ok = ParseTorchFile(WriteZip({{"archive/data.pkl", wrapped}}).value(), "w.pth");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->root.dict().Find("opt")->is(PickleValue::Kind::kOpaque));
  // The same object as the state dict itself is refused.
  const std::string in_model =
      B("\x80\x02}(X\x01\x00\x00\x00" "wcos\nsystem\nX\x02\x00\x00\x00" "ls\x85Ru.");
  ExpectOneLineError(ParseStateDict(WriteZip({{"archive/data.pkl", in_model}}).value(), "m.pth"),
                     "m.pth", "names global 'os.system'");
}

TEST(TorchFileTest, FuzzedFilesGiveAValueOrAnError) {
  // Seeded byte mutations of each format; the legacy file, the bare pickle and the archive
  // rebuilt around a mutated data.pkl reach the unpickler and the tensor checks (other zip
  // mutations mostly stop at a CRC). No crash, no hang, no exception.
  struct Target {
    std::string name, bytes;
  };
  const std::string zip = Bytes("lm_v2_h12_zip.pth");
  const auto entries = ReadZipDirectory(zip, "z").value();
  const std::string pkl(ZipEntryData(zip, entries[0], "z").value());
  const std::vector<Target> targets = {{"lm_v1_h10_legacy.pth", Bytes("lm_v1_h10_legacy.pth")},
                                       {"tensors_legacy.pth", Bytes("tensors_legacy.pth")},
                                       {"lm_v2_h12_zip.pth", zip},
                                       {"data.pkl", pkl},
                                       {"rezipped.pth", pkl},
                                       {"itos_p4.pkl", Bytes("itos_p4.pkl")}};
  std::mt19937 rng(20240607);
  int ok = 0, errors = 0;
  for (int i = 0; i < 600; ++i) {
    const Target& t = targets[i % targets.size()];
    std::string b = t.bytes;
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % b.size();
      switch (rng() % 4) {
        case 0: b[at] = static_cast<char>(rng()); break;
        case 1: b[at] ^= static_cast<char>(1 << (rng() % 8)); break;
        case 2: b.erase(at, 1 + rng() % 8); break;
        default: b.insert(at, 1 + rng() % 4, static_cast<char>(rng())); break;
      }
      if (b.empty()) b = "x";
    }
    absl::Status status;
    if (t.name == "rezipped.pth") b = WithPickle(zip, b);
    if (t.name == "data.pkl") {
      status = Unpickle(b, {t.name, 0, i % 2 == 0}).status();
    } else if (t.name == "itos_p4.pkl") {
      status = ParseVocabPickle(b, t.name).status();
    } else {
      status = ParseStateDict(b, t.name);
    }
    if (status.ok()) {
      ++ok;
    } else {
      ++errors;
      const std::string msg(status.message());
      EXPECT_EQ(msg.rfind(t.name + ": ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_FALSE(absl::IsInternal(status)) << "an exception escaped: " << msg;
    }
  }
  EXPECT_EQ(ok + errors, 600);
  EXPECT_GT(errors, 300);
}

}  // namespace
}  // namespace ulmfit
