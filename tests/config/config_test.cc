#include "config/config.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "config/config_loader.h"
#include "config/schema.h"
#include "config/value_text.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace ulmfit {
namespace {

// Like gmock's HasSubstr, without needing gmock.
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (absl::StrContains(text, part)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// The smallest valid config: stage 1 only, with its training corpus.
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
  EXPECT_EQ(config->preset, Preset::kFastai);
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
  EXPECT_EQ(config->pretrain.schedule.kind, ScheduleKind::kOneCycle);
  EXPECT_DOUBLE_EQ(config->pretrain.lr, 1e-2);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.eps, 1e-5);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(config->pretrain.optimizer.clip, 0.1);
}

TEST_F(ConfigTest, PaperPresetChangesItsDefaultsOnly) {
  absl::StatusOr<Config> config =
      LoadConfigFromString(std::string("preset: paper\n") + kMinimal, "paper.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->preset, Preset::kPaper);
  EXPECT_EQ(config->model.hidden_size, 1150);
  EXPECT_EQ(config->pretrain.schedule.kind, ScheduleKind::kStlr);
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

TEST_F(ConfigTest, NothingToDoPointsAtPretrainSection) {
  EXPECT_EQ(LoadError("pretrain:\n  epochs: 2\n"),
            Path("x.yaml") +
                ":1:1: nothing to do: set pretrain.data.train (stage 1) and/or task.train "
                "(stages 2 and 3)");
  // Without a pretrain section there is no line to point at; an explicit empty value has one.
  EXPECT_EQ(LoadError("run:\n  seed: 1\nfinetune:\n  pretrained: runs/wt103\n"),
            Path("x.yaml") +
                ": nothing to do: set pretrain.data.train (stage 1) and/or task.train "
                "(stages 2 and 3)");
  EXPECT_TRUE(Contains(LoadError("task:\n  train: ''\n"),
                       ":2:3: nothing to do: set pretrain.data.train"));
}

TEST_F(ConfigTest, StageRules) {
  // Stages 2 and 3 alone need a language model from elsewhere.
  EXPECT_EQ(LoadError("task:\n  train: imdb/train\n"),
            Path("x.yaml") +
                ":2:3: task.train needs a pretrained language model: set pretrain.data.train to "
                "pretrain one, finetune.pretrained to a run directory that has "
                "pretrain/lm.pt, or classifier.language_model to one that has finetune/lm.pt");
  // A classifier on another run's fine-tuned LM needs neither.
  EXPECT_TRUE(LoadConfigFromString(
                  "task:\n  train: imdb/train\nclassifier:\n  language_model: runs/lm\n",
                  "x.yaml").ok());
  EXPECT_TRUE(LoadConfigFromString("task:\n  train: t.tsv\n  valid_fraction: 0\n"
                                   "classifier:\n  language_model: runs/lm\n  "
                                   "min_steps_per_epoch: 50\n", "x.yaml").ok());
  absl::StatusOr<Config> config = LoadConfigFromString(
      "task:\n  train: imdb/train\nfinetune:\n  pretrained: runs/wt103\n", "x.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->task.train, "imdb/train");
  EXPECT_EQ(config->finetune.pretrained, "runs/wt103");
  EXPECT_EQ(config->pretrain.data.train, "");
  // All three stages in one run.
  config = LoadConfigFromString(std::string(kMinimal) + "task:\n  train: imdb/train\n", "x.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  // The same rules without a file.
  Config code;
  EXPECT_EQ(ValidateConfig(code).message(),
            "config: nothing to do: set pretrain.data.train (stage 1) and/or task.train (stages "
            "2 and 3)");
  code.task.train = "t.tsv";
  EXPECT_TRUE(Contains(std::string(ValidateConfig(code).message()),
                       "config: task.train needs a pretrained language model"));
  code.finetune.pretrained = "runs/lm";
  EXPECT_TRUE(ValidateConfig(code).ok()) << ValidateConfig(code);
}

TEST_F(ConfigTest, UnknownPresetSuggests) {
  EXPECT_EQ(LoadError(std::string("preset: papr\n") + kMinimal),
            Path("x.yaml") +
                ":1:1: preset must be one of fastai, paper, got 'papr' (did you mean 'paper'?)");
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
  EXPECT_EQ(config->pretrain.schedule.kind, ScheduleKind::kStlr);
  EXPECT_EQ(config->preset, Preset::kPaper);
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
      "model: {dropout: {embed: 0.1234567890123}, drop_mult: 0.3, out_bias: false, backwards: true}\n"
      "pretrain:\n  data: {train: ' spaced.txt', valid: v.txt, format: lines}\n"
      "  lr: 1e-7\n  optimizer: {weight_decay: 0}\n  max_steps: 5\n",
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
  EXPECT_TRUE(reloaded->model.backwards);
}

TEST_F(ConfigTest, StageSectionsParseAndRoundTrip) {
  absl::StatusOr<Config> loaded = LoadConfigFromString(
      "task:\n"
      "  train: data/train.csv.gz\n  valid: v.csv\n  test: t.csv\n  unlabeled: data/unsup\n"
      "  valid_fraction: 0.2\n  format: csv\n  label_column: sentiment\n"
      "  text_columns: title, body\n  header: 'no'\n  max_train_examples: 1000\n"
      "  max_valid_examples: 200\n  max_test_examples: 300\n  max_unlabeled: 400\n"
      "finetune:\n"
      "  pretrained: runs/wt103\n  use_test_text: false\n  epochs: 0\n  batch_size: 32\n"
      "  bptt: 60\n  variable_bptt: true\n  lr: 1e-3\n  discriminative: scripts\n"
      "  lr_factor: 3\n  frozen_epochs: 2\n  frozen_lr: 0.03\n  drop_mult: 0.7\n"
      "  schedule: {kind: stlr, cut_frac: 0.2}\n  optimizer: {clip: 0.25}\n  ar_alpha: 1\n"
      "  tar_beta: 0.5\n  mixed_precision: true\n  max_steps: 3\n"
      "classifier:\n"
      "  dropout: {embed: 0.1, input: 0.2, weight: 0.3, hidden: 0.4, output: 0.45}\n"
      "  drop_mult: 2\n  hidden: 100\n  head_dropout: 0.2\n  batch_size: 16\n  bptt: 50\n"
      "  max_len: 500\n  phase_groups: 2, all\n  phase_epochs: 0,3\n  phase_lrs: 1e-2,2.5e-3\n"
      "  lr_factor: 2\n  schedule: {kind: constant}\n  optimizer: {weight_decay: 0.1}\n"
      "  ar_alpha: 0\n  tar_beta: 0\n  select_metric: macro_f1\n  mixed_precision: true\n"
      "  max_steps: 4\n",
      "x.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const std::string yaml = ConfigToYaml(*loaded);
  // The new sections come after pretrain, in table order.
  const size_t pretrain = yaml.find("\npretrain:\n");
  const size_t task = yaml.find("\ntask:\n");
  const size_t finetune = yaml.find("\nfinetune:\n");
  const size_t classifier = yaml.find("\nclassifier:\n");
  ASSERT_NE(classifier, std::string::npos) << yaml;
  EXPECT_LT(pretrain, task);
  EXPECT_LT(task, finetune);
  EXPECT_LT(finetune, classifier);
  absl::StatusOr<Config> reloaded = LoadConfigFromString(yaml, "resolved.yaml");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status() << "\n" << yaml;
  EXPECT_EQ(ConfigToYaml(*reloaded), yaml);
  EXPECT_EQ(reloaded->task.max_valid_examples, 200);
  EXPECT_EQ(reloaded->task.max_test_examples, 300);
  EXPECT_EQ(reloaded->task.max_unlabeled, 400);

  for (const Config* c : {&*loaded, &*reloaded}) {
    const TaskDataConfig& t = c->task;
    EXPECT_EQ(t.train, "data/train.csv.gz");
    EXPECT_EQ(t.valid, "v.csv");
    EXPECT_EQ(t.test, "t.csv");
    EXPECT_EQ(t.unlabeled, "data/unsup");
    EXPECT_EQ(t.valid_fraction, 0.2);
    EXPECT_EQ(t.format, TaskFormat::kCsv);
    EXPECT_EQ(t.label_column, "sentiment");
    EXPECT_EQ(t.text_columns, (std::vector<std::string>{"title", "body"}));
    EXPECT_EQ(t.header, HeaderMode::kNo);
    EXPECT_EQ(t.max_train_examples, 1000);

    const FinetuneConfig& f = c->finetune;
    EXPECT_EQ(f.pretrained, "runs/wt103");
    EXPECT_FALSE(f.use_test_text);
    EXPECT_EQ(f.epochs, 0);
    EXPECT_EQ(f.batch_size, 32);
    EXPECT_EQ(f.bptt, 60);
    EXPECT_TRUE(f.variable_bptt);
    EXPECT_EQ(f.lr, 1e-3);
    EXPECT_EQ(f.discriminative, Discriminative::kScripts);
    EXPECT_EQ(f.lr_factor, 3);
    EXPECT_EQ(f.frozen_epochs, 2);
    EXPECT_EQ(f.frozen_lr, 0.03);
    EXPECT_EQ(f.drop_mult, 0.7);
    EXPECT_EQ(f.schedule.kind, ScheduleKind::kStlr);
    EXPECT_EQ(f.schedule.cut_frac, 0.2);
    EXPECT_EQ(f.optimizer.clip, 0.25);
    EXPECT_EQ(f.ar_alpha, 1);
    EXPECT_EQ(f.tar_beta, 0.5);
    EXPECT_TRUE(f.mixed_precision);
    EXPECT_EQ(f.max_steps, 3);

    const ClassifierConfig& k = c->classifier;
    EXPECT_EQ(k.dropout.embed, 0.1);
    EXPECT_EQ(k.dropout.input, 0.2);
    EXPECT_EQ(k.dropout.weight, 0.3);
    EXPECT_EQ(k.dropout.hidden, 0.4);
    EXPECT_EQ(k.dropout.output, 0.45);
    EXPECT_EQ(k.drop_mult, 2);
    EXPECT_EQ(k.hidden, 100);
    EXPECT_EQ(k.head_dropout, 0.2);
    EXPECT_EQ(k.batch_size, 16);
    EXPECT_EQ(k.bptt, 50);
    EXPECT_EQ(k.max_len, 500);
    EXPECT_EQ(k.phase_groups, (std::vector<GroupCount>{2, GroupCount::kAll}));
    EXPECT_EQ(k.phase_epochs, (std::vector<int>{0, 3}));
    EXPECT_EQ(k.phase_lrs, (std::vector<double>{1e-2, 2.5e-3}));
    EXPECT_EQ(k.lr_factor, 2);
    EXPECT_EQ(k.schedule.kind, ScheduleKind::kConstant);
    EXPECT_EQ(k.optimizer.weight_decay, 0.1);
    EXPECT_EQ(k.ar_alpha, 0);
    EXPECT_EQ(k.tar_beta, 0);
    EXPECT_EQ(k.select_metric, SelectMetric::kMacroF1);
    EXPECT_TRUE(k.mixed_precision);
    EXPECT_EQ(k.max_steps, 4);
  }
}

TEST_F(ConfigTest, StageSectionKeysWorkWithSetAndSuggestions) {
  absl::StatusOr<Config> config =
      LoadConfig(Write("x.yaml", kMinimal),
                 {"classifier.optimizer.clip=5", "task.header=yes", "finetune.epochs=3"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->classifier.optimizer.clip, 5);
  EXPECT_EQ(config->task.header, HeaderMode::kYes);
  EXPECT_EQ(config->finetune.epochs, 3);
  EXPECT_EQ(LoadError(std::string(kMinimal) + "finetune:\n  frozen_epoch: 1\n"),
            Path("x.yaml") +
                ":5:3: unknown key 'finetune.frozen_epoch' (did you mean "
                "'finetune.frozen_epochs'?)");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "select_metric: loss\n"),
            Path("x.yaml") +
                ":4:1: unknown key 'select_metric' (did you mean 'classifier.select_metric'?)");
}

TEST_F(ConfigTest, FastaiPresetKeepsTheStageStructDefaults) {
  Config fastai;
  ApplyPreset("fastai", &fastai);
  Config defaults;
  Config only_new_sections;  // the defaults with the preset's stage 2 and 3 sections
  only_new_sections.task = fastai.task;
  only_new_sections.finetune = fastai.finetune;
  only_new_sections.classifier = fastai.classifier;
  EXPECT_EQ(ConfigToYaml(only_new_sections), ConfigToYaml(defaults));
  // The paper preset does change them (so the comparison above can fail).
  Config paper;
  ApplyPreset("paper", &paper);
  only_new_sections.finetune = paper.finetune;
  EXPECT_NE(ConfigToYaml(only_new_sections), ConfigToYaml(defaults));
}

TEST_F(ConfigTest, PaperPresetStageValues) {
  absl::StatusOr<Config> config = LoadConfigFromString(
      "preset: paper\ntask:\n  train: t.tsv\nfinetune:\n  pretrained: runs/lm\n", "x.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const FinetuneConfig& f = config->finetune;
  EXPECT_DOUBLE_EQ(f.lr, 4e-3);
  EXPECT_EQ(f.schedule.kind, ScheduleKind::kStlr);
  EXPECT_DOUBLE_EQ(f.schedule.cut_frac, 0.1);
  EXPECT_DOUBLE_EQ(f.schedule.ratio, 32);
  EXPECT_EQ(f.discriminative, Discriminative::kFactor);
  EXPECT_DOUBLE_EQ(f.lr_factor, 2.6);
  EXPECT_EQ(f.frozen_epochs, 0);
  EXPECT_EQ(f.bptt, 70);
  EXPECT_TRUE(f.variable_bptt);
  EXPECT_DOUBLE_EQ(f.drop_mult, 1.0);
  EXPECT_DOUBLE_EQ(f.optimizer.beta1, 0.7);
  EXPECT_DOUBLE_EQ(f.optimizer.beta2, 0.99);
  EXPECT_DOUBLE_EQ(f.optimizer.eps, 1e-8);
  EXPECT_DOUBLE_EQ(f.optimizer.weight_decay, 1e-7);
  EXPECT_DOUBLE_EQ(f.optimizer.clip, 0.3);
  EXPECT_EQ(f.epochs, 10);  // untouched by presets

  const ClassifierConfig& c = config->classifier;
  EXPECT_DOUBLE_EQ(c.drop_mult, 1.0);
  EXPECT_EQ(c.bptt, 70);
  EXPECT_EQ(c.max_len, 1400);
  EXPECT_EQ(c.phase_groups, (std::vector<GroupCount>{1, 2, GroupCount::kAll}));
  EXPECT_EQ(c.phase_epochs, (std::vector<int>{1, 1, 48}));
  EXPECT_EQ(c.phase_lrs, (std::vector<double>{1e-2, 1e-2, 1e-2}));
  EXPECT_DOUBLE_EQ(c.lr_factor, 2.6);
  EXPECT_EQ(c.schedule.kind, ScheduleKind::kStlr);
  EXPECT_DOUBLE_EQ(c.schedule.cut_frac, 0.1);
  EXPECT_DOUBLE_EQ(c.schedule.ratio, 32);
  EXPECT_DOUBLE_EQ(c.optimizer.beta1, 0.7);
  EXPECT_DOUBLE_EQ(c.optimizer.beta2, 0.99);
  EXPECT_DOUBLE_EQ(c.optimizer.eps, 1e-8);
  EXPECT_DOUBLE_EQ(c.optimizer.weight_decay, 1e-6);
  EXPECT_DOUBLE_EQ(c.optimizer.clip, 25);
  EXPECT_DOUBLE_EQ(c.dropout.output, 0.4);  // the paper's values are the struct defaults
  EXPECT_EQ(c.hidden, 50);
  absl::StatusOr<std::vector<UnfreezePhase>> phases = ParsePhases(c);
  ASSERT_TRUE(phases.ok()) << phases.status();
  ASSERT_EQ(phases->size(), 3u);
  EXPECT_EQ((*phases)[2].groups, 0);
  EXPECT_EQ((*phases)[0].epochs + (*phases)[1].epochs + (*phases)[2].epochs, 50);
}

TEST_F(ConfigTest, ParsePhasesValues) {
  ClassifierConfig fastai;  // fastbook chapter 10
  absl::StatusOr<std::vector<UnfreezePhase>> phases = ParsePhases(fastai);
  ASSERT_TRUE(phases.ok()) << phases.status();
  ASSERT_EQ(phases->size(), 4u);
  const int groups[] = {1, 2, 3, 0};
  const int epochs[] = {1, 1, 1, 2};
  const double lrs[] = {2e-2, 1e-2, 5e-3, 1e-3};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*phases)[i].groups, groups[i]) << i;
    EXPECT_EQ((*phases)[i].epochs, epochs[i]) << i;
    EXPECT_EQ((*phases)[i].lr, lrs[i]) << i;
  }
  ClassifierConfig one;
  one.phase_groups = {GroupCount::kAll};
  one.phase_epochs = {5};
  one.phase_lrs = {0.5};
  phases = ParsePhases(one);
  ASSERT_TRUE(phases.ok()) << phases.status();
  ASSERT_EQ(phases->size(), 1u);
  EXPECT_EQ((*phases)[0].groups, 0);
  EXPECT_EQ((*phases)[0].epochs, 5);
  EXPECT_EQ((*phases)[0].lr, 0.5);
  // A config built in code may break the rules ValidateConfig checks; errors name the key and
  // the item, without a location.
  one.phase_groups = {4, -1};
  one.phase_epochs = {0, 2};
  one.phase_lrs = {1e-3, 1e-3};
  phases = ParsePhases(one);
  ASSERT_FALSE(phases.ok());
  EXPECT_EQ(phases.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(phases.status().message(),
            "classifier.phase_groups items must be positive integers or 'all', got '-1' (item 2 "
            "of [4, -1])");
  one.phase_groups = {4, 2};
  one.phase_lrs = {1e-3};
  phases = ParsePhases(one);
  ASSERT_FALSE(phases.ok());
  EXPECT_EQ(phases.status().message(),
            "classifier.phase_lrs has 1 items ([0.001]) but classifier.phase_groups has 2 "
            "([4, 2]); the phase lists need one item per phase each");
}

TEST_F(ConfigTest, PhaseListsOfDifferentLengths) {
  EXPECT_EQ(LoadError(std::string(kMinimal) +
                      "classifier:\n  phase_groups: 1,2,all\n  phase_epochs: 1,1\n"
                      "  phase_lrs: 1e-2,1e-2,1e-2\n"),
            Path("x.yaml") +
                ":6:3: classifier.phase_epochs has 2 items ([1, 1]) but classifier.phase_groups "
                "has 3 ([1, 2, all]); the phase lists need one item per phase each");
  // Changing one list alone leaves the others at the preset's four phases.
  const std::string message =
      LoadError(std::string(kMinimal) + "classifier:\n  phase_groups: 1,all\n");
  EXPECT_TRUE(Contains(message, ":4:1: classifier.phase_epochs has 4 items ([1, 1, 1, 2]) but "
                                "classifier.phase_groups has 2 ([1, all])"));
  EXPECT_TRUE(Contains(message, ":4:1: classifier.phase_lrs has 4 items"));
}

TEST_F(ConfigTest, BadPhaseItemsNameKeyAndItem) {
  const std::string x = Path("x.yaml");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "classifier:\n  phase_groups: 1,0,3,every\n"),
            x + ":5:3: classifier.phase_groups items must be positive integers or 'all', got '0' "
                "(item 2 of '1,0,3,every'); " +
                x + ":5:3: classifier.phase_groups items must be positive integers or 'all', "
                    "got 'every' (item 4 of '1,0,3,every')");
  // Items of the wrong type are found by the loader (the list as written), items out of range
  // by ValidateConfig (the list as parsed).
  EXPECT_EQ(LoadError(std::string(kMinimal) + "classifier:\n  phase_epochs: 1,-1,1,2\n"),
            x + ":5:3: classifier.phase_epochs items must be integers >= 0, got '-1' (item 2 of "
                "[1, -1, 1, 2])");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "classifier:\n  phase_epochs: 1,1,1,1.5\n"),
            x + ":5:3: classifier.phase_epochs items must be integers, got '1.5' (item 4 of "
                "'1,1,1,1.5')");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "classifier:\n  phase_epochs: 0,0,0,0\n"),
            x + ":5:3: classifier.phase_epochs must add up to at least 1 epoch, got "
                "[0, 0, 0, 0]");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "classifier:\n  phase_lrs: 1e-2,,1e-3,1e-3\n"),
            x + ":5:3: classifier.phase_lrs items must be numbers, got '' (item 2 of "
                "'1e-2,,1e-3,1e-3')");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "classifier:\n  phase_lrs: 1e-2,1e-2,0,1e-3\n"),
            x + ":5:3: classifier.phase_lrs items must be numbers > 0, got '0' (item 3 of "
                "[0.01, 0.01, 0, 0.001])");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "classifier:\n  phase_groups: ''\n"),
            x + ":5:3: classifier.phase_groups must list at least one phase, got []");
}

TEST_F(ConfigTest, StageSectionRangeChecks) {
  const std::string x = Path("x.yaml");
  auto error = [&](const std::string& section) {
    return LoadError(std::string(kMinimal) + section);
  };
  EXPECT_EQ(error("task:\n  format: tsvv\n"),
            x + ":5:3: task.format must be one of auto, tsv, csv, folders, got 'tsvv' (did you "
                "mean 'tsv'?)");
  EXPECT_TRUE(Contains(error("task:\n  header: true\n"),
                       ":5:3: task.header must be one of auto, yes, no, got 'true'"));
  EXPECT_TRUE(Contains(error("task:\n  valid_fraction: 0.6\n"),
                       ":5:3: task.valid_fraction must be in [0, 0.5], got 0.6"));
  EXPECT_TRUE(Contains(error("task:\n  max_train_examples: -1\n"),
                       ":5:3: task.max_train_examples must be >= 0, got -1"));
  EXPECT_TRUE(Contains(error("task:\n  label_column: ''\n"),
                       ":5:3: task.label_column must be a column name or 0-based index"));
  EXPECT_TRUE(Contains(error("finetune:\n  epochs: -1\n"),
                       ":5:3: finetune.epochs must be >= 0, got -1"));
  EXPECT_TRUE(Contains(error("finetune:\n  discriminative: script\n"),
                       ":5:3: finetune.discriminative must be one of factor, scripts, none, got "
                       "'script' (did you mean 'scripts'?)"));
  EXPECT_TRUE(Contains(error("finetune:\n  lr_factor: 0.5\n"),
                       ":5:3: finetune.lr_factor must be >= 1, got 0.5"));
  EXPECT_TRUE(Contains(error("finetune:\n  frozen_lr: 0\n"),
                       ":5:3: finetune.frozen_lr must be > 0, got 0"));
  EXPECT_TRUE(Contains(error("finetune:\n  bptt: 1\n"),
                       ":5:3: finetune.bptt must be >= 2, got 1"));
  // finetune.drop_mult scales the LM dropouts of model.dropout.
  EXPECT_EQ(error("finetune:\n  drop_mult: 4\n"),
            x + ":5:3: finetune.drop_mult must be < 4 so that drop_mult * model.dropout.input "
                "(0.25) stays below 1, got 4");
  EXPECT_TRUE(Contains(error("finetune:\n  schedule: {kind: cosine}\n"),
                       "finetune.schedule.kind must be one of stlr, one_cycle, constant"));
  EXPECT_TRUE(Contains(error("finetune:\n  optimizer: {beta2: 1}\n"),
                       "finetune.optimizer.beta2 must be in [0, 1), got 1"));
  EXPECT_TRUE(Contains(error("finetune:\n  max_steps: -2\n"),
                       ":5:3: finetune.max_steps must be >= 0, got -2"));
  // classifier.drop_mult scales classifier.dropout (largest: weight 0.5).
  EXPECT_EQ(error("classifier:\n  drop_mult: 2\n"),
            x + ":5:3: classifier.drop_mult must be < 2 so that drop_mult * "
                "classifier.dropout.weight (0.5) stays below 1, got 2");
  EXPECT_TRUE(Contains(error("classifier:\n  dropout: {hidden: 1}\n"),
                       ":5:13: classifier.dropout.hidden must be in [0, 1), got 1"));
  EXPECT_TRUE(Contains(error("classifier:\n  head_dropout: 1\n"),
                       ":5:3: classifier.head_dropout must be in [0, 1), got 1"));
  EXPECT_TRUE(Contains(error("classifier:\n  hidden: 0\n"),
                       ":5:3: classifier.hidden must be >= 1, got 0"));
  EXPECT_EQ(error("classifier:\n  bptt: 100\n  max_len: 99\n"),
            x + ":6:3: classifier.max_len must be >= 2 * classifier.bptt - 1 (199) so that every "
                "document's last token is pooled, got 99");
  EXPECT_TRUE(Contains(error("classifier:\n  select_metric: f1\n"),
                       ":5:3: classifier.select_metric must be one of accuracy, macro_f1, loss, "
                       "got 'f1'"));
  EXPECT_TRUE(Contains(error("classifier:\n  lr_factor: 0\n"),
                       ":5:3: classifier.lr_factor must be >= 1, got 0"));
  EXPECT_TRUE(Contains(error("classifier:\n  optimizer: {clip: -1}\n"),
                       "classifier.optimizer.clip must be >= 0, got -1"));
  EXPECT_TRUE(Contains(error("classifier:\n  batch_size: 0\n"),
                       ":5:3: classifier.batch_size must be >= 1, got 0"));
  // Zero unfrozen LM epochs are allowed (stage 2 then only runs its frozen epochs).
  absl::StatusOr<Config> config =
      LoadConfigFromString(std::string(kMinimal) + "finetune:\n  epochs: 0\n", "x.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
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


TEST_F(ConfigTest, MaxLenMustHoldTwoBpttChunks) {
  // TextClassifier (model/classifier.cc) needs max_len >= 2 * bptt - 1. bptt 72 with max_len 100
  // used to load, run stages 1 and 2 and fail in stage 3 with an internal error.
  EXPECT_EQ(LoadError(std::string(kMinimal) + "classifier:\n  bptt: 72\n  max_len: 100\n"),
            Path("x.yaml") +
                ":6:3: classifier.max_len must be >= 2 * classifier.bptt - 1 (143) so that every "
                "document's last token is pooled, got 100");
  EXPECT_TRUE(Contains(LoadError(kMinimal, {"classifier.max_len=142"}),
                       "--set classifier.max_len=142: classifier.max_len must be >= 2 * "
                       "classifier.bptt - 1 (143)"));
  absl::StatusOr<Config> config =
      LoadConfigFromString(std::string(kMinimal) + "classifier:\n  max_len: 143\n", "x.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  // The presets' own values satisfy it (1440 >= 143, 1400 >= 139).
  for (const char* preset : {"fastai", "paper"}) {
    Config defaults;
    ApplyPreset(preset, &defaults);
    defaults.pretrain.data.train = "c.txt";
    EXPECT_TRUE(ValidateConfig(defaults).ok()) << preset << ": " << ValidateConfig(defaults);
  }
}

TEST_F(ConfigTest, ShippedConfigsLoad) {
  // Every configs/*.yaml passes validation (data paths are not opened by the loader).
  const std::filesystem::path configs = std::filesystem::path(ULMFIT_SOURCE_DIR) / "configs";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(configs)) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    absl::StatusOr<Config> config = LoadConfig(entry.path().string());
    EXPECT_TRUE(config.ok()) << config.status();
  }
  EXPECT_GT(count, 0);
}

TEST_F(ConfigTest, ListsAreSequencesOrCommaStrings) {
  const std::vector<std::string> forms = {
      "  phase_groups: [1, all]\n  phase_epochs: [0, 3]\n  phase_lrs: [2e-2, 1e-3]\n",
      "  phase_groups:\n    - 1\n    - all\n  phase_epochs:\n    - 0\n    - 3\n"
      "  phase_lrs:\n    - 2e-2\n    - 1e-3\n",
      "  phase_groups: 1, all\n  phase_epochs: \"0,3\"\n  phase_lrs: 2e-2,1e-3\n"};
  for (const std::string& form : forms) {
    absl::StatusOr<Config> config =
        LoadConfigFromString(std::string(kMinimal) + "classifier:\n" + form, "x.yaml");
    ASSERT_TRUE(config.ok()) << config.status() << "\n" << form;
    EXPECT_EQ(config->classifier.phase_groups, (std::vector<GroupCount>{1, GroupCount::kAll}));
    EXPECT_EQ(config->classifier.phase_epochs, (std::vector<int>{0, 3}));
    EXPECT_EQ(config->classifier.phase_lrs, (std::vector<double>{2e-2, 1e-3}));
  }
  // --set takes the comma form and a flow sequence.
  for (const std::vector<std::string>& overrides :
       {std::vector<std::string>{"classifier.phase_lrs=1e-2,5e-3", "classifier.phase_groups=1,all",
                                 "classifier.phase_epochs=1,2"},
        std::vector<std::string>{"classifier.phase_lrs=[1e-2, 5e-3]",
                                 "classifier.phase_groups=[1,all]",
                                 "classifier.phase_epochs = [1, 2]"}}) {
    absl::StatusOr<Config> config = LoadConfig(Write("x.yaml", kMinimal), overrides);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->classifier.phase_lrs, (std::vector<double>{1e-2, 5e-3}));
    EXPECT_EQ(config->classifier.phase_groups, (std::vector<GroupCount>{1, GroupCount::kAll}));
    EXPECT_EQ(config->classifier.phase_epochs, (std::vector<int>{1, 2}));
  }
  // The other list keys.
  absl::StatusOr<Config> config = LoadConfigFromString(
      std::string(kMinimal) +
          "task:\n  text_columns: [title, 'a, b']\n"
          "active:\n  strategies: [entropy, random]\n  seeds: 7, 18446744073709551615\n"
          "  labels:\n    - pos\n    - neg\n",
      "x.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->task.text_columns, (std::vector<std::string>{"title", "a, b"}));
  EXPECT_EQ(config->active.strategies,
            (std::vector<Strategy>{Strategy::kEntropy, Strategy::kRandom}));
  EXPECT_EQ(config->active.seeds, (std::vector<uint64_t>{7, 18446744073709551615u}));
  EXPECT_EQ(config->active.labels, (std::vector<std::string>{"pos", "neg"}));
  // ConfigToYaml writes flow sequences, and they read back the same.
  const std::string yaml = ConfigToYaml(*config);
  EXPECT_TRUE(Contains(yaml, "  text_columns: [title, \"a, b\"]\n")) << yaml;
  EXPECT_TRUE(Contains(yaml, "  phase_groups: [1, 2, 3, all]\n")) << yaml;
  EXPECT_TRUE(Contains(yaml, "  phase_lrs: [0.02, 0.01, 0.005, 0.001]\n")) << yaml;
  EXPECT_TRUE(Contains(yaml, "  strategies: [entropy, random]\n")) << yaml;
  EXPECT_TRUE(Contains(yaml, "  seeds: [7, 18446744073709551615]\n")) << yaml;
  EXPECT_TRUE(Contains(yaml, "  labels: [pos, neg]\n")) << yaml;
  absl::StatusOr<Config> reloaded = LoadConfigFromString(yaml, "resolved.yaml");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status() << "\n" << yaml;
  EXPECT_EQ(ConfigToYaml(*reloaded), yaml);
  EXPECT_EQ(reloaded->task.text_columns, config->task.text_columns);
  // An empty list (active.labels' default) round-trips too.
  config->active.labels.clear();
  reloaded = LoadConfigFromString(ConfigToYaml(*config), "resolved.yaml");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(reloaded->active.labels.empty());
}

TEST_F(ConfigTest, ListErrorsNameKeyAndItem) {
  const std::string x = Path("x.yaml");
  auto error = [&](const std::string& section) {
    return LoadError(std::string(kMinimal) + section);
  };
  EXPECT_EQ(error("classifier:\n  phase_groups: [1, 0, 3, every]\n"),
            x + ":5:3: classifier.phase_groups items must be positive integers or 'all', got '0' "
                "(item 2 of [1, 0, 3, every]); " +
                x + ":5:3: classifier.phase_groups items must be positive integers or 'all', "
                    "got 'every' (item 4 of [1, 0, 3, every])");
  EXPECT_EQ(error("classifier:\n  phase_lrs: {a: 1}\n"),
            x + ":5:3: classifier.phase_lrs: expected a list, got a map");
  EXPECT_EQ(error("classifier:\n  phase_lrs: [1e-2, [1]]\n"),
            x + ":5:3: classifier.phase_lrs items must be numbers, got a list (item 2 of "
                "[1e-2, a list])");
  EXPECT_EQ(error("active:\n  seeds: [1, -2]\n"),
            x + ":5:3: active.seeds items must be non-negative integers, got '-2' (item 2 of "
                "[1, -2])");
  EXPECT_EQ(error("active:\n  strategies: random,entropi\n"),
            x + ":5:3: active.strategies items must be one of least_confidence, margin, "
                "entropy, random, diverse, bald, badge, kmeans, got 'entropi' (item 2 of "
                "'random,entropi'; did you mean 'entropy'?)");
  EXPECT_EQ(error("active:\n  strategies: []\n  seeds: ''\n"),
            x + ":5:3: active.strategies must list at least one strategy, got []; " + x +
                ":6:3: active.seeds must list at least one seed, got []");
  EXPECT_EQ(error("task:\n  text_columns: title,,body\n"),
            x + ":5:3: task.text_columns items must not be empty, got '' (item 2 of "
                "[title, , body])");
  EXPECT_EQ(error("task:\n  text_columns: []\n"),
            x + ":5:3: task.text_columns must list at least one column (a name or 0-based "
                "index), got []");
  EXPECT_EQ(error("active:\n  labels: [pos, ' ']\n"),
            x + ":5:3: active.labels items must not be empty, got ' ' (item 2 of [pos,  ])");
  EXPECT_TRUE(Contains(LoadError(kMinimal, {"classifier.phase_lrs=[1e-2"}),
                       "--set classifier.phase_lrs=[1e-2: malformed list: "));
  EXPECT_EQ(LoadError(kMinimal, {"classifier.phase_epochs=1,x"}),
            "--set classifier.phase_epochs=1,x: classifier.phase_epochs items must be integers, "
            "got 'x' (item 2 of '1,x')");
}

TEST_F(ConfigTest, ActiveColdStartNeedsAStrategyWithoutAClassifier) {
  const std::string cold = LoadError(std::string(kMinimal) + "active:\n  cold_start: margin\n");
  EXPECT_TRUE(Contains(cold, ":5:3: active.cold_start must be kmeans or random")) << cold;
  EXPECT_TRUE(Contains(cold, "got margin")) << cold;
  const std::string one = LoadError(std::string(kMinimal) + "active:\n  seed_examples: 1\n");
  EXPECT_TRUE(Contains(one, "active.seed_examples must be 0")) << one;
  EXPECT_TRUE(Contains(LoadError(std::string(kMinimal) + "active:\n  mc_passes: 0\n"),
                       "active.mc_passes"));
}

TEST_F(ConfigTest, EnumKeysRefuseUnknownNames) {
  const std::string x = Path("x.yaml");
  auto error = [&](const std::string& section) {
    return LoadError(std::string(kMinimal) + section);
  };
  // One name table per enum: the message lists it and suggests the closest name.
  EXPECT_EQ(error("text:\n  model_type: wordpiece\n"),
            x + ":5:3: text.model_type must be one of unigram, bpe, got 'wordpiece'");
  EXPECT_EQ(LoadError("pretrain:\n  data: {train: c.txt, format: csv}\n"),
            x + ":2:24: pretrain.data.format must be one of auto, lines, files, got 'csv'");
  EXPECT_EQ(error("active:\n  strategy: margn\n"),
            x + ":5:3: active.strategy must be one of least_confidence, margin, entropy, random, "
                "diverse, bald, badge, kmeans, got 'margn' (did you mean 'margin'?)");
  EXPECT_EQ(error("classifier:\n  select_metric: [loss]\n"),
            x + ":5:3: classifier.select_metric must be one of accuracy, macro_f1, loss, got "
                "a list");
  EXPECT_EQ(LoadError(kMinimal, {"finetune.discriminative=factors"}),
            "--set finetune.discriminative=factors: finetune.discriminative must be one of "
            "factor, scripts, none, got 'factors' (did you mean 'factor'?)");
  // Every enum value is written by its name and reads back.
  Config config;
  config.text.model_type = SpmModelType::kBpe;
  config.pretrain.data.format = CorpusFormat::kFiles;
  config.task.format = TaskFormat::kFolders;
  config.task.header = HeaderMode::kYes;
  config.finetune.schedule.kind = ScheduleKind::kConstant;
  config.finetune.discriminative = Discriminative::kNone;
  config.classifier.select_metric = SelectMetric::kLoss;
  config.active.strategy = Strategy::kLeastConfidence;
  config.pretrain.data.train = "c.txt";
  const std::string yaml = ConfigToYaml(config);
  for (const char* line : {"  model_type: bpe\n", "    format: files\n", "  format: folders\n",
                           "  header: yes\n", "    kind: constant\n", "  discriminative: none\n",
                           "  select_metric: loss\n", "  strategy: least_confidence\n"}) {
    EXPECT_TRUE(Contains(yaml, line));
  }
  absl::StatusOr<Config> reloaded = LoadConfigFromString(yaml, "resolved.yaml");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(ConfigToYaml(*reloaded), yaml);
  EXPECT_EQ(fmt::format("{} {}", config.text.model_type, config.classifier.select_metric),
            "bpe loss");
}

TEST_F(ConfigTest, TypeAndRangeErrorsAreReportedTogether) {
  // A key of the wrong type keeps its default, so the range checks of the others still run.
  const std::string message = LoadError(std::string(kMinimal) +
                                        "  epochs: ten\n  bptt: 1\ntask:\n  header: maybe\n");
  EXPECT_TRUE(Contains(message, ":4:3: pretrain.epochs: expected an integer, got 'ten'"));
  EXPECT_TRUE(Contains(message, ":7:3: task.header must be one of auto, yes, no, got 'maybe'"));
  EXPECT_TRUE(Contains(message, ":5:3: pretrain.bptt must be >= 2, got 1"));
  // Unknown keys stop loading before the range checks, whose messages would be noise then.
  EXPECT_EQ(LoadError("pretrain:\n  data:\n    trian: c.txt\n  bptt: 1\n"),
            Path("x.yaml") +
                ":3:5: unknown key 'pretrain.data.trian' (did you mean 'pretrain.data.train'?)");
}

TEST_F(ConfigTest, PresetTableListsOnlyRealDifferences) {
  // Each row names a value key whose paper value parses and differs from the struct (fastai)
  // default, so the table is exactly the keys where the presets differ.
  const std::vector<std::string> keys = AllValueKeys();
  Config fastai;
  Config paper;
  ApplyPreset(Preset::kPaper, &paper);
  const std::string fastai_yaml = ConfigToYaml(fastai);
  for (const PresetValue& row : PaperPresetValues()) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), row.key), keys.end()) << row.key;
    Config one_key = fastai;
    std::vector<std::string> errors;
    ASSERT_TRUE(VisitField(one_key, row.key, [&](auto& field) {
      ParseValueText(row.key, row.paper, &field, &errors);
    })) << row.key;
    EXPECT_TRUE(errors.empty()) << row.key << ": " << JoinErrors(errors);
    EXPECT_NE(ConfigToYaml(one_key), fastai_yaml) << row.key << " is the same in both presets";
  }
  // Applying the table row by row gives the paper preset: nothing else differs.
  Config rows = fastai;
  for (const PresetValue& row : PaperPresetValues()) {
    std::vector<std::string> errors;
    VisitField(rows, row.key, [&](auto& field) {
      ParseValueText(row.key, row.paper, &field, &errors);
    });
  }
  rows.preset = Preset::kPaper;
  EXPECT_EQ(ConfigToYaml(rows), ConfigToYaml(paper));
}

TEST_F(ConfigTest, PresetsResolveAsBefore) {
  // Pinned values of both presets (as they were before the preset table existed), through the
  // loader.
  struct Pin {
    const char* line;  // as ConfigToYaml writes it, with its indentation
    const char* fastai;
    const char* paper;
  };
  const Pin pins[] = {
      {"  hidden_size: ", "1152", "1150"},
      {"  lr: ", "0.01", "0.004"},  // pretrain.lr, the first "  lr:" line
      {"  bptt: ", "72", "70"},     // pretrain.bptt
      {"  variable_bptt: ", "false", "true"},
      {"    kind: ", "one_cycle", "stlr"},
      {"    eps: ", "1e-05", "1e-08"},
      {"    weight_decay: ", "0.01", "1e-07"},
      {"  frozen_epochs: ", "1", "0"},
      {"  max_len: ", "1440", "1400"},
      {"  phase_groups: ", "[1, 2, 3, all]", "[1, 2, all]"},
      {"  phase_epochs: ", "[1, 1, 1, 2]", "[1, 1, 48]"},
      {"  phase_lrs: ", "[0.02, 0.01, 0.005, 0.001]", "[0.01, 0.01, 0.01]"},
  };
  for (const char* preset : {"fastai", "paper"}) {
    absl::StatusOr<Config> config =
        LoadConfigFromString(absl::StrCat("preset: ", preset, "\n", kMinimal), "x.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    const std::string yaml = ConfigToYaml(*config);
    for (const Pin& pin : pins) {
      const std::string value = std::string(preset) == "paper" ? pin.paper : pin.fastai;
      const size_t at = yaml.find(std::string("\n") + pin.line);
      ASSERT_NE(at, std::string::npos) << pin.line;
      const size_t start = at + 1 + std::string(pin.line).size();
      EXPECT_EQ(yaml.substr(start, yaml.find('\n', start) - start), value)
          << preset << ": " << pin.line;
    }
    const ClassifierConfig& c = config->classifier;
    EXPECT_DOUBLE_EQ(c.optimizer.clip, std::string(preset) == "paper" ? 25 : 0.1);
    EXPECT_DOUBLE_EQ(config->finetune.drop_mult, std::string(preset) == "paper" ? 1.0 : 0.3);
    EXPECT_DOUBLE_EQ(c.drop_mult, std::string(preset) == "paper" ? 1.0 : 0.5);
  }
}

TEST_F(ConfigTest, DocsDocumentEveryKey) {
  // docs/config.md has a heading per section ("## `run`", "### `pretrain.data`") with a table
  // row per key ("| `seed` | ..."). A section that shares its struct with one documented
  // elsewhere (finetune.schedule, classifier.dropout) has no heading of its own; its row in the
  // parent's table names that section ("As `pretrain.schedule`").
  std::ifstream in(std::string(ULMFIT_SOURCE_DIR) + "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md";
  std::map<std::string, std::map<std::string, std::string>> rows;  // section -> key -> row
  std::string section, line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "#")) {
      const size_t open = line.find('`'), close = line.rfind('`');
      section = open != close ? line.substr(open + 1, close - open - 1)
                              : (line == "## Top level" ? "" : "(other)");
    } else if (absl::StartsWith(line, "| `")) {
      const size_t close = line.find('`', 3);
      rows[section][line.substr(3, close - 3)] = line;
    }
  }
  auto row_of = [&rows](const std::string& documented_as,
                        const std::string& key) -> const std::string* {
    auto table = rows.find(documented_as);
    if (table == rows.end()) return nullptr;
    auto row = table->second.find(key);
    return row == table->second.end() ? nullptr : &row->second;
  };
  // Checks that every key below `info` (full path `path`) is documented under `documented_as`.
  std::function<void(const KeyInfo&, const std::string&, const std::string&)> check =
      [&](const KeyInfo& info, const std::string& path, const std::string& documented_as) {
        for (const KeyInfo& child : info.children) {
          const std::string child_path = path.empty() ? child.name : path + "." + child.name;
          if (child.is_section && rows.count(child_path) != 0) {
            check(child, child_path, child_path);  // a heading of its own
            continue;
          }
          const std::string* row = row_of(documented_as, child.name);
          if (row == nullptr) {
            ADD_FAILURE() << "docs/config.md documents no key " << child_path << " (no row `"
                          << child.name << "` under the heading `" << documented_as << "`)";
            continue;
          }
          if (!child.is_section) continue;
          // The row names the section that documents the same keys (the recursion below checks
          // that it has them all).
          std::string documented;
          for (const auto& [other, other_rows] : rows) {
            if (other_rows.count(child.children.front().name) != 0 &&
                absl::StrContains(*row, "`" + other + "`")) {
              documented = other;
            }
          }
          if (documented.empty()) {
            ADD_FAILURE() << "docs/config.md: " << child_path
                          << " has no heading, and its row names no section with its keys";
            continue;
          }
          check(child, child_path, documented);
        }
      };
  check(Schema(), "", "");
}

}  // namespace
}  // namespace ulmfit
