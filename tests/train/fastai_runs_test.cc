// fastai models in and out of run directories (src/train/fastai_runs.*, the import-fastai and
// export-fastai commands): a fastai-layout model imports, fine-tunes and classifies end to end
// from one config, and what export-fastai writes holds the same tensors under fastai's names.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "interop/torch_file.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using namespace ulmfit_test;

const std::string kFixtures = std::string(ULMFIT_SOURCE_DIR) + "/tests/fixtures/fastai/";

// A task config whose language model comes from `pretrained` (and `vocab`, for a .pth).
fs::path WriteTaskConfig(const fs::path& dir, const std::string& run, const std::string& pretrained,
                         const std::string& vocab = "") {
  WriteTask(dir / "train.tsv", 120, 1);
  WriteTask(dir / "test.tsv", 30, 2);
  const fs::path path = dir / (run + ".yaml");
  std::ofstream(path) << "run:\n  output_dir: " << (dir / run).string()
                      << "\n  device: cpu\n  threads: 1\n"
                      << "text:\n  cache_dir: " << (dir / "cache").string() << "\n"
                      << "task:\n  train: " << (dir / "train.tsv").string()
                      << "\n  test: " << (dir / "test.tsv").string() << "\n"
                      << "finetune:\n  pretrained: " << pretrained << "\n"
                      << (vocab.empty() ? "" : "  pretrained_vocab: " + vocab + "\n")
                      << "  epochs: 1\n  batch_size: 8\n  bptt: 12\n"
                      << "classifier:\n  batch_size: 16\n  bptt: 8\n  max_len: 16\n"
                      << "  phase_epochs: [1, 1, 1, 2]\n";
  return path;
}

TEST(FastaiRunsTest, ImportedModelFineTunesClassifiesAndPredicts) {
  const fs::path dir = TempDir("fastai_e2e");
  const RunResult imported = RunUlmfit(
      {"import-fastai", "--weights", kFixtures + "lm_v2_h12_zip.pth", "--vocab",
       kFixtures + "itos_p4.pkl", "--output", (dir / "wt").string()},
      dir / "import.txt");
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  for (const char* file : {"pretrain/lm.pt", "tokenizer/words.vocab", "resolved.yaml"}) {
    EXPECT_TRUE(fs::exists(dir / "wt" / file)) << file;
  }
  EXPECT_NE(Read(dir / "wt" / "resolved.yaml").find("tokenizer: words"), std::string::npos);

  // Stages 2 and 3 from the imported run, then predict: one config, as with any stage 1.
  const fs::path config = WriteTaskConfig(dir, "run", (dir / "wt").string());
  const RunResult trained = RunUlmfit({"--config", config.string()}, dir / "train.txt");
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_TRUE(fs::exists(dir / "run" / "model" / "words.vocab"));
  EXPECT_FALSE(fs::exists(dir / "run" / "pretrain"));
  EXPECT_GT(JsonNumber(Read(dir / "run" / "test_metrics.json"), "count"), 0);
  std::ofstream(dir / "texts.txt") << "What does the cat like ?\nWhat does the city like ?\n";
  const RunResult predicted = RunUlmfit(
      {"predict", "--model", (dir / "run").string(), "--input", (dir / "texts.txt").string()},
      dir / "predict.txt");
  ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
  EXPECT_EQ(Lines(predicted.output).size(), 2u) << predicted.output;

  // A classifier's encoder goes out with --encoder; without it, one line says so.
  const std::string model_dir = (dir / "run" / "model").string();
  EXPECT_EQ(RunUlmfit({"export-fastai", "--model", model_dir, "--output",
                       (dir / "clas_enc.pth").string(), "--encoder"},
                      dir / "clas_enc.txt")
                .exit_code,
            0)
      << Read(dir / "clas_enc.txt");
  const RunResult no_flag = RunUlmfit(
      {"export-fastai", "--model", model_dir, "--output", (dir / "clas.pth").string()},
      dir / "clas.txt");
  EXPECT_EQ(no_flag.exit_code, 1) << no_flag.output;
  EXPECT_NE(no_flag.output.find("--encoder"), std::string::npos) << no_flag.output;

  // The weights file named directly, with its vocabulary: imported into the run first.
  const fs::path direct = WriteTaskConfig(dir, "direct", kFixtures + "lm_v2_h12_zip.pth",
                                          kFixtures + "itos_p4.pkl");
  const RunResult from_file = RunUlmfit({"--config", direct.string()}, dir / "direct.txt");
  ASSERT_EQ(from_file.exit_code, 0) << from_file.output;
  EXPECT_TRUE(fs::exists(dir / "direct" / "pretrained" / "pretrain" / "lm.pt"));
  EXPECT_EQ(Read(dir / "direct" / "test_metrics.json"), Read(dir / "run" / "test_metrics.json"));
}

TEST(FastaiRunsTest, ExportHoldsTheImportedTensorsUnderFastaiNames) {
  const fs::path dir = TempDir("fastai_export");
  const std::string original = kFixtures + "lm_v2_h12_zip.pth";
  ASSERT_EQ(RunUlmfit({"import-fastai", "--weights", original, "--vocab",
                       kFixtures + "itos_p4.pkl", "--output", (dir / "wt").string()},
                      dir / "import.txt")
                .exit_code,
            0);
  const RunResult exported = RunUlmfit({"export-fastai", "--model", (dir / "wt").string(),
                                        "--output", (dir / "out" / "lm.pth").string()},
                                       dir / "export.txt");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_TRUE(fs::exists(dir / "out" / "lm_itos.pkl"));

  const auto before = ulmfit::ReadStateDict(original);
  const auto after = ulmfit::ReadStateDict((dir / "out" / "lm.pth").string());
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), before->size());
  for (const auto& [name, tensor] : *after) {
    const auto match = std::find_if(before->begin(), before->end(),
                                    [&](const auto& item) { return item.first == name; });
    ASSERT_NE(match, before->end()) << name;
    EXPECT_TRUE(torch::equal(tensor, match->second)) << name;
  }

  // --encoder: save_encoder's layout, the encoder's keys without the "0." prefix.
  const RunResult encoder_export = RunUlmfit(
      {"export-fastai", "--model", (dir / "wt").string(), "--output", (dir / "e.pth").string(),
       "--encoder"},
      dir / "encoder.txt");
  ASSERT_EQ(encoder_export.exit_code, 0) << encoder_export.output;
  const auto encoder = ulmfit::ReadStateDict((dir / "e.pth").string());
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_EQ(encoder->front().first, "encoder.weight");
}

TEST(FastaiRunsTest, BadFilesAreOneLineErrors) {
  const fs::path dir = TempDir("fastai_bad");
  std::ofstream(dir / "junk.pth") << "not a weights file";
  const RunResult junk = RunUlmfit({"import-fastai", "--weights", (dir / "junk.pth").string(),
                                    "--vocab", kFixtures + "itos_p4.pkl", "--output",
                                    (dir / "wt").string()},
                                   dir / "junk.txt");
  EXPECT_EQ(junk.exit_code, 1) << junk.output;
  EXPECT_EQ(Lines(junk.output).size(), 1u) << junk.output;
  EXPECT_NE(junk.output.find("junk.pth"), std::string::npos) << junk.output;
  // The 50-token vocabulary does not fit a model with another embedding size.
  std::ofstream(dir / "short.txt") << "xxunk\nxxpad\nthe\n";
  const RunResult mismatch = RunUlmfit({"import-fastai", "--weights",
                                        kFixtures + "lm_v2_h12_zip.pth", "--vocab",
                                        (dir / "short.txt").string(), "--output",
                                        (dir / "wt").string()},
                                       dir / "mismatch.txt");
  EXPECT_EQ(mismatch.exit_code, 1) << mismatch.output;
  EXPECT_NE(mismatch.output.find("short.txt"), std::string::npos) << mismatch.output;
  EXPECT_FALSE(fs::exists(dir / "wt" / "pretrain" / "lm.pt"));
}

}  // namespace
