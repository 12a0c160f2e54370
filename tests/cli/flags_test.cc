// Unit tests of the subcommands' flag parser (src/cli/flags.h): values, repeats, switches, the
// errors a user meets (each naming the flag), --help, and the usage text built from the table.
#include "cli/flags.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ulmfit::cli {
namespace {

// A table with one flag of each kind, its destinations at their defaults.
struct Example {
  std::vector<std::string> models;
  std::string input = "-";
  std::string format = "jsonl";
  int batch_size = 64;
  int column = -1;
  uint64_t seed = 0;
  bool resume = false;

  FlagTable Table() {
    return {"ulmfit predict",
            "Labels texts.\n",
            {RepeatedFlag("--model", "DIR", "a run directory", &models).Required(),
             StringFlag("--input", "FILE", "the texts", &input),
             StringFlag("--format", "", "output format", &format).Choices({"jsonl", "csv"}),
             IntFlag("--batch-size", "N", "texts per forward pass", &batch_size, 1),
             IntFlag("--column", "N", "the text's column", &column, 0).Default("the whole line"),
             IntFlag("--seed", "N", "random seed", &seed, 0),
             SwitchFlag("--resume", "continue", &resume)}};
  }
};

// The error message of parsing `args`, or "" when they parsed.
std::string Error(const std::vector<std::string>& args) {
  Example example;
  const absl::StatusOr<bool> result = ParseFlags(example.Table(), args);
  return result.ok() ? "" : std::string(result.status().message());
}

TEST(CliFlagsTest, ValuesSeparateOrInline) {
  Example e;
  const absl::StatusOr<bool> help =
      ParseFlags(e.Table(), {"--model", "runs/a", "--input=in.txt", "--batch-size", "8",
                             "--column=2", "--format", "csv", "--seed=18446744", "--resume"});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_FALSE(*help);
  EXPECT_EQ(e.models, std::vector<std::string>{"runs/a"});
  EXPECT_EQ(e.input, "in.txt");
  EXPECT_EQ(e.batch_size, 8);
  EXPECT_EQ(e.column, 2);
  EXPECT_EQ(e.format, "csv");
  EXPECT_EQ(e.seed, 18446744u);
  EXPECT_TRUE(e.resume);
}

TEST(CliFlagsTest, AbsentFlagsKeepTheirDefaults) {
  Example e;
  ASSERT_TRUE(ParseFlags(e.Table(), {"--model", "m"}).ok());
  EXPECT_EQ(e.input, "-");
  EXPECT_EQ(e.format, "jsonl");
  EXPECT_EQ(e.batch_size, 64);
  EXPECT_EQ(e.column, -1);
  EXPECT_FALSE(e.resume);
}

TEST(CliFlagsTest, RepeatedFlagKeepsEveryValueInOrder) {
  Example e;
  ASSERT_TRUE(ParseFlags(e.Table(), {"--model", "fwd", "--model=bwd", "--model", "third"}).ok());
  EXPECT_EQ(e.models, (std::vector<std::string>{"fwd", "bwd", "third"}));
}

TEST(CliFlagsTest, ASingleValuedFlagGivenTwiceKeepsTheLast) {
  Example e;
  ASSERT_TRUE(ParseFlags(e.Table(), {"--model", "m", "--input", "a", "--input", "b"}).ok());
  EXPECT_EQ(e.input, "b");
}

TEST(CliFlagsTest, MissingRequiredFlagIsNamed) {
  EXPECT_EQ(Error({"--input", "x"}), "--model DIR is required");
  EXPECT_EQ(Error({}), "--model DIR is required");
}

TEST(CliFlagsTest, UnknownFlagIsNamedWithASuggestion) {
  EXPECT_EQ(Error({"--model", "m", "--batch_size", "3"}),
            "unknown flag '--batch_size' (did you mean '--batch-size'?)");
  EXPECT_EQ(Error({"--model", "m", "--inptu=x"}),
            "unknown flag '--inptu' (did you mean '--input'?)");
  EXPECT_EQ(Error({"--model", "m", "--zzzzzzzzzz"}), "unknown flag '--zzzzzzzzzz'");
  EXPECT_EQ(Error({"--model", "m", "-x"}), "unknown flag '-x'");
}

TEST(CliFlagsTest, StrayWordIsAnError) {
  EXPECT_EQ(Error({"--model", "m", "texts.txt"}),
            "unexpected argument 'texts.txt' (flags start with --)");
}

TEST(CliFlagsTest, MissingValueIsNamed) {
  EXPECT_EQ(Error({"--model"}), "--model needs a value DIR");
  // A flag where a value should be is a forgotten value, not a file named "--format".
  EXPECT_EQ(Error({"--model", "m", "--input", "--format", "csv"}), "--input needs a value FILE");
  EXPECT_EQ(Error({"--model", "m", "--input="}), "--input needs a value FILE, got ''");
}

TEST(CliFlagsTest, BadIntegerIsNamed) {
  EXPECT_EQ(Error({"--model", "m", "--batch-size", "abc"}),
            "--batch-size needs an integer, got 'abc'");
  EXPECT_EQ(Error({"--model", "m", "--batch-size=1.5"}),
            "--batch-size needs an integer, got '1.5'");
  EXPECT_EQ(Error({"--model", "m", "--batch-size", "99999999999"}),
            "--batch-size needs an integer from 1 to 2147483647, got '99999999999'");
}

TEST(CliFlagsTest, IntegerBelowTheMinimumIsNamed) {
  EXPECT_EQ(Error({"--model", "m", "--batch-size", "-1"}),
            "--batch-size needs an integer >= 1, got '-1'");
  EXPECT_EQ(Error({"--model", "m", "--batch-size", "0"}),
            "--batch-size needs an integer >= 1, got '0'");
  EXPECT_EQ(Error({"--model", "m", "--column", "-1"}), "--column needs an integer >= 0, got '-1'");
  EXPECT_EQ(Error({"--model", "m", "--seed", "-5"}), "--seed needs an integer >= 0, got '-5'");
  EXPECT_EQ(Error({"--model", "m", "--column", "0"}), "");
}

TEST(CliFlagsTest, ValueOutsideTheChoicesIsNamed) {
  EXPECT_EQ(Error({"--model", "m", "--format", "json"}),
            "--format needs one of jsonl, csv, got 'json' (did you mean 'jsonl'?)");
}

TEST(CliFlagsTest, SwitchTakesNoValue) {
  EXPECT_EQ(Error({"--model", "m", "--resume=yes"}), "--resume takes no value");
}

TEST(CliFlagsTest, HelpWinsOverEverythingElse) {
  for (const std::string help : {"-h", "--help"}) {
    Example e;
    // Even after an unknown flag and with the required --model absent.
    const absl::StatusOr<bool> result = ParseFlags(e.Table(), {"--bogus", "--batch-size", help});
    ASSERT_TRUE(result.ok()) << help << ": " << result.status();
    EXPECT_TRUE(*result) << help;
  }
}

TEST(CliFlagsTest, UsageComesFromTheTable) {
  Example e;
  const std::string usage = Usage(e.Table());
  EXPECT_EQ(usage.rfind("usage: ulmfit predict --model DIR [options]\n\nLabels texts.\n", 0), 0u)
      << usage;
  for (const std::string line :
       {"  --model DIR           a run directory (required; repeatable)\n",
        "  --input FILE          the texts (default: -)\n",
        "  --format jsonl|csv    output format (default: jsonl)\n",
        "  --batch-size N        texts per forward pass (default: 64)\n",
        "  --column N            the text's column (default: the whole line)\n",
        "  --resume              continue\n",
        "  -h, --help            show this help and exit\n"}) {
    EXPECT_NE(usage.find(line), std::string::npos) << "missing: " << line << "in:\n" << usage;
  }
}

TEST(CliFlagsTest, LongHelpWrapsUnderItsColumn) {
  std::string value;
  const FlagTable table{"ulmfit x", "", {StringFlag("--a", "V", std::string(30, 'w') + " " +
                                                                    std::string(70, 'z'),
                                                    &value)}};
  const std::string usage = Usage(table);
  EXPECT_NE(usage.find("  --a V                 " + std::string(30, 'w') + "\n" +
                       std::string(24, ' ') + std::string(70, 'z') + "\n"),
            std::string::npos)
      << usage;
}

TEST(CliFlagsTest, ClosestNameSuggestsOnlyPlausibleTypos) {
  const std::vector<std::string> commands = {"run", "predict", "evaluate", "suggest"};
  EXPECT_EQ(ClosestName("predcit", commands), "predict");
  EXPECT_EQ(ClosestName("sugest", commands), "suggest");
  EXPECT_EQ(ClosestName("eval", commands), "evaluate");
  EXPECT_EQ(ClosestName("xyz", commands), "");
  EXPECT_EQ(ClosestName("--stge", {"--stage", "--set"}), "--stage");
}

}  // namespace
}  // namespace ulmfit::cli
