// `ulmfit lm-eval` (src/cli/lm_eval_command.cc, src/train/run_language_model.*): a run's language
// model scored on a text file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using namespace ulmfit_test;

TEST(LmEvalTest, ScoresATextWithTheRunsLanguageModel) {
  const fs::path dir = TempDir("lm_eval");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  const RunResult trained =
      RunUlmfit({"--config", (dir / "run.yaml").string(), "--stage", "pretrain"}, dir / "1.txt");
  ASSERT_EQ(trained.exit_code, 0) << trained.output;

  // In-domain text (the corpus the LM learnt) against text it never saw.
  std::ofstream(dir / "other.txt") << "zebra quantum violin\nyellow zebra quantum\n";
  const RunResult own = RunUlmfit({"lm-eval", "--model", (dir / "run").string(), "--data",
                                   (dir / "general.txt").string(), "--output",
                                   (dir / "own.json").string()},
                                  dir / "own.txt");
  ASSERT_EQ(own.exit_code, 0) << own.output;
  const std::string json = Read(dir / "own.json");
  EXPECT_NE(own.output.find(json.substr(0, json.size() - 1)), std::string::npos) << own.output;
  EXPECT_NE(json.find("pretrain/lm.pt"), std::string::npos) << json;
  const double loss = JsonNumber(json, "loss");
  EXPECT_NEAR(JsonNumber(json, "perplexity"), std::exp(loss), 1e-3 * std::exp(loss)) << json;
  EXPECT_GT(JsonNumber(json, "tokens"), 1000) << json;
  EXPECT_GT(JsonNumber(json, "accuracy"), 0) << json;
  EXPECT_LT(JsonNumber(json, "perplexity"), 60) << json;  // better than uniform over 60 pieces

  const RunResult other = RunUlmfit({"lm-eval", "--model", (dir / "run").string(), "--data",
                                     (dir / "other.txt").string(), "--bptt", "4"},
                                    dir / "other.out");
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_GT(JsonNumber(other.output, "loss"), loss) << other.output;
}

TEST(LmEvalTest, AFolderWithoutALanguageModelIsOneClearError) {
  const fs::path dir = TempDir("lm_eval_bad");
  std::ofstream(dir / "text.txt") << "some text\n";
  const RunResult run = RunUlmfit({"lm-eval", "--model", dir.string(), "--data",
                                   (dir / "text.txt").string()},
                                  dir / "log.txt");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("no language model here"), std::string::npos) << run.output;
  EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << run.output;
}

}  // namespace
