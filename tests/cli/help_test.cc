// End-to-end tests of the ulmfit binary's command line: --help on every command, the overview,
// and usage errors that name the flag (exit 2). None loads a model or trains, so each run takes
// milliseconds.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace {
using ulmfit_test::Read;
using ulmfit_test::RunCli;
using ulmfit_test::TempDir;

class CliHelpTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir("cli_help"); }

  // Runs ulmfit with `args`; fills out_ and err_.
  int Run(const std::vector<std::string>& args) {
    const int code = RunCli(args, dir_ / "out", dir_ / "err");
    out_ = Read(dir_ / "out");
    err_ = Read(dir_ / "err");
    return code;
  }

  ulmfit_test::fs::path dir_;
  std::string out_, err_;
};

// Whether --help text lists `flag` ("--model DIR") in its flags, help on the line or the next.
bool ListsFlag(const std::string& help, const std::string& flag) {
  return help.find("\n  " + flag + " ") != std::string::npos ||
         help.find("\n  " + flag + "\n") != std::string::npos;
}

const std::vector<std::string> kCommands = {
    "run",          "predict", "evaluate",      "suggest",      "label",
    "active-learn", "lm-eval", "import-fastai", "export-fastai"};

TEST_F(CliHelpTest, OverviewListsEveryCommand) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"help"}}) {
    ASSERT_EQ(Run(args), 0) << args[0] << ": " << err_;
    EXPECT_EQ(err_, "") << args[0];
    EXPECT_EQ(out_.rfind("usage: ulmfit --config FILE [options]\n", 0), 0u) << out_;
    for (const std::string& command : kCommands) {
      EXPECT_NE(out_.find("\n  " + command + " "), std::string::npos) << command << "\n" << out_;
    }
    EXPECT_NE(out_.find("Exit codes: 0 done, 1 runtime error, 2 usage"), std::string::npos);
  }
}

TEST_F(CliHelpTest, EveryCommandAnswersHelpOnStdout) {
  for (const std::string& command : kCommands) {
    const bool model_command = command == "predict" || command == "evaluate" ||
                               command == "suggest" || command == "lm-eval" ||
                               command == "export-fastai";
    const std::string first_flag = command == "import-fastai" ? " --weights FILE.pth"
                                   : model_command            ? " --model DIR"
                                                              : " --config FILE";
    const std::string usage = "usage: ulmfit " + command + first_flag;
    // -h and `help COMMAND` for one command each: every run loads libtorch, about a second.
    std::vector<std::vector<std::string>> forms = {{command, "--help"}};
    if (command == "predict") forms.push_back({command, "-h"});
    if (command == "label") forms.push_back({"help", command});
    for (const std::vector<std::string>& args : forms) {
      ASSERT_EQ(Run(args), 0) << args[0] << " " << args[1] << ": " << err_;
      EXPECT_EQ(err_, "") << args[0] << " " << args[1];
      EXPECT_EQ(out_.rfind(usage, 0), 0u) << args[0] << " " << args[1] << ":\n" << out_;
      EXPECT_NE(out_.find("\nflags:\n"), std::string::npos) << out_;
      EXPECT_NE(out_.find("  -h, --help "), std::string::npos) << out_;
      EXPECT_NE(out_.find("'ulmfit --help' lists the other commands"), std::string::npos)
          << out_;
    }
  }
  // After the flags of a pipeline run, too; and help wins over a bad flag before it.
  ASSERT_EQ(Run({"--config", "x.yaml", "--help"}), 0) << err_;
  EXPECT_EQ(out_.rfind("usage: ulmfit run --config FILE", 0), 0u) << out_;
  ASSERT_EQ(Run({"predict", "--batch-size", "-1", "--help"}), 0) << err_;
  EXPECT_EQ(out_.rfind("usage: ulmfit predict --model DIR", 0), 0u) << out_;
}

TEST_F(CliHelpTest, HelpListsTheCommandsFlags) {
  ASSERT_EQ(Run({"suggest", "--help"}), 0) << err_;
  for (const std::string flag : {"--model DIR", "--pool FILE", "--k N", "--strategy S",
                                 "--format csv|jsonl", "--output FILE", "--column N",
                                 "--id-column N", "--seed N", "--candidates N", "--device D",
                                 "--batch-size N"}) {
    EXPECT_TRUE(ListsFlag(out_, flag)) << flag << "\n" << out_;
  }
  ASSERT_EQ(Run({"run", "--help"}), 0) << err_;
  for (const std::string flag : {"--config FILE", "--set KEY=VALUE", "--resume",
                                 "--stage pretrain|finetune|classify", "--print-config"}) {
    EXPECT_TRUE(ListsFlag(out_, flag)) << flag << "\n" << out_;
  }
}

TEST_F(CliHelpTest, UsageErrorsNameTheFlagAndExitWith2) {
  struct Case {
    std::vector<std::string> args;
    std::string message;  // the start of stderr
  };
  const std::vector<Case> cases = {
      {{"predict", "--model", "m", "--batch-size", "-1"},
       "ulmfit predict: --batch-size needs an integer >= 1, got '-1'\n"},
      {{"predict", "--model", "m", "--column", "-1"},
       "ulmfit predict: --column needs an integer >= 0, got '-1'\n"},
      {{"suggest", "--model", "m", "--pool", "p", "--k", "abc"},
       "ulmfit suggest: --k needs an integer, got 'abc'\n"},
      {{"suggest", "--model", "m", "--pool", "p", "--k", "0"},
       "ulmfit suggest: --k needs an integer >= 1, got '0'\n"},
      {{"suggest", "--model", "m", "--pool", "p", "--k", "3", "--id-column", "-2"},
       "ulmfit suggest: --id-column needs an integer >= 0, got '-2'\n"},
      {{"evaluate", "--model", "m", "--batch-size", "0", "--data", "d"},
       "ulmfit evaluate: --batch-size needs an integer >= 1, got '0'\n"},
      {{"predict", "--model", "m", "--bogus", "1"}, "ulmfit predict: unknown flag '--bogus'\n"},
      {{"predict", "--model", "m", "--batchsize", "1"},
       "ulmfit predict: unknown flag '--batchsize' (did you mean '--batch-size'?)\n"},
      {{"predict", "--model", "m", "--format", "xml"},
       "ulmfit predict: --format needs one of jsonl, csv, got 'xml'\n"},
      {{"predict"}, "ulmfit predict: --model DIR is required\n"},
      {{"evaluate", "--model", "m"}, "ulmfit evaluate: --data FILE is required\n"},
      {{"label", "--config"}, "ulmfit label: --config needs a value FILE\n"},
      {{"active-learn", "--set", "a=b"}, "ulmfit active-learn: --config FILE is required\n"},
      {{"--config", "c.yaml", "--stage", "train"},
       "ulmfit run: --stage needs one of pretrain, finetune, classify, got 'train'"},
      {{"--config", "c.yaml", "--k", "3"}, "ulmfit run: unknown flag '--k'\n"},
      {{"run", "--print-config"}, "ulmfit run: --config FILE is required\n"},
      {{"predcit", "--model", "m"},
       "ulmfit: unknown command 'predcit' (did you mean 'predict'?)\n"},
      {{"help", "nope"}, "ulmfit: unknown command 'nope'\n"},
  };
  for (const Case& c : cases) {
    std::string joined;
    for (const std::string& a : c.args) joined += a + " ";
    EXPECT_EQ(Run(c.args), 2) << joined << "\n" << err_;
    EXPECT_EQ(err_.rfind(c.message, 0), 0u) << joined << "\n" << err_;
    EXPECT_EQ(out_, "") << joined;
  }
  // No command at all: the overview, on stderr.
  EXPECT_EQ(Run({}), 2);
  EXPECT_NE(err_.find("usage: ulmfit --config FILE"), std::string::npos) << err_;
}

}  // namespace
