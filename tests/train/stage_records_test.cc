// The stage records (src/train/stage_records.*) on hand-made run directories: a finished
// stage whose settings changed is set aside, not deleted, and comes back when the settings do;
// an unfinished stage is neither resumed nor replaced with other settings (issue 18).
#include "train/stage_records.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace ulmfit {
namespace {
namespace fs = std::filesystem;
using ulmfit_test::Read;

class StageRecordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ulmfit_test::TempDir(
        std::string("records_") +
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    config_.run.output_dir = (dir_ / "run").string();
    config_.text.vocab_size = 60;
    config_.pretrain.data.train = "general.txt";
    config_.task.train = "train.tsv";
  }

  void Write(const fs::path& path, const std::string& text) const {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  // A stage's output file (and its checkpoint, as a finished stage leaves it), recorded done.
  void Finish(const Config& config, const std::string& stage, const std::string& bytes) const {
    const StageFiles files = FilesOfStage(config, stage);
    Write(files.output, bytes);
    Write(fs::path(files.dirs.front()) / "checkpoint" / "state.json", "{}");
    ASSERT_TRUE(MarkStageDone(config, stage, files.output).ok());
  }

  fs::path Run() const { return dir_ / "run"; }

  fs::path dir_;
  Config config_;
};

TEST_F(StageRecordsTest, AChangedSettingSetsTheStageAsideAndTheOldSettingsPutItBack) {
  Write(Run() / "tokenizer" / "spm.model", "tokenizer A");
  Finish(config_, "pretrain", "lm A");
  ASSERT_TRUE(*StageAlreadyDone(config_, "pretrain"));

  Config changed = config_;
  changed.pretrain.data.train = "typo.txt";
  ASSERT_FALSE(*StageAlreadyDone(changed, "pretrain"));
  // Set aside with a copy of the tokenizer; the one in place stays for the stages that read it.
  EXPECT_FALSE(fs::exists(Run() / "pretrain"));
  EXPECT_EQ(Read(Run() / "pretrain.previous" / "lm.pt"), "lm A");
  EXPECT_EQ(Read(Run() / "pretrain.previous" / "run_tokenizer" / "spm.model"), "tokenizer A");
  EXPECT_EQ(Read(Run() / "tokenizer" / "spm.model"), "tokenizer A");

  // The new settings fail after writing a tokenizer of their own and recording their start.
  ASSERT_TRUE(StartStage(changed, "pretrain", false).ok());
  Write(Run() / "tokenizer" / "spm.model", "tokenizer B, half written");
  // Still the changed settings: nothing comes back.
  EXPECT_FALSE(*StageAlreadyDone(changed, "pretrain"));

  // The typo fixed: the finished stage and its tokenizer are back, and the stage is skipped.
  ASSERT_TRUE(*StageAlreadyDone(config_, "pretrain"));
  EXPECT_EQ(Read(Run() / "pretrain" / "lm.pt"), "lm A");
  EXPECT_EQ(Read(Run() / "tokenizer" / "spm.model"), "tokenizer A");
  EXPECT_FALSE(fs::exists(Run() / "pretrain.previous"));
  EXPECT_FALSE(fs::exists(Run() / "pretrain" / "run_tokenizer"));
  EXPECT_TRUE(*StageAlreadyDone(config_, "pretrain"));
}

TEST_F(StageRecordsTest, TheClassifierStageSetsAsideBothItsFolders) {
  Finish(config_, "classify", "classifier A");
  Write(Run() / "classifier" / "best.pt", "best A");
  Config changed = config_;
  changed.classifier.bptt = 7;
  ASSERT_FALSE(*StageAlreadyDone(changed, "classify"));
  EXPECT_EQ(Read(Run() / "model.previous" / "classifier.pt"), "classifier A");
  EXPECT_EQ(Read(Run() / "classifier.previous" / "best.pt"), "best A");
  EXPECT_FALSE(fs::exists(Run() / "model"));
  EXPECT_FALSE(fs::exists(Run() / "classifier.previous" / "run_tokenizer"));
  ASSERT_TRUE(*StageAlreadyDone(config_, "classify"));
  EXPECT_EQ(Read(Run() / "model" / "classifier.pt"), "classifier A");
  EXPECT_EQ(Read(Run() / "classifier" / "best.pt"), "best A");
}

TEST_F(StageRecordsTest, AFinishedStageRemovesWhatWasSetAsideForItAndTheStagesAfterIt) {
  Finish(config_, "finetune", "finetune A");
  Finish(config_, "classify", "classifier A");
  Config changed = config_;
  changed.finetune.epochs = 7;
  ASSERT_FALSE(*StageAlreadyDone(changed, "finetune"));
  ASSERT_TRUE(fs::exists(Run() / "finetune.previous" / "lm.pt"));
  Finish(changed, "finetune", "finetune B");
  EXPECT_FALSE(fs::exists(Run() / "finetune.previous"));
  // The classifier made from finetune A is stale: set aside, then replaced by the new one.
  ASSERT_FALSE(*StageAlreadyDone(changed, "classify"));
  ASSERT_TRUE(fs::exists(Run() / "model.previous"));
  Finish(changed, "classify", "classifier B");
  for (const auto& entry : fs::directory_iterator(Run())) {
    EXPECT_EQ(entry.path().extension(), fs::path()) << entry.path();
  }
  EXPECT_EQ(Read(Run() / "model" / "classifier.pt"), "classifier B");

  // A new stage 2 also drops the classifier set aside earlier (made from the old stage 2).
  ASSERT_FALSE(*StageAlreadyDone(config_, "classify"));
  ASSERT_TRUE(fs::exists(Run() / "model.previous"));
  ASSERT_FALSE(*StageAlreadyDone(config_, "finetune"));
  Finish(config_, "finetune", "finetune C");
  EXPECT_FALSE(fs::exists(Run() / "model.previous"));
  EXPECT_FALSE(fs::exists(Run() / "classifier.previous"));
}

TEST_F(StageRecordsTest, NothingComesBackOverAnUnfinishedRunOrOntoAnotherEarlierStage) {
  Finish(config_, "pretrain", "lm A");
  Finish(config_, "finetune", "finetune A");
  Config changed = config_;
  changed.finetune.epochs = 7;
  ASSERT_FALSE(*StageAlreadyDone(changed, "finetune"));
  ASSERT_TRUE(StartStage(changed, "finetune", false).ok());
  // Interrupted with a checkpoint: the old settings neither replace it nor resume it.
  Write(Run() / "finetune" / "checkpoint" / "state.json", "{}");
  EXPECT_FALSE(*StageAlreadyDone(config_, "finetune"));
  EXPECT_TRUE(fs::exists(Run() / "finetune.previous" / "lm.pt"));
  for (const bool resume : {true, false}) {
    const absl::Status refused = CheckStageCanStart(config_, "finetune", resume);
    EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
    const std::string message(refused.message());
    EXPECT_NE(message.find("finetune.epochs: 7, but this config has 10"), std::string::npos)
        << message;
    EXPECT_NE(message.find("revert finetune.epochs to 7"), std::string::npos) << message;
    EXPECT_NE(message.find("or delete " + (Run() / "finetune").string() +
                           " to put back the finished one in " +
                           (Run() / "finetune.previous").string()),
              std::string::npos)
        << message;
    EXPECT_FALSE(StartStage(config_, "finetune", resume).ok());
  }
  // Its own settings continue it.
  EXPECT_TRUE(*StartStage(changed, "finetune", true));

  // Without the checkpoint, but with stage 1 made again with other settings since: the set-aside
  // stage 2 was made from the old stage 1 and stays aside.
  fs::remove_all(Run() / "finetune");
  Config other_pretrain = config_;
  other_pretrain.pretrain.epochs = 9;
  ASSERT_FALSE(*StageAlreadyDone(other_pretrain, "pretrain"));
  const StageFiles pretrain = FilesOfStage(config_, "pretrain");
  fs::create_directories(Run() / "pretrain");
  std::ofstream(pretrain.output) << "lm B";
  // Recorded by hand: MarkStageDone would also drop finetune.previous.
  std::ofstream(Run() / "pretrain" / "stage_settings.yaml")
      << StageSettings(other_pretrain, "pretrain");
  EXPECT_FALSE(*StageAlreadyDone(config_, "finetune"));
  EXPECT_TRUE(fs::exists(Run() / "finetune.previous" / "lm.pt"));
}

TEST_F(StageRecordsTest, AResumeOfOtherSettingsIsRefusedNamingTheKey) {
  ASSERT_FALSE(*StartStage(config_, "pretrain", true));  // nothing to continue yet
  Config bigger = config_;
  bigger.text.vocab_size = 80;
  // Nothing left to reuse: the other settings start the stage over.
  EXPECT_TRUE(CheckStageCanStart(bigger, "pretrain", true).ok());
  // A tokenizer trained at the start would be reused by --resume.
  Write(Run() / "tokenizer" / "spm.model", "60 pieces");
  absl::Status refused = CheckStageCanStart(bigger, "pretrain", true);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.message())
                .find(Run().string() + "/pretrain: holds an unfinished pretrain stage started "
                                       "with text.vocab_size: 60, but this config has 80; "
                                       "revert text.vocab_size to 60 to continue it (--resume), "
                                       "or delete " + Run().string() +
                      "/pretrain to start the stage over"),
            std::string::npos)
      << refused.message();
  EXPECT_TRUE(CheckStageCanStart(bigger, "pretrain", false).ok());  // a fresh start retrains it
  // A checkpoint: refused with or without --resume.
  Write(Run() / "pretrain" / "checkpoint" / "state.json", "{}");
  EXPECT_FALSE(CheckStageCanStart(bigger, "pretrain", false).ok());
  EXPECT_FALSE(CheckStageCanStart(bigger, "pretrain", true).ok());
  // The same settings continue; the record is untouched.
  EXPECT_TRUE(*StartStage(config_, "pretrain", true));
  EXPECT_FALSE(*StartStage(config_, "pretrain", false));
  EXPECT_EQ(Read(Run() / "pretrain" / "started_settings.yaml"), StageSettings(config_, "pretrain"));
}

TEST_F(StageRecordsTest, FirstSettingsChangeNamesTheFullKey) {
  Config changed = config_;
  changed.pretrain.data.train = "other.txt";
  const SettingsChange change = FirstSettingsChange(StageSettings(config_, "pretrain"),
                                                    StageSettings(changed, "pretrain"));
  EXPECT_EQ(change.key, "pretrain.data.train");
  EXPECT_EQ(change.before, "general.txt");
  EXPECT_EQ(change.now, "other.txt");
  EXPECT_TRUE(FirstSettingsChange(StageSettings(config_, "classify"),
                                  StageSettings(config_, "classify"))
                  .key.empty());
}

}  // namespace
}  // namespace ulmfit
