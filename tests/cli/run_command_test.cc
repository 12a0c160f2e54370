// End-to-end tests of the ulmfit binary on tiny corpora the tests write themselves: a full
// pretraining run, exact resume after SIGKILL, SIGTERM handling, and the errors a user meets.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include <torch/torch.h>

#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using namespace ulmfit_test;

fs::path MakeTempDir(const std::string& name) { return TempDir("cli_" + name); }

// A small synthetic corpus with enough structure for a language model to learn something.
void WriteCorpus(const fs::path& path, int lines, unsigned seed) {
  const std::vector<std::string> subjects = {"The cat", "A dog", "My friend", "The teacher",
                                             "Our neighbour", "The old man"};
  const std::vector<std::string> verbs = {"sees", "likes", "finds", "follows", "calls"};
  const std::vector<std::string> objects = {"the ball.", "a red bird.", "the green house.",
                                            "a small boat.", "the river!", "THE MOON."};
  std::mt19937 rng(seed);
  std::ofstream out(path);
  for (int i = 0; i < lines; ++i) {
    out << subjects[rng() % subjects.size()] << " " << verbs[rng() % verbs.size()] << " "
        << objects[rng() % objects.size()] << " Then " << subjects[rng() % subjects.size()]
        << " " << verbs[rng() % verbs.size()] << " " << objects[rng() % objects.size()] << "\n";
  }
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    WriteCorpus(dir_ / "train.txt", 400, 1);
    WriteCorpus(dir_ / "valid.txt", 40, 2);
  }

  // A tiny but complete configuration.
  fs::path WriteConfig(const std::string& extra = "") {
    std::ofstream out(dir_ / "config.yaml");
    out << "run:\n  output_dir: " << (dir_ / "run").string()
        << "\n  seed: 3\n  device: cpu\n  threads: 1\n"
        << "text:\n  vocab_size: 60\n  cache_dir: " << (dir_ / "cache").string() << "\n"
        << "model:\n  emb_size: 16\n  hidden_size: 32\n  num_layers: 2\n"
        << "pretrain:\n  data:\n    train: " << (dir_ / "train.txt").string()
        << "\n    valid: " << (dir_ / "valid.txt").string()
        << "\n  epochs: 3\n  batch_size: 4\n  bptt: 12\n  lr: 0.01\n"
        << extra;
    return dir_ / "config.yaml";
  }

  fs::path dir_;
};

std::string ReadText(const fs::path& path) { return Read(path); }

TEST_F(CliTest, PretrainRunsAndValidationPerplexityFalls) {
  const RunResult run = RunUlmfit({"--config", WriteConfig().string()}, dir_ / "log.txt");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(fs::exists(dir_ / "run" / "pretrain" / "lm.pt"));
  EXPECT_TRUE(fs::exists(dir_ / "run" / "resolved.yaml"));
  EXPECT_TRUE(fs::exists(dir_ / "run" / "tokenizer" / "spm.model"));
  // One train_epoch and one valid line per epoch, with falling validation loss.
  std::istringstream metrics(ReadText(dir_ / "run" / "metrics.jsonl"));
  std::vector<double> valid_losses;
  std::string line;
  while (std::getline(metrics, line)) {
    const auto pos = line.find("\"valid_loss\": ");
    if (pos != std::string::npos) valid_losses.push_back(std::stod(line.substr(pos + 14)));
  }
  ASSERT_EQ(valid_losses.size(), 3u) << ReadText(dir_ / "run" / "metrics.jsonl");
  EXPECT_LT(valid_losses[2], valid_losses[0]);

  // A second run finds the stage complete and skips it; tokenization came from the cache.
  const RunResult again = RunUlmfit({"--config", WriteConfig().string()}, dir_ / "log2.txt");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("skipping"), std::string::npos) << again.output;
}

TEST_F(CliTest, ResumeAfterSigkillGivesTheSameWeightsAsAnUninterruptedRun) {
  // Reference: uninterrupted.
  const fs::path config = WriteConfig("  max_steps: 0\n");
  const RunResult reference = RunUlmfit({"--config", config.string(), "--set",
                                         "run.output_dir=" + (dir_ / "ref").string()},
                                        dir_ / "ref.txt");
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  // Killed with SIGKILL once a mid-epoch checkpoint exists, then resumed (checkpoints every
  // ~30 ms so kills land mid-epoch).
  const fs::path state = dir_ / "run" / "pretrain" / "checkpoint" / "state.json";
  const std::vector<std::string> args = {"--config", config.string(), "--set",
                                         "run.checkpoint_minutes=0.0005"};
  const RunResult killed = RunUlmfit(args, dir_ / "killed.txt", SIGKILL, [&] {
    const std::string text = ReadText(state);
    return text.find("\"epoch\": 1,") != std::string::npos &&
           text.find("\"step_in_epoch\": 0,") == std::string::npos;
  });
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.output;
  ASSERT_FALSE(fs::exists(dir_ / "run" / "pretrain" / "lm.pt"));

  // Without --resume the user is told what to do, and nothing is overwritten.
  const RunResult refused = RunUlmfit(args, dir_ / "refused.txt");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("--resume"), std::string::npos) << refused.output;

  std::vector<std::string> resume_args = args;
  resume_args.push_back("--resume");
  const RunResult resumed = RunUlmfit(resume_args, dir_ / "resumed.txt");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming at epoch"), std::string::npos) << resumed.output;

  const auto expected = LoadWeights(dir_ / "ref" / "pretrain" / "lm.pt");
  const auto actual = LoadWeights(dir_ / "run" / "pretrain" / "lm.pt");
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(expected[i].first, actual[i].first);
    EXPECT_TRUE(torch::equal(expected[i].second, actual[i].second)) << expected[i].first;
  }
  // The metrics log has each epoch once with the same losses, as if never interrupted.
  EXPECT_EQ(Losses(dir_ / "ref" / "metrics.jsonl"), Losses(dir_ / "run" / "metrics.jsonl"));
  EXPECT_EQ(Losses(dir_ / "run" / "metrics.jsonl").size(), 6u);
}

TEST_F(CliTest, SigtermSavesACheckpointAndExitsWith143) {
  const fs::path config = WriteConfig();
  const fs::path progress = dir_ / "run" / "pretrain" / "checkpoint" / "state.json";
  // Many epochs, so the signal surely arrives before the run ends.
  const RunResult run = RunUlmfit({"--config", config.string(), "--set", "pretrain.epochs=500"},
                                  dir_ / "log.txt", SIGTERM,
                                  [&] { return fs::exists(progress); });
  ASSERT_EQ(run.exit_code, 128 + SIGTERM) << run.output;
  EXPECT_NE(run.output.find("--resume"), std::string::npos) << run.output;
  EXPECT_TRUE(fs::exists(progress));
}

TEST_F(CliTest, DivergingLossStopsAndKeepsTheLastGoodCheckpoint) {
  // An absurd learning rate without clipping blows the weights up within a few epochs.
  const fs::path config = WriteConfig("  optimizer:\n    clip: 0\n    weight_decay: 0\n");
  const RunResult run = RunUlmfit({"--config", config.string(), "--set", "pretrain.lr=1e37",
                                   "--set", "pretrain.epochs=20", "--set",
                                   "pretrain.schedule.kind=constant"},
                                  dir_ / "log.txt");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("the loss became"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(dir_ / "run" / "pretrain" / "lm.pt"));
}

// Issue 18: a batch_size far above the data was reported as "batch_size 0" (the stream length).
TEST_F(CliTest, ABatchSizeAboveTheDataNamesTheBatchSizeAndTheKey) {
  const RunResult run = RunUlmfit(
      {"--config", WriteConfig().string(), "--set", "pretrain.batch_size=100000"}, dir_ / "log");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("too few for batch_size 100000"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("lower pretrain.batch_size"), std::string::npos) << run.output;
}

// Issue 18: the non-finite-loss message promised "the last good checkpoint" when none had been
// saved yet; it now says the stage starts over.
TEST_F(CliTest, DivergingBeforeAnyCheckpointSaysTheStageStartsOver) {
  const fs::path config = WriteConfig("  optimizer:\n    clip: 0\n    weight_decay: 0\n");
  const RunResult run = RunUlmfit({"--config", config.string(), "--set", "pretrain.lr=1e37",
                                   "--set", "pretrain.schedule.kind=constant"},
                                  dir_ / "log.txt");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  ASSERT_NE(run.output.find("at epoch 1 "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("no checkpoint was saved before this step"), std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("is intact"), std::string::npos) << run.output;
}

TEST_F(CliTest, BadInputGetsOneClearLine) {
  // Misspelled key, with the file, line and a suggestion.
  {
    std::ofstream(dir_ / "typo.yaml") << "pretrain:\n  epoch: 3\n";
    const RunResult run = RunUlmfit({"--config", (dir_ / "typo.yaml").string()}, dir_ / "l1");
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.output.find("typo.yaml:2"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("epochs"), std::string::npos) << run.output;
  }
  // Malformed YAML.
  {
    std::ofstream(dir_ / "bad.yaml") << "pretrain: [unclosed\n";
    const RunResult run = RunUlmfit({"--config", (dir_ / "bad.yaml").string()}, dir_ / "l2");
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.output.find("bad.yaml"), std::string::npos) << run.output;
  }
  // Missing corpus.
  {
    const RunResult run = RunUlmfit({"--config", WriteConfig().string(), "--set",
                                     "pretrain.data.train=" + (dir_ / "nope.txt").string()},
                                    dir_ / "l3");
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.output.find("nope.txt"), std::string::npos) << run.output;
  }
  // Empty corpus.
  {
    std::ofstream(dir_ / "empty.txt") << "\n\n";
    const RunResult run = RunUlmfit({"--config", WriteConfig().string(), "--set",
                                     "pretrain.data.train=" + (dir_ / "empty.txt").string()},
                                    dir_ / "l4");
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.output.find("empty.txt"), std::string::npos) << run.output;
  }
  // Broken UTF-8 names the file and line.
  {
    std::ofstream(dir_ / "latin1.txt") << "fine line\nbad \xe9t\xe9 line\n";
    const RunResult run = RunUlmfit({"--config", WriteConfig().string(), "--set",
                                     "pretrain.data.train=" + (dir_ / "latin1.txt").string()},
                                    dir_ / "l5");
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.output.find("latin1.txt:2"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("UTF-8"), std::string::npos) << run.output;
  }
  // Unwritable output directory (a path below a regular file can never be created).
  {
    std::ofstream(dir_ / "file") << "x";
    const RunResult run = RunUlmfit({"--config", WriteConfig().string(), "--set",
                                     "run.output_dir=" + (dir_ / "file" / "run").string()},
                                    dir_ / "l6");
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.output.find("run.output_dir"), std::string::npos) << run.output;
  }
  // A number flag that is not a number names the flag (not "internal error: stoll").
  {
    const RunResult run = RunUlmfit({"suggest", "--model", "m", "--pool", "p", "--k", "ten"},
                                    dir_ / "l7");
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.output.find("--k needs an integer, got 'ten'"), std::string::npos)
        << run.output;
  }
}

TEST_F(CliTest, CorruptOrMismatchedCheckpointIsReportedAndKept) {
  const fs::path config = WriteConfig();
  const fs::path state = dir_ / "run" / "pretrain" / "checkpoint" / "state.json";
  const RunResult stopped = RunUlmfit({"--config", config.string(), "--set",
                                       "pretrain.epochs=500"}, dir_ / "log.txt", SIGTERM,
                                      [&] { return fs::exists(state); });
  ASSERT_EQ(stopped.exit_code, 128 + SIGTERM) << stopped.output;

  // A different model size cannot continue these weights: refused naming the key (issue 18),
  // checkpoint untouched.
  const RunResult mismatched = RunUlmfit({"--config", config.string(), "--resume", "--set",
                                          "model.hidden_size=48", "--set",
                                          "pretrain.epochs=500"},
                                         dir_ / "mismatch.txt");
  EXPECT_EQ(mismatched.exit_code, 1);
  EXPECT_NE(mismatched.output.find("model.hidden_size: 32, but this config has 48"),
            std::string::npos) << mismatched.output;
  EXPECT_TRUE(fs::exists(state));

  // Corrupt model weights: one line naming the file.
  const fs::path weights = dir_ / "run" / "pretrain" / "checkpoint" / "model.pt";
  std::ofstream(weights, std::ios::trunc) << "garbage";
  const RunResult corrupt = RunUlmfit({"--config", config.string(), "--resume", "--set",
                                       "pretrain.epochs=500"},
                                      dir_ / "corrupt.txt");
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_NE(corrupt.output.find("model.pt"), std::string::npos) << corrupt.output;
  EXPECT_NE(corrupt.output.find("corrupt"), std::string::npos) << corrupt.output;
}

}  // namespace
