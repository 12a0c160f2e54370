// Writes the seed corpora of the libFuzzer targets: DIR/<target>/seed-N for config, tsv, csv,
// corpus, vocab, torch_file, checkpoint and weights, from the same small inputs as the
// in-process suite (fuzz_readers.h) and the fixtures in tests/fixtures/fastai. Inputs that
// start with a selector byte get one seed per setting. Usage: write_fuzz_seeds DIR
#include <cstdio>

#include "fuzz/targets/fuzz_target.h"

namespace ulmfit_fuzz {
namespace {

void Write(const fs::path& dir, const std::string& target, int n, std::string_view bytes) {
  fs::create_directories(dir / target);
  WriteBytes(dir / target / ("seed-" + std::to_string(n)), bytes);
}

std::string Selected(uint8_t selector, const std::string& rest) {
  return std::string(1, static_cast<char>(selector)) + rest;
}

int Main(const fs::path& dir) {
  const std::string fixtures = std::string(ULMFIT_SOURCE_DIR) + "/tests/fixtures/fastai/";
  int n = 0;
  for (const std::string& seed : ConfigSeeds()) Write(dir, "config", n++, seed);
  for (const bool csv : {false, true}) {
    n = 0;
    for (const std::string& seed : csv ? CsvSeeds() : TsvSeeds()) {
      for (const FileKind kind : {FileKind::kPlain, FileKind::kGzipped, FileKind::kRawGz}) {
        for (int variant = 0; variant < 5; ++variant) {
          // A raw .gz seed is the gzip stream itself, for the fuzzer to corrupt.
          Write(dir, csv ? "csv" : "tsv", n++,
                Selected(LabeledSelector(variant, kind),
                         kind == FileKind::kRawGz ? Gzip(seed) : seed));
        }
      }
    }
  }
  n = 0;
  for (const std::string& seed : CorpusSeeds()) {
    for (const FileKind kind : {FileKind::kPlain, FileKind::kGzipped, FileKind::kRawGz}) {
      Write(dir, "corpus", n++, Selected(static_cast<uint8_t>(kind),
                                         kind == FileKind::kRawGz ? Gzip(seed) : seed));
    }
  }
  n = 0;
  for (const char* name : kVocabFixtures) Write(dir, "vocab", n++, ReadBytes(fixtures + name));
  n = 0;
  for (const char* name : kTorchFixtures) Write(dir, "torch_file", n++, ReadBytes(fixtures + name));
  const fs::path scratch =
      fs::temp_directory_path() / ("ulmfit_seeds_" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  std::unique_ptr<TinyCheckpoint> ck = MakeTinyCheckpoint(scratch);
  if (ck == nullptr) {
    std::fprintf(stderr, "write_fuzz_seeds: cannot save the tiny checkpoint in %s\n",
                 scratch.c_str());
    return 1;
  }
  for (uint8_t file = 0; file < 4; ++file) {
    Write(dir, "checkpoint", file, Selected(file, ck->files[kCheckpointFiles[file]]));
  }
  Write(dir, "weights", 0, ck->files["model.pt"]);
  fs::remove_all(scratch);
  std::printf("seed corpora written to %s/{config,tsv,csv,corpus,vocab,torch_file,checkpoint,"
              "weights}\n", dir.c_str());
  return 0;
}

}  // namespace
}  // namespace ulmfit_fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_fuzz_seeds DIR\n");
    return 2;
  }
  return ulmfit_fuzz::Main(argv[1]);
}
