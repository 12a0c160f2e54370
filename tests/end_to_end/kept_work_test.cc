// Issue 18, "nothing a user finished is ever lost", on the tiny three-stage setup: a changed
// setting that fails keeps the finished stages (and fixing it puts them back), two runs never
// share a run directory, and --resume never continues a stage with other settings.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using namespace ulmfit_test;
using Clock = std::chrono::steady_clock;

// Starts the binary without waiting for it; output to `log`.
pid_t Start(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::string binary = ULMFIT_BINARY;
    std::vector<std::string> copy = args;
    std::vector<char*> argv{binary.data()};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// For RunUlmfit's kill_when: true once `seconds` have passed (a run that should have stopped
// by itself long before).
std::function<bool()> After(double seconds) {
  const Clock::time_point start = Clock::now();
  return [=] { return std::chrono::duration<double>(Clock::now() - start).count() > seconds; };
}

std::vector<std::string> With(std::vector<std::string> args,
                              const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// The names in `dir` that hold set-aside outputs.
std::vector<std::string> SetAside(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".previous") != std::string::npos) names.push_back(name);
  }
  return names;
}

TEST(StageOutputsTest, ATypoInTheTaskKeepsTheFinishedStagesAndFixingItPutsThemBack) {
  const fs::path dir = TempDir("kept_typo");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  const fs::path run = dir / "run";
  const std::vector<std::string> args = {"--config", (dir / "run.yaml").string()};
  const RunResult first = RunUlmfit(args, dir / "1.txt");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string finetuned = Read(run / "finetune" / "lm.pt");
  const std::string classifier = Read(run / "model" / "classifier.pt");
  const std::string tokenizer = Read(run / "tokenizer" / "spm.model");
  ASSERT_FALSE(finetuned.empty());

  // A typo in task.train is caught before any stage starts (the test labels are checked
  // against it): nothing moves.
  const RunResult early = RunUlmfit(
      With(args, {"--set", "task.train=" + (dir / "trian.tsv").string()}), dir / "2a.txt");
  EXPECT_EQ(early.exit_code, 1) << early.output;
  EXPECT_NE(early.output.find("trian.tsv"), std::string::npos) << early.output;
  EXPECT_EQ(Read(run / "finetune" / "lm.pt"), finetuned);
  EXPECT_EQ(SetAside(run), std::vector<std::string>{});

  // One found only inside stage 2 (its unlabelled text, which stage 3 does not read).
  std::ofstream(dir / "unlabeled.txt") << "what does the dog like ?\n";
  const RunResult typo = RunUlmfit(
      With(args, {"--set", "task.unlabeled=" + (dir / "unlabelled.txt").string()}),
      dir / "2.txt");
  EXPECT_EQ(typo.exit_code, 1) << typo.output;
  EXPECT_NE(typo.output.find("unlabelled.txt"), std::string::npos) << typo.output;
  // Stage 2 is set aside until a stage 2 of the new settings finishes; stage 3 never started.
  EXPECT_NE(typo.output.find("the finished one stays in " + (run / "finetune.previous").string()),
            std::string::npos)
      << typo.output;
  EXPECT_EQ(Read(run / "finetune.previous" / "lm.pt"), finetuned);
  EXPECT_EQ(Read(run / "model" / "classifier.pt"), classifier);

  // The typo fixed: stage 2 is put back, nothing trains, and the model predicts.
  const RunResult fixed = RunUlmfit(args, dir / "3.txt");
  ASSERT_EQ(fixed.exit_code, 0) << fixed.output;
  EXPECT_NE(fixed.output.find("finetune: the settings are again those of the finished stage set "
                              "aside in " + (run / "finetune.previous").string()),
            std::string::npos)
      << fixed.output;
  EXPECT_EQ(fixed.output.find(" ep 1/"), std::string::npos) << fixed.output;
  EXPECT_EQ(Read(run / "finetune" / "lm.pt"), finetuned);
  EXPECT_EQ(Read(run / "model" / "classifier.pt"), classifier);
  EXPECT_EQ(Read(run / "tokenizer" / "spm.model"), tokenizer);
  EXPECT_EQ(SetAside(run), std::vector<std::string>{});
  std::ofstream(dir / "texts.txt") << "What does the cat like ?\n";
  ASSERT_EQ(RunCli({"predict", "--model", run.string(), "--input", (dir / "texts.txt").string()},
                   dir / "pred.out", dir / "pred.err"),
            0)
      << Read(dir / "pred.err");
  EXPECT_EQ(Lines(Read(dir / "pred.out")).size(), 1u) << Read(dir / "pred.out");

  // A change that finishes replaces stages 2 and 3 and leaves nothing aside.
  const RunResult changed = RunUlmfit(With(args, {"--set", "finetune.epochs=1"}), dir / "4.txt");
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_NE(changed.output.find("finetune: the settings changed"), std::string::npos)
      << changed.output;
  EXPECT_NE(Read(run / "finetune" / "lm.pt"), finetuned);
  EXPECT_NE(Read(run / "model" / "classifier.pt"), classifier);
  EXPECT_EQ(SetAside(run), std::vector<std::string>{});
}

TEST(StageOutputsTest, AFailedStageOneKeepsItsLanguageModelAndTokenizer) {
  const fs::path dir = TempDir("kept_pretrain");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  const fs::path run = dir / "run";
  const std::vector<std::string> args = {"--config", (dir / "run.yaml").string()};
  ASSERT_EQ(RunUlmfit(args, dir / "1.txt").exit_code, 0) << Read(dir / "1.txt");
  const std::string pretrained = Read(run / "pretrain" / "lm.pt");
  const std::string tokenizer = Read(run / "tokenizer" / "spm.model");

  const RunResult missing = RunUlmfit(
      With(args, {"--set", "pretrain.data.train=" + (dir / "genral.txt").string()}),
      dir / "2.txt");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_EQ(Read(run / "pretrain.previous" / "lm.pt"), pretrained);
  EXPECT_EQ(Read(run / "pretrain.previous" / "run_tokenizer" / "spm.model"), tokenizer);

  const RunResult fixed = RunUlmfit(args, dir / "3.txt");
  ASSERT_EQ(fixed.exit_code, 0) << fixed.output;
  EXPECT_NE(fixed.output.find("pretrain: the settings are again those"), std::string::npos)
      << fixed.output;
  EXPECT_EQ(fixed.output.find(" ep 1/"), std::string::npos) << fixed.output;
  EXPECT_EQ(Read(run / "pretrain" / "lm.pt"), pretrained);
  EXPECT_EQ(Read(run / "tokenizer" / "spm.model"), tokenizer);
  EXPECT_EQ(SetAside(run), std::vector<std::string>{});
}

TEST(RunDirLockTest, ASecondRunOnTheSameDirectoryIsRefusedAtOnceAndAKilledHolderLetsGo) {
  const fs::path dir = TempDir("lock");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  const fs::path run = dir / "run";
  const std::vector<std::string> args = {"--config", (dir / "run.yaml").string(), "--set",
                                         "pretrain.epochs=1000"};
  const pid_t first = Start(args, dir / "first.txt");
  // Until it trains: its first epoch is logged.
  bool training = false;
  for (int polls = 0; polls < 6000 && !training; ++polls) {
    training = Read(run / "metrics.jsonl").find("\"stage\": \"pretrain\"") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(training) << Read(dir / "first.txt");
  const std::string resolved = Read(run / "resolved.yaml");

  const Clock::time_point start = Clock::now();
  const RunResult second = RunUlmfit(With(args, {"--set", "text.vocab_size=80"}),
                                     dir / "second.txt", SIGKILL, After(60));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find(run.string() + ": another ulmfit run (pid " +
                               std::to_string(first) +
                               ") is using this run directory; wait for it to finish, or choose "
                               "another run.output_dir"),
            std::string::npos)
      << second.output;
  EXPECT_LT(seconds, 20) << "refused at once, before any stage";
  EXPECT_EQ(Read(run / "resolved.yaml"), resolved);
  EXPECT_EQ(::waitpid(first, nullptr, WNOHANG), 0) << "the first run goes on";

  // The lock dies with its holder: a third run gets past it (and stops at the missing stage 2).
  ::kill(first, SIGKILL);
  ::waitpid(first, nullptr, 0);
  const RunResult third = RunUlmfit(With(args, {"--stage", "classify"}), dir / "third.txt");
  EXPECT_EQ(third.exit_code, 1) << third.output;
  EXPECT_EQ(third.output.find("another ulmfit run"), std::string::npos) << third.output;
  EXPECT_NE(third.output.find("no fine-tuned language model"), std::string::npos)
      << third.output;
}

TEST(ResumeSettingsTest, AResumeWithAnotherVocabularySizeIsRefusedAndChangesNothing) {
  const fs::path dir = TempDir("resume_vocab");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  const fs::path run = dir / "run";
  const std::vector<std::string> args = {"--config", (dir / "run.yaml").string(), "--set",
                                         "pretrain.epochs=1000"};
  const fs::path state = run / "pretrain" / "checkpoint" / "state.json";
  const RunResult stopped =
      RunUlmfit(args, dir / "1.txt", SIGTERM, [&] { return fs::exists(state); });
  ASSERT_EQ(stopped.exit_code, 128 + SIGTERM) << stopped.output;
  const std::string resolved = Read(run / "resolved.yaml");
  ASSERT_NE(resolved.find("vocab_size: 60"), std::string::npos) << resolved;
  const std::string checkpoint = Read(state);
  const std::string tokenizer = Read(run / "tokenizer" / "spm.model");

  for (const bool resume : {true, false}) {
    std::vector<std::string> other = With(args, {"--set", "text.vocab_size=80"});
    if (resume) other.push_back("--resume");
    const RunResult refused = RunUlmfit(other, dir / "2.txt", SIGKILL, After(60));
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_NE(refused.output.find((run / "pretrain").string() +
                                  ": holds an unfinished pretrain stage started with "
                                  "text.vocab_size: 60, but this config has 80; revert "
                                  "text.vocab_size to 60 to continue it (--resume), or delete " +
                                  (run / "pretrain").string() + " to start the stage over"),
              std::string::npos)
        << refused.output;
    EXPECT_EQ(Read(run / "resolved.yaml"), resolved);
    EXPECT_EQ(Read(state), checkpoint);
    EXPECT_EQ(Read(run / "tokenizer" / "spm.model"), tokenizer);
  }

  // The same settings continue it (stopped again once it says so).
  const fs::path log = dir / "3.txt";
  const RunResult resumed = RunUlmfit(With(args, {"--resume"}), log, SIGTERM, [&] {
    return Read(log).find("pretrain: resuming at epoch") != std::string::npos;
  });
  EXPECT_EQ(resumed.exit_code, 128 + SIGTERM) << resumed.output;
  EXPECT_NE(resumed.output.find("pretrain: resuming at epoch"), std::string::npos)
      << resumed.output;
}

TEST(ResumeSettingsTest, AResumeOverAFinishedStageOfOtherSettingsTrainsANewTokenizer) {
  const fs::path dir = TempDir("resume_finished");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  const fs::path run = dir / "run";
  const std::vector<std::string> args = {"--config", (dir / "run.yaml").string(), "--stage",
                                         "pretrain"};
  ASSERT_EQ(RunUlmfit(args, dir / "1.txt").exit_code, 0) << Read(dir / "1.txt");
  const std::string tokenizer = Read(run / "tokenizer" / "spm.model");

  // Nothing unfinished to continue: the stage starts over, with a tokenizer of the new size.
  const RunResult smaller =
      RunUlmfit(With(args, {"--resume", "--set", "text.vocab_size=40"}), dir / "2.txt");
  ASSERT_EQ(smaller.exit_code, 0) << smaller.output;
  EXPECT_NE(smaller.output.find("training a 40-piece SentencePiece"), std::string::npos)
      << smaller.output;
  EXPECT_NE(Read(run / "tokenizer" / "spm.model"), tokenizer);
  EXPECT_NE(Read(run / "resolved.yaml").find("vocab_size: 40"), std::string::npos);
}

}  // namespace
