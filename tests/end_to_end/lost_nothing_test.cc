// Issue 18's faults that lose work or end in "internal error": a full disk while writing a
// checkpoint, weights or the model directory, a tokenizer swapped into a model directory, bad
// config files, a directory given as input, a test label training never had.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>

#include "config/config_loader.h"
#include "model/weights.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "util/files.h"

namespace {
namespace fs = std::filesystem;
using namespace ulmfit_test;

// The output holds an ulmfit error line with `must_contain`, and no backtrace or internal error.
void ExpectOneCleanLine(const std::string& output, const std::string& must_contain) {
  EXPECT_NE(output.find(must_contain), std::string::npos) << output;
  EXPECT_EQ(output.find("internal error"), std::string::npos) << output;
  EXPECT_EQ(output.find("terminate called"), std::string::npos) << output;
  const size_t at = output.find("ulmfit: ");
  ASSERT_NE(at, std::string::npos) << output;
}

TEST(LostNothingTest, AFullDiskDuringACheckpointIsOneLineAndKeepsTheLastCheckpoint) {
  const fs::path dir = TempDir("full_disk_checkpoint");
  torch::manual_seed(1);
  torch::nn::Linear model(8, 4);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(0.1));
  ulmfit::TrainingState state;
  state.stage = "pretrain";
  state.global_step = 7;
  const std::string checkpoint = (dir / "ck").string();
  ASSERT_TRUE(ulmfit::SaveCheckpoint(checkpoint, *model, optimizer, {}, state).ok());

  // The disk fills up in the middle of the next checkpoint.
  state.global_step = 8;
  ulmfit::SetWriteLimitForTesting(300);
  const absl::Status failed = ulmfit::SaveCheckpoint(checkpoint, *model, optimizer, {}, state);
  ulmfit::SetWriteLimitForTesting(-1);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("the disk is full"), std::string::npos) << failed;
  EXPECT_EQ(std::string(failed.message()).find('\n'), std::string::npos) << failed;
  EXPECT_FALSE(fs::exists(checkpoint + ".tmp")) << "the half-written checkpoint is removed";
  std::vector<torch::Tensor> lstm;
  const auto loaded = ulmfit::LoadCheckpoint(checkpoint, *model, optimizer, &lstm);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->global_step, 7);

  // Weights too: the old file stays whole.
  const std::string weights = (dir / "w.pt").string();
  ASSERT_TRUE(ulmfit::SaveModuleWeights(*model, weights).ok());
  const auto before = LoadWeights(weights);
  ulmfit::SetWriteLimitForTesting(10);
  const absl::Status weights_failed = ulmfit::SaveModuleWeights(*model, weights);
  ulmfit::SetWriteLimitForTesting(-1);
  EXPECT_NE(weights_failed.message().find(weights + ": the disk is full"), std::string::npos)
      << weights_failed;
  EXPECT_EQ(LoadWeights(weights).size(), before.size());
}

TEST(LostNothingTest, AFullDiskAnywhereInARunIsOneLineWithExit1) {
  const fs::path dir = TempDir("full_disk_run");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  // Each limit fails a different write of the run: early (the tokenizer), mid-training, late.
  for (const char* limit : {"2000", "60000", "400000"}) {
    ::setenv("ULMFIT_TEST_WRITE_LIMIT_BYTES", limit, 1);
    const RunResult result =
        RunUlmfit({"--config", (dir / "run.yaml").string(), "--set",
                   "run.output_dir=" + (dir / (std::string("run") + limit)).string()},
                  dir / "log.txt");
    ::unsetenv("ULMFIT_TEST_WRITE_LIMIT_BYTES");
    EXPECT_EQ(result.exit_code, 1) << limit << "\n" << result.output;
    ExpectOneCleanLine(result.output, "the disk is full");
  }
}

// The real thing where the test may mount a small file system (root in a VM or container).
TEST(LostNothingTest, ARunOnASmallTmpfsStopsWithTheDiskFullLine) {
  const fs::path dir = TempDir("tmpfs_run");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  const fs::path small = dir / "small";
  fs::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=96k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (not root); the write-limit test covers it";
  }
  const RunResult result = RunUlmfit(
      {"--config", (dir / "run.yaml").string(), "--set", "run.output_dir=" + (small / "run").string()},
      dir / "log.txt");
  ::umount(small.c_str());
  EXPECT_EQ(result.exit_code, 1) << result.output;
  ExpectOneCleanLine(result.output, "the disk is full");
}

TEST(LostNothingTest, AnotherRunsTokenizerInTheModelDirectoryIsRefused) {
  const fs::path dir = TempDir("swapped_tokenizer");
  WriteTinySetup(dir, "a", /*backwards=*/false);
  ASSERT_EQ(RunUlmfit({"--config", (dir / "a.yaml").string()}, dir / "a.txt").exit_code, 0);
  // A second run's stage 1 on other text: a tokenizer of the same kind, other pieces.
  {
    std::ofstream other(dir / "other.txt");
    const std::vector<std::string> words = {"zebra", "quantum", "violin", "harbour", "lantern",
                                            "ember", "glacier", "orchid", "saddle", "tundra"};
    for (int line = 0; line < 300; ++line) {
      for (int w = 0; w < 12; ++w) other << words[(line * 7 + w * 3) % words.size()] << " ";
      other << ".\n";
    }
  }
  ASSERT_EQ(RunUlmfit({"--config", (dir / "a.yaml").string(), "--set",
                       "run.output_dir=" + (dir / "b").string(), "--stage", "pretrain", "--set",
                       "pretrain.epochs=1", "--set",
                       "pretrain.data.train=" + (dir / "other.txt").string()},
                      dir / "b.txt")
                .exit_code,
            0)
      << Read(dir / "b.txt");
  fs::copy_file(dir / "b/tokenizer/spm.model", dir / "a/model/spm.model",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "texts.txt") << "what does the cat like ?\n";
  const RunResult predicted = RunUlmfit(
      {"predict", "--model", (dir / "a").string(), "--input", (dir / "texts.txt").string()},
      dir / "p.txt");
  EXPECT_EQ(predicted.exit_code, 1) << predicted.output;
  ExpectOneCleanLine(predicted.output, "not the tokenizer this classifier was trained with");
}

TEST(LostNothingTest, ConfigFilesThatAreNotYamlTextGetOneLine) {
  const auto tabs = ulmfit::LoadConfigFromString("run:\n\toutput_dir: x\n", "tabs.yaml");
  ASSERT_FALSE(tabs.ok());
  EXPECT_EQ(tabs.status().message(),
            "tabs.yaml:2:1: tabs are not allowed for indentation in YAML; indent with spaces");
  const auto binary = ulmfit::LoadConfigFromString(std::string("\x7f" "ELF\x02\x01\x01\0\0", 9),
                                                   "ulmfit");
  ASSERT_FALSE(binary.ok());
  EXPECT_EQ(binary.status().message(),
            "ulmfit: not a text file (byte 7 is not UTF-8 text); --config takes a YAML file "
            "such as configs/default.yaml");
  const auto huge = ulmfit::LoadConfigFromString("text:\n  vocab_size: 1000000000\n", "v.yaml");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("text.vocab_size"), std::string::npos) << huge.status();
  EXPECT_NE(huge.status().message().find("at most 1000000"), std::string::npos) << huge.status();
}

TEST(LostNothingTest, AnUnseenTestLabelIsCaughtBeforeAnyStageTrains) {
  const fs::path dir = TempDir("input_checks");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  // A test label the training data never has: refused before stage 1 trains anything.
  std::ofstream(dir / "test.tsv", std::ios::app) << "weather\twill it rain in paris ?\n";
  const RunResult run = RunUlmfit({"--config", (dir / "run.yaml").string()}, dir / "run.txt");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  ExpectOneCleanLine(run.output, "the training data never had: 'weather' (1)");
  EXPECT_FALSE(fs::exists(dir / "run" / "pretrain" / "lm.pt"));
}

TEST(LostNothingTest, PredictOnADirectoryIsAnError) {
  const fs::path dir = TempDir("predict_dir");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  ASSERT_EQ(RunUlmfit({"--config", (dir / "run.yaml").string(), "--set",
                       "classifier.phase_epochs=1,1,1,1"},
                      dir / "run.txt")
                .exit_code,
            0);
  const RunResult predicted =
      RunUlmfit({"predict", "--model", (dir / "run").string(), "--input", dir.string()},
                dir / "p.txt");
  EXPECT_EQ(predicted.exit_code, 1) << predicted.output;
  ExpectOneCleanLine(predicted.output, dir.string() + ": is a directory; give a text file");
}

TEST(LostNothingTest, TheLogSaysTheTokenizersRealSizeAndWarnsOfHugeTexts) {
  const fs::path dir = TempDir("log_lines");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  // One training text far past 20 x classifier.max_len (16 in the tiny setup) tokens.
  {
    std::ofstream task(dir / "train.tsv", std::ios::app);
    task << "ANIMAL\t";
    for (int i = 0; i < 400; ++i) task << "the cat likes the dog . ";
    task << "\n";
  }
  const RunResult result = RunUlmfit(
      {"--config", (dir / "run.yaml").string(), "--set", "text.vocab_size=5000", "--set",
       "classifier.phase_epochs=1,1,1,1"},
      dir / "run.txt");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("fewer than text.vocab_size (5000)"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("classify: warning: 1 training text is longer than 320 tokens"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("max_len applies to the classifier only"), std::string::npos);
}

}  // namespace
