// Stage 3's training loop (src/train/clas_trainer.*) end to end on the tiny setup: a stop at
// any step resumes to the weights of an uninterrupted run, like stage 1.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using namespace ulmfit_test;

class ClasTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    WriteTinySetup(dir_, "lm", /*backwards=*/false);
    const RunResult lm = RunUlmfit({"--config", (dir_ / "lm.yaml").string(), "--stage",
                                    "pretrain"}, dir_ / "lm1.txt");
    ASSERT_EQ(lm.exit_code, 0) << lm.output;
    const RunResult tuned = RunUlmfit({"--config", (dir_ / "lm.yaml").string(), "--stage",
                                       "finetune"}, dir_ / "lm2.txt");
    ASSERT_EQ(tuned.exit_code, 0) << tuned.output;
  }

  // Stage 3 alone on the fine-tuned LM in dir_/lm, into dir_/<name>, with enough steps per
  // epoch for a signal to land mid-epoch and a checkpoint every few milliseconds.
  std::vector<std::string> ClassifyArgs(const std::string& name) const {
    return {"--config", (dir_ / "lm.yaml").string(),
            "--set", "classifier.language_model=" + (dir_ / "lm").string(),
            "--set", "run.output_dir=" + (dir_ / name).string(),
            "--set", "classifier.min_steps_per_epoch=60",
            "--set", "classifier.phase_epochs=1,1,1,1",
            "--set", "run.checkpoint_minutes=0.0003"};
  }

  void ExpectSameResultAs(const std::string& reference, const std::string& resumed) const {
    const auto expected = LoadWeights(dir_ / reference / "model" / "classifier.pt");
    const auto actual = LoadWeights(dir_ / resumed / "model" / "classifier.pt");
    ASSERT_EQ(expected.size(), actual.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(expected[i].first, actual[i].first);
      EXPECT_TRUE(torch::equal(expected[i].second, actual[i].second)) << expected[i].first;
    }
    // Each epoch logged once, with the losses of the uninterrupted run.
    EXPECT_EQ(Losses(dir_ / reference / "metrics.jsonl"), Losses(dir_ / resumed / "metrics.jsonl"));
    EXPECT_EQ(Read(dir_ / reference / "test_metrics.json"),
              Read(dir_ / resumed / "test_metrics.json"));
  }

  // True once the classifier's checkpoint stands in the middle of an epoch after the first.
  std::function<bool()> MidEpochCheckpoint(const std::string& name) const {
    const fs::path state = dir_ / name / "classifier" / "checkpoint" / "state.json";
    return [state] {
      const std::string text = Read(state);
      return text.find("\"epoch\": 1,") != std::string::npos &&
             text.find("\"step_in_epoch\": 0,") == std::string::npos;
    };
  }

  fs::path dir_;
};

TEST_F(ClasTrainerTest, SigkillMidEpochThenResumeGivesTheWeightsOfAnUninterruptedRun) {
  const RunResult reference = RunUlmfit(ClassifyArgs("ref"), dir_ / "ref.txt");
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  const RunResult killed =
      RunUlmfit(ClassifyArgs("run"), dir_ / "killed.txt", SIGKILL, MidEpochCheckpoint("run"));
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.output;
  ASSERT_FALSE(fs::exists(dir_ / "run" / "model" / "classifier.pt"));

  std::vector<std::string> resume = ClassifyArgs("run");
  resume.push_back("--resume");
  const RunResult resumed = RunUlmfit(resume, dir_ / "resumed.txt");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("classify: resuming at epoch 2 step "), std::string::npos)
      << resumed.output;
  ExpectSameResultAs("ref", "run");
}

TEST_F(ClasTrainerTest, SigtermCheckpointsTheExactStepAndExitsWith143) {
  const RunResult reference = RunUlmfit(ClassifyArgs("ref"), dir_ / "ref.txt");
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  // No periodic checkpoints: what is saved is the signal's own checkpoint.
  std::vector<std::string> args = ClassifyArgs("run");
  args.back() = "run.checkpoint_minutes=0";
  const fs::path metrics = dir_ / "run" / "metrics.jsonl";
  const RunResult stopped = RunUlmfit(args, dir_ / "stopped.txt", SIGTERM, [&] {
    return Read(metrics).find("\"epoch\": 2, \"phase\"") != std::string::npos;
  });
  ASSERT_EQ(stopped.exit_code, 128 + SIGTERM) << stopped.output;
  EXPECT_NE(stopped.output.find("checkpoint saved in"), std::string::npos) << stopped.output;
  const std::string state = Read(dir_ / "run" / "classifier" / "checkpoint" / "state.json");
  EXPECT_EQ(state.find("\"step_in_epoch\": 0,"), std::string::npos) << state;

  args.push_back("--resume");
  const RunResult resumed = RunUlmfit(args, dir_ / "resumed.txt");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  ExpectSameResultAs("ref", "run");
}

}  // namespace
