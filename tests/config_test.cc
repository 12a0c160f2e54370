#include "config/config.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "config/config_loader.h"
#include "gtest/gtest.h"

namespace ulmfit {
namespace {

// Like gmock's HasSubstr, without needing gmock.
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (absl::StrContains(text, part)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// The smallest valid config: the training corpus is the only required key.
constexpr char kMinimal[] = "pretrain:\n  data:\n    train: corpus.txt\n";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "config_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `text` to a file in the temp dir and returns its path.
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // Loads `yaml` (written to x.yaml) and returns the error message; fails if it loads.
  std::string LoadError(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
    absl::StatusOr<Config> config = LoadConfig(Write("x.yaml", yaml), overrides);
    EXPECT_FALSE(config.ok()) << "expected an error for:\n" << yaml;
    if (config.ok()) return "";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(config.status().message());
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, DefaultsAreTheStructDefaultsWithFastaiPreset) {
  absl::StatusOr<Config> config = LoadConfig(Write("x.yaml", kMinimal));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->preset, "fastai");
  EXPECT_EQ(config->source_path, Path("x.yaml"));
  EXPECT_EQ(config->run.output_dir, "runs/default");
  EXPECT_EQ(config->run.seed, 42u);
  EXPECT_EQ(config->text.vocab_size, 15000);
  EXPECT_EQ(config->model.emb_size, 400);
  EXPECT_EQ(config->model.hidden_size, 1152);
  EXPECT_DOUBLE_EQ(config->model.dropout.weight, 0.2);
  EXPECT_EQ(config->pretrain.data.train, "corpus.txt");
  EXPECT_EQ(config->pretrain.epochs, 10);
  // fastai v2: fixed seq_len 72 and one-cycle.
  EXPECT_EQ(config->pretrain.bptt, 72);
  EXPECT_FALSE(config->pretrain.variable_bptt);
  EXPECT_EQ(config->pretrain.schedule.kind, "one_cycle");
  EXPECT_DOUBLE_EQ(config->pretrain.lr, 1e-2);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.eps, 1e-5);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.clip, 0.1);
}

TEST_F(ConfigTest, PaperPresetChangesItsDefaultsOnly) {
  absl::StatusOr<Config> config =
      LoadConfigFromString(std::string("preset: paper\n") + kMinimal, "paper.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->preset, "paper");
  EXPECT_EQ(config->model.hidden_size, 1150);
  EXPECT_EQ(config->pretrain.schedule.kind, "stlr");
  EXPECT_DOUBLE_EQ(config->pretrain.schedule.cut_frac, 0.1);
  EXPECT_DOUBLE_EQ(config->pretrain.schedule.ratio, 32);
  EXPECT_TRUE(config->pretrain.variable_bptt);
  EXPECT_EQ(config->pretrain.bptt, 70);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.beta1, 0.7);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.beta2, 0.99);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.eps, 1e-8);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.weight_decay, 1e-7);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.clip, 0.3);
  EXPECT_DOUBLE_EQ(config->pretrain.lr, 4e-3);
  // Untouched by presets.
  EXPECT_EQ(config->model.emb_size, 400);
  EXPECT_EQ(config->pretrain.batch_size, 64);
}

TEST_F(ConfigTest, ApplyPresetIsComplete) {
  // Every field one preset sets, the other sets back.
  Config fastai;
  ApplyPreset("fastai", &fastai);
  Config round_trip;
  ApplyPreset("paper", &round_trip);
  EXPECT_NE(ConfigToYaml(round_trip), ConfigToYaml(fastai));
  ApplyPreset("fastai", &round_trip);
  EXPECT_EQ(ConfigToYaml(round_trip), ConfigToYaml(fastai));
  // Unknown names leave the config alone.
  ApplyPreset("bogus", &round_trip);
  EXPECT_EQ(ConfigToYaml(round_trip), ConfigToYaml(fastai));
}

TEST_F(ConfigTest, FileValuesOverrideThePreset) {
  absl::StatusOr<Config> config = LoadConfigFromString(
      "preset: paper\nmodel:\n  hidden_size: 2000\npretrain:\n  bptt: 50\n  lr: 1\n"
      "  data:\n    train: c.txt\n  optimizer:\n    eps: 1e-3\n",
      "x.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model.hidden_size, 2000);
  EXPECT_EQ(config->pretrain.bptt, 50);
  EXPECT_DOUBLE_EQ(config->pretrain.lr, 1.0);  // an int for a double
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.eps, 1e-3);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.clip, 0.3);  // still the preset's
  EXPECT_TRUE(config->pretrain.variable_bptt);
}

TEST_F(ConfigTest, ScalarSyntax) {
  absl::StatusOr<Config> config = LoadConfigFromString(
      "text:\n  rules: no\n  lowercase: Yes\n  max_training_sentences: 2e6\n"
      "model:\n  tie_weights: false\n  dropout: {embed: .5}\n"
      "run:\n  seed: 18446744073709551615\n  output_dir: ../runs/a b\n"
      "pretrain:\n  data:\n    train: data/wiki\n    valid:\n  lr: 3E-4\n",
      "x.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->text.rules);
  EXPECT_TRUE(config->text.lowercase);
  EXPECT_EQ(config->text.max_training_sentences, 2000000);
  EXPECT_FALSE(config->model.tie_weights);
  EXPECT_DOUBLE_EQ(config->model.dropout.embed, 0.5);
  EXPECT_EQ(config->run.seed, 18446744073709551615u);
  EXPECT_DOUBLE_EQ(config->pretrain.lr, 3e-4);
  // Relative paths stay as written.
  EXPECT_EQ(config->run.output_dir, "../runs/a b");
  EXPECT_EQ(config->pretrain.data.train, "data/wiki");
  EXPECT_EQ(config->pretrain.data.valid, "");
}

TEST_F(ConfigTest, UnknownKeyHasSuggestionAndLine) {
  const std::string message = LoadError(std::string(kMinimal) + "model:\n  hiden_size: 3\n");
  EXPECT_EQ(
      message,
      Path("x.yaml") + ":5:3: unknown key 'model.hiden_size' (did you mean 'model.hidden_size'?)");
}

TEST_F(ConfigTest, AllUnknownKeysReportedTogether) {
  const std::string message = LoadError(
      "pretrain:\n  data:\n    train: c.txt\n    vaild: v.txt\n"  // lines 1-4
      "  epoch: 3\n"                                              // 5
      "model:\n  dropout:\n    Embed: 0.1\n"                      // 6-8
      "lr: 0.1\n"                                                 // 9
      "zzzzzz: 1\n");                                             // 10
  const std::string x = Path("x.yaml");
  EXPECT_EQ(message,
            x +
                ":4:5: unknown key 'pretrain.data.vaild' (did you mean "
                "'pretrain.data.valid'?); " +
                x + ":5:3: unknown key 'pretrain.epoch' (did you mean 'pretrain.epochs'?); " + x +
                ":8:5: unknown key 'model.dropout.Embed' (did you mean "
                "'model.dropout.embed'?); " +
                x + ":9:1: unknown key 'lr' (did you mean 'pretrain.lr'?); " + x +
                ":10:1: unknown key 'zzzzzz'");
}

TEST_F(ConfigTest, DuplicateKey) {
  const std::string message = LoadError(std::string(kMinimal) + "run:\n  seed: 1\n  seed: 2\n");
  EXPECT_TRUE(Contains(message, ":6:3: duplicate key 'run.seed'"));
}

TEST_F(ConfigTest, WrongTypeNamesKeyAndExpectedType) {
  EXPECT_EQ(LoadError(std::string(kMinimal) + "  epochs: ten\n"),
            Path("x.yaml") + ":4:3: pretrain.epochs: expected an integer, got 'ten'");
  EXPECT_TRUE(Contains(LoadError(std::string(kMinimal) + "  lr: {a: 1}\n"),
                       ":4:3: pretrain.lr: expected a number, got a map"));
  EXPECT_TRUE(Contains(LoadError(std::string(kMinimal) + "  bptt: 1.5\n"),
                       "pretrain.bptt: expected an integer, got '1.5'"));
  EXPECT_TRUE(Contains(LoadError(std::string(kMinimal) + "text:\n  rules: maybe\n"),
                       ":5:3: text.rules: expected true or false"));
  EXPECT_TRUE(Contains(LoadError(std::string(kMinimal) + "run:\n  seed: -1\n"),
                       "run.seed: expected a non-negative integer, got '-1'"));
  EXPECT_TRUE(Contains(LoadError(std::string(kMinimal) + "run:\n  device: [cpu]\n"),
                       "run.device: expected a string, got a list"));
  EXPECT_TRUE(Contains(LoadError(std::string(kMinimal) + "model: 3\n"),
                       ":4:1: model: expected a section (a map of keys), got '3'"));
  EXPECT_TRUE(Contains(LoadError(std::string(kMinimal) + "  lr: .nan\n"),
                       "pretrain.lr: expected a number"));
}

TEST_F(ConfigTest, OutOfRangeNamesFileLineAndKey) {
  EXPECT_EQ(LoadError(std::string(kMinimal) + "model:\n  dropout:\n    embed: 1.5\n"),
            Path("x.yaml") + ":6:5: model.dropout.embed must be in [0, 1), got 1.5");
  // All range problems together.
  const std::string message = LoadError(std::string(kMinimal) +
                                        "  bptt: 1\n  schedule:\n    kind: one-cycle\n"
                                        "run:\n  device: gpu\n");
  EXPECT_TRUE(Contains(message, ":4:3: pretrain.bptt must be >= 2, got 1"));
  EXPECT_TRUE(Contains(message,
                       ":6:5: pretrain.schedule.kind must be one of stlr, one_cycle, "
                       "constant, got 'one-cycle' (did you mean 'one_cycle'?)"));
  EXPECT_TRUE(Contains(message, ":8:3: run.device must be auto, cpu, cuda or cuda:N, got 'gpu'"));
}

TEST_F(ConfigTest, MissingTrainDataPointsAtItsSection) {
  EXPECT_EQ(LoadError("pretrain:\n  epochs: 2\n"),
            Path("x.yaml") +
                ":1:1: pretrain.data.train is required: a text file or folder of text files "
                "(missing key)");
}

TEST_F(ConfigTest, UnknownPresetSuggests) {
  EXPECT_EQ(LoadError(std::string("preset: papr\n") + kMinimal),
            Path("x.yaml") +
                ":1:1: preset: unknown preset 'papr' (did you mean 'paper'?); choose one of "
                "fastai, paper");
}

TEST_F(ConfigTest, MalformedYaml) {
  const std::string message = LoadError("model:\n  emb_size: [1, 2\n");
  EXPECT_TRUE(absl::StartsWith(message, Path("x.yaml") + ":3:1: malformed YAML: ")) << message;
}

TEST_F(ConfigTest, EmptyOrNonMapFile) {
  EXPECT_TRUE(Contains(LoadError(""), ": the config is empty"));
  EXPECT_TRUE(Contains(LoadError("# only a comment\n"), ": the config is empty"));
  EXPECT_TRUE(Contains(LoadError("- a\n- b\n"), ":1:1: the top level must be a map"));
}

TEST_F(ConfigTest, MissingFile) {
  absl::StatusOr<Config> config = LoadConfig(Path("nope.yaml"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(config.status().message(),
            Path("nope.yaml") + ": cannot read config file (does it exist?)");
}

TEST_F(ConfigTest, SetOverridesFileAndCreatesNestedKeys) {
  absl::StatusOr<Config> config =
      LoadConfig(Write("x.yaml", "model:\n  emb_size: 300\n"),
                 {"model.emb_size=200", "pretrain.data.train=c.txt",
                  "pretrain.schedule.kind = stlr", "preset=paper", "model.dropout.embed=0.1"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model.emb_size, 200);
  EXPECT_EQ(config->pretrain.data.train, "c.txt");
  EXPECT_EQ(config->pretrain.schedule.kind, "stlr");
  EXPECT_EQ(config->preset, "paper");
  EXPECT_EQ(config->model.hidden_size, 1150);
  EXPECT_DOUBLE_EQ(config->model.dropout.embed, 0.1);
  EXPECT_EQ(config->key_locations.at("model.emb_size"), "--set model.emb_size=200");
}

TEST_F(ConfigTest, SetErrorsNameTheSet) {
  EXPECT_EQ(LoadError(kMinimal, {"model.hiden_size=3"}),
            "--set model.hiden_size=3: unknown key 'model.hiden_size' (did you mean "
            "'model.hidden_size'?)");
  EXPECT_EQ(LoadError(kMinimal, {"foo"}),
            "--set foo: expected section.key=value, e.g. --set pretrain.lr=1e-3");
  EXPECT_EQ(LoadError(kMinimal, {"pretrain.epochs=ten"}),
            "--set pretrain.epochs=ten: pretrain.epochs: expected an integer, got 'ten'");
  EXPECT_EQ(LoadError(kMinimal, {"model.dropout.embed=2"}),
            "--set model.dropout.embed=2: model.dropout.embed must be in [0, 1), got 2");
  EXPECT_TRUE(Contains(LoadError(kMinimal, {"model=1"}), "'model' is a section"));
  EXPECT_TRUE(Contains(LoadError(kMinimal, {"run.seed.x=1"}),
                       "unknown key 'run.seed.x' ('run.seed' is a value, not a section)"));
}

TEST_F(ConfigTest, ConfigToYamlRoundTrips) {
  absl::StatusOr<Config> loaded = LoadConfigFromString(
      "preset: paper\n"
      "run: {output_dir: 'runs/with: colon # and hash', seed: 7, device: 'cuda:1', threads: 3}\n"
      "text: {spm_model: 'yes', vocab_size: 32000, model_type: bpe, cache_dir: '~'}\n"
      "model: {dropout: {embed: 0.1234567890123}, drop_mult: 0.3, out_bias: false}\n"
      "pretrain:\n  data: {train: ' spaced.txt', valid: v.txt, format: lines}\n"
      "  lr: 1e-7\n  optimizer: {weight_decay: 0}\n  backwards: true\n  max_steps: 5\n",
      "x.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const std::string yaml = ConfigToYaml(*loaded);
  EXPECT_TRUE(Contains(yaml, "preset: paper\n"));
  EXPECT_TRUE(Contains(yaml, "  dropout:\n    embed: 0.1234567890123\n"));
  absl::StatusOr<Config> reloaded = LoadConfigFromString(yaml, "resolved.yaml");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status() << "\n" << yaml;
  EXPECT_EQ(ConfigToYaml(*reloaded), yaml);
  EXPECT_EQ(reloaded->run.output_dir, "runs/with: colon # and hash");
  EXPECT_EQ(reloaded->text.spm_model, "yes");
  EXPECT_EQ(reloaded->text.cache_dir, "~");
  EXPECT_EQ(reloaded->pretrain.data.train, " spaced.txt");
  EXPECT_EQ(reloaded->model.dropout.embed, 0.1234567890123);  // exact, not approximately
  EXPECT_EQ(reloaded->pretrain.lr, 1e-7);
  EXPECT_FALSE(reloaded->model.out_bias);
}

TEST_F(ConfigTest, ValidateConfigWithoutLocations) {
  Config config;
  config.pretrain.data.train = "c.txt";
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);
  config.text.vocab_size = 8;
  config.pretrain.optimizer.beta2 = 1.0;
  config.model.drop_mult = 5;  // 5 * input 0.25 >= 1
  const absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.message(),
            "config: text.vocab_size must be >= 16, got 8; config: model.drop_mult must be < 4 "
            "so that drop_mult * model.dropout.input (0.25) stays below 1, got 5; config: "
            "pretrain.optimizer.beta2 must be in [0, 1), got 1");
  config = Config();
  config.pretrain.data.train = "c.txt";
  config.run.device = "cuda:0";
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.run.device = "cuda:";
  EXPECT_FALSE(ValidateConfig(config).ok());
}

}  // namespace
}  // namespace ulmfit
