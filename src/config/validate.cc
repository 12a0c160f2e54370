#include "config/validate.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "config/value_text.h"

namespace ulmfit {
namespace {

class Checker {
 public:
  explicit Checker(const Config& config) : config_(config) {}

  // Records "LOCATION: KEY must be RULE, got VALUE" unless `ok`.
  template <typename T>
  void Expect(bool ok, const std::string& key, absl::string_view rule, const T& got) {
    if (ok) return;
    std::string shown = FormatScalar(got);
    if constexpr (std::is_same_v<T, std::string>) shown = absl::StrCat("'", shown, "'");
    errors_.push_back(absl::StrCat(Locate(key), ": ", key, " must be ", rule, ", got ", shown));
  }

  // Conditions in the form `lo <= x && x < hi` are false for NaN, so NaN fails too.
  void Probability(const std::string& key, double x) {
    Expect(x >= 0 && x < 1, key, "in [0, 1)", x);
  }
  void OpenUnit(const std::string& key, double x) { Expect(x > 0 && x < 1, key, "in (0, 1)", x); }
  void Positive(const std::string& key, double x) { Expect(x > 0, key, "> 0", x); }
  void NonNegative(const std::string& key, double x) { Expect(x >= 0, key, ">= 0", x); }
  template <typename Int>
  void AtLeast(const std::string& key, Int x, Int min) {
    Expect(x >= min, key, absl::StrCat(">= ", min), x);
  }

  // A list key must have at least one item: "KEY must list at least one WHAT, got []".
  template <typename T>
  void NotEmpty(const std::string& key, const std::vector<T>& list, absl::string_view what) {
    if (list.empty()) Fail(key, absl::StrCat(key, " must list at least one ", what, ", got []"));
  }

  // No item may be blank: "KEY items must not be empty, got '' (item 2 of [a, ])".
  void NoBlankItems(const std::string& key, const std::vector<std::string>& list) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (!absl::StripAsciiWhitespace(list[i]).empty()) continue;
      Fail(key, absl::StrCat(key, " items must not be empty, got '", list[i], "' (item ", i + 1,
                             " of ", FormatList(list), ")"));
    }
  }

  void Fail(const std::string& key, const std::string& message) {
    errors_.push_back(absl::StrCat(Locate(key), ": ", message));
  }

  // The key's own location, else its nearest section's (a missing key), else the file.
  std::string Locate(const std::string& key) const {
    std::string path = key;
    while (!path.empty()) {
      auto it = config_.key_locations.find(path);
      if (it != config_.key_locations.end()) return it->second;
      const size_t dot = path.rfind('.');
      path.resize(dot == std::string::npos ? 0 : dot);
    }
    return config_.source_path.empty() ? "config" : config_.source_path;
  }

  std::vector<std::string> TakeErrors() { return std::move(errors_); }

 private:
  const Config& config_;
  std::vector<std::string> errors_;
};

bool IsDevice(const std::string& device) {
  if (device == "auto" || device == "cpu" || device == "cuda") return true;
  if (!absl::StartsWith(device, "cuda:") || device.size() == 5) return false;
  for (size_t i = 5; i < device.size(); ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(device[i]))) return false;
  }
  return true;
}

// Checks for the structs that several sections share, under the section's prefix `p`.
void CheckLmData(const LmDataConfig& d, const std::string& p, Checker* check) {
  // Whether `train` is required depends on the stages the config describes (CheckStages).
  check->Expect(d.valid_fraction > 0 && d.valid_fraction <= 0.5, p + ".valid_fraction",
                "in (0, 0.5]", d.valid_fraction);
  check->AtLeast<int64_t>(p + ".max_documents", d.max_documents, 0);
}

// Each dropout of `d` (keys `dropout_prefix`.embed, ...) is a probability.
void CheckDropouts(const DropoutConfig& d, const std::string& dropout_prefix, Checker* check) {
  check->Probability(dropout_prefix + ".embed", d.embed);
  check->Probability(dropout_prefix + ".input", d.input);
  check->Probability(dropout_prefix + ".weight", d.weight);
  check->Probability(dropout_prefix + ".hidden", d.hidden);
  check->Probability(dropout_prefix + ".output", d.output);
}

// `mult_key` (a drop_mult) scales every dropout of `d`; the products must still be
// probabilities. Only the largest dropout needs checking; it is skipped when that dropout is
// itself out of range (already reported by CheckDropouts).
void CheckDropMult(const std::string& mult_key, double mult, const DropoutConfig& d,
                   const std::string& dropout_prefix, Checker* check) {
  check->NonNegative(mult_key, mult);
  const std::pair<const char*, double> dropouts[] = {{"embed", d.embed},
                                                     {"input", d.input},
                                                     {"weight", d.weight},
                                                     {"hidden", d.hidden},
                                                     {"output", d.output}};
  std::pair<const char*, double> largest = dropouts[0];
  for (const auto& dropout : dropouts) {
    if (dropout.second > largest.second) largest = dropout;
  }
  if (largest.second > 0 && largest.second < 1) {
    check->Expect(largest.second * mult < 1, mult_key,
                  absl::StrCat("< ", FormatScalar(1 / largest.second), " so that drop_mult * ",
                               dropout_prefix, ".", largest.first, " (",
                               FormatScalar(largest.second), ") stays below 1"),
                  mult);
  }
}

void CheckSchedule(const ScheduleConfig& s, const std::string& p, Checker* check) {
  check->OpenUnit(p + ".cut_frac", s.cut_frac);
  check->Expect(s.ratio >= 1, p + ".ratio", ">= 1", s.ratio);
  check->OpenUnit(p + ".pct_start", s.pct_start);
  check->Positive(p + ".div", s.div);
  check->Positive(p + ".div_final", s.div_final);
  check->Probability(p + ".mom_max", s.mom_max);
  check->Probability(p + ".mom_min", s.mom_min);
}

void CheckOptimizer(const OptimizerConfig& o, const std::string& p, Checker* check) {
  check->Probability(p + ".beta1", o.beta1);
  check->Probability(p + ".beta2", o.beta2);
  check->Positive(p + ".eps", o.eps);
  check->NonNegative(p + ".weight_decay", o.weight_decay);
  check->NonNegative(p + ".clip", o.clip);
}

// Which stages the config describes: stage 1 needs pretrain.data.train, stages 2 and 3 need
// task.train, and stage 2 needs a language model from stage 1 or from finetune.pretrained.
void CheckStages(const Config& config, Checker* check) {
  const bool pretrain = !config.pretrain.data.train.empty();
  const bool task = !config.task.train.empty();
  if (!pretrain && !task) {
    // Point at whichever of the two the file mentions (the key or its section), pretrain first.
    const std::string file = check->Locate("");
    const bool only_task = check->Locate("pretrain.data.train") == file &&
                           check->Locate("task.train") != file;
    check->Fail(only_task ? "task.train" : "pretrain.data.train",
                "nothing to do: set pretrain.data.train (stage 1) and/or task.train (stages 2 "
                "and 3)");
  } else if (task && !pretrain && config.finetune.pretrained.empty() &&
             config.classifier.language_model.empty()) {
    check->Fail("task.train",
                "task.train needs a pretrained language model: set pretrain.data.train to "
                "pretrain one, finetune.pretrained to a run directory that has "
                "pretrain/lm.pt, or classifier.language_model to one that has finetune/lm.pt");
  }
  // A fastai weights file needs its vocabulary; a vocabulary needs a weights file.
  const std::string& pretrained = config.finetune.pretrained;
  const bool weights_file = absl::EndsWith(pretrained, ".pth") || absl::EndsWith(pretrained, ".pt");
  if (weights_file && config.finetune.pretrained_vocab.empty()) {
    check->Fail("finetune.pretrained",
                absl::StrCat("finetune.pretrained names a weights file ('", pretrained,
                             "'); set finetune.pretrained_vocab to its vocabulary (itos .pkl or "
                             "one token per line), or import it first with ulmfit import-fastai"));
  } else if (!weights_file && !config.finetune.pretrained_vocab.empty()) {
    check->Fail("finetune.pretrained_vocab",
                "finetune.pretrained_vocab goes with a fastai weights file (.pth) in "
                "finetune.pretrained; a run directory has its own tokenizer");
  }
}

// The rules of the classifier's phase lists, as (key, message without location) pairs: each
// list has one item per phase, the items are in range, and the epochs add up to at least 1.
// ValidateConfig and ParsePhases both use them.
std::vector<std::pair<std::string, std::string>> PhaseListErrors(const ClassifierConfig& c) {
  const std::string groups_key = "classifier.phase_groups";
  const std::string epochs_key = "classifier.phase_epochs";
  const std::string lrs_key = "classifier.phase_lrs";
  std::vector<std::pair<std::string, std::string>> errors;
  auto add = [&errors](const std::string& key, std::string message) {
    errors.emplace_back(key, std::move(message));
  };
  auto bad_item = [&add](const std::string& key, const char* rule, const std::string& item,
                         size_t i, const std::string& whole) {
    add(key, absl::StrCat(key, " items must be ", rule, ", got '", item, "' (item ", i + 1,
                          " of ", whole, ")"));
  };

  const size_t phases = c.phase_groups.size();
  if (phases == 0) add(groups_key, groups_key + " must list at least one phase, got []");
  // Each other list: not empty, and one item per phase.
  auto check_length = [&](const std::string& key, size_t size, const std::string& shown) {
    if (size == 0) {
      add(key, key + " must list at least one phase, got []");
    } else if (phases != 0 && size != phases) {
      add(key, absl::StrCat(key, " has ", size, " items (", shown, ") but ", groups_key, " has ",
                            phases, " (", FormatList(c.phase_groups),
                            "); the phase lists need one item per phase each"));
    }
  };
  check_length(epochs_key, c.phase_epochs.size(), FormatList(c.phase_epochs));
  check_length(lrs_key, c.phase_lrs.size(), FormatList(c.phase_lrs));

  for (size_t i = 0; i < c.phase_groups.size(); ++i) {
    const GroupCount g = c.phase_groups[i];
    if (g.count < 1 && g.count != GroupCount::kAll) {
      bad_item(groups_key, "positive integers or 'all'", FormatScalar(g), i,
               FormatList(c.phase_groups));
    }
  }
  int64_t total_epochs = 0;
  bool epochs_ok = true;
  for (size_t i = 0; i < c.phase_epochs.size(); ++i) {
    total_epochs += c.phase_epochs[i];
    if (c.phase_epochs[i] >= 0) continue;
    bad_item(epochs_key, "integers >= 0", FormatScalar(c.phase_epochs[i]), i,
             FormatList(c.phase_epochs));
    epochs_ok = false;
  }
  if (epochs_ok && !c.phase_epochs.empty() && total_epochs == 0) {
    add(epochs_key, absl::StrCat(epochs_key, " must add up to at least 1 epoch, got ",
                                 FormatList(c.phase_epochs)));
  }
  for (size_t i = 0; i < c.phase_lrs.size(); ++i) {
    const double lr = c.phase_lrs[i];
    if (std::isfinite(lr) && lr > 0) continue;
    bad_item(lrs_key, "numbers > 0", FormatScalar(lr), i, FormatList(c.phase_lrs));
  }
  return errors;
}

void CheckGeneral(const Config& config, Checker* check) {
  const RunConfig& run = config.run;
  check->Expect(!run.output_dir.empty(), "run.output_dir", "a directory path", run.output_dir);
  check->Expect(IsDevice(run.device), "run.device", "auto, cpu, cuda or cuda:N", run.device);
  check->AtLeast("run.threads", run.threads, 0);
  check->NonNegative("run.checkpoint_minutes", run.checkpoint_minutes);
  check->AtLeast("run.log_every", run.log_every, 1);
  check->Expect(run.distributed_timeout_s >= 1, "run.distributed_timeout_s", "at least 1 (seconds)",
                run.distributed_timeout_s);

  const TextConfig& text = config.text;
  check->AtLeast("text.vocab_size", text.vocab_size, 16);
  // Past this no corpus has that many distinct pieces, and the embedding alone would not fit.
  check->Expect(text.vocab_size <= 1000000, "text.vocab_size", "at most 1000000 (fastai uses "
                "60000 words, MultiFiT 15000 pieces)", text.vocab_size);
  check->Expect(text.character_coverage > 0 && text.character_coverage <= 1,
                "text.character_coverage", "in (0, 1]", text.character_coverage);
  check->AtLeast<int64_t>("text.max_training_sentences", text.max_training_sentences, 0);
  check->AtLeast("text.threads", text.threads, 0);

  const ModelConfig& model = config.model;
  check->AtLeast("model.emb_size", model.emb_size, 1);
  check->AtLeast("model.hidden_size", model.hidden_size, 1);
  check->AtLeast("model.num_layers", model.num_layers, 1);
  CheckDropouts(model.dropout, "model.dropout", check);
  CheckDropMult("model.drop_mult", model.drop_mult, model.dropout, "model.dropout", check);
}

void CheckPretrain(const PretrainConfig& pre, Checker* check) {
  CheckLmData(pre.data, "pretrain.data", check);
  check->AtLeast("pretrain.epochs", pre.epochs, 1);
  check->AtLeast("pretrain.batch_size", pre.batch_size, 1);
  check->AtLeast("pretrain.bptt", pre.bptt, 2);
  check->Positive("pretrain.lr", pre.lr);
  CheckSchedule(pre.schedule, "pretrain.schedule", check);
  CheckOptimizer(pre.optimizer, "pretrain.optimizer", check);
  check->NonNegative("pretrain.ar_alpha", pre.ar_alpha);
  check->NonNegative("pretrain.tar_beta", pre.tar_beta);
  check->AtLeast<int64_t>("pretrain.max_steps", pre.max_steps, 0);
}

void CheckTask(const TaskDataConfig& task, Checker* check) {
  check->Expect(task.valid_fraction >= 0 && task.valid_fraction <= 0.5, "task.valid_fraction",
                "in [0, 0.5]", task.valid_fraction);
  check->Expect(!absl::StripAsciiWhitespace(task.label_column).empty(), "task.label_column",
                "a column name or 0-based index", task.label_column);
  check->NotEmpty("task.text_columns", task.text_columns, "column (a name or 0-based index)");
  check->NoBlankItems("task.text_columns", task.text_columns);
  check->AtLeast<int64_t>("task.max_train_examples", task.max_train_examples, 0);
  check->AtLeast<int64_t>("task.max_valid_examples", task.max_valid_examples, 0);
  check->AtLeast<int64_t>("task.max_test_examples", task.max_test_examples, 0);
  check->AtLeast<int64_t>("task.max_unlabeled", task.max_unlabeled, 0);
}

// Stage 2 uses the LM dropouts (model.dropout) times its own drop_mult.
void CheckFinetune(const FinetuneConfig& fine, const ModelConfig& model, Checker* check) {
  check->AtLeast("finetune.epochs", fine.epochs, 0);
  check->AtLeast("finetune.batch_size", fine.batch_size, 1);
  check->AtLeast("finetune.bptt", fine.bptt, 2);
  check->Positive("finetune.lr", fine.lr);
  check->Expect(fine.lr_factor >= 1, "finetune.lr_factor", ">= 1", fine.lr_factor);
  check->AtLeast("finetune.frozen_epochs", fine.frozen_epochs, 0);
  check->Positive("finetune.frozen_lr", fine.frozen_lr);
  CheckDropMult("finetune.drop_mult", fine.drop_mult, model.dropout, "model.dropout", check);
  CheckSchedule(fine.schedule, "finetune.schedule", check);
  CheckOptimizer(fine.optimizer, "finetune.optimizer", check);
  check->NonNegative("finetune.ar_alpha", fine.ar_alpha);
  check->NonNegative("finetune.tar_beta", fine.tar_beta);
  check->AtLeast<int64_t>("finetune.max_steps", fine.max_steps, 0);
}

void CheckClassifier(const ClassifierConfig& clas, Checker* check) {
  CheckDropouts(clas.dropout, "classifier.dropout", check);
  CheckDropMult("classifier.drop_mult", clas.drop_mult, clas.dropout, "classifier.dropout",
                check);
  check->AtLeast("classifier.hidden", clas.hidden, 1);
  check->Probability("classifier.head_dropout", clas.head_dropout);
  check->AtLeast("classifier.batch_size", clas.batch_size, 1);
  check->AtLeast("classifier.bptt", clas.bptt, 2);
  // Documents are padded in front in whole bptt chunks, with the remaining (up to bptt - 1)
  // pads after the text, so a document's last token can sit in the chunk starting
  // 2 * bptt - 1 tokens from the end; TextClassifier (model/classifier.cc) refuses a smaller
  // max_len, which would leave that token out of the pooled window.
  const int64_t min_len = 2 * static_cast<int64_t>(clas.bptt) - 1;
  check->Expect(clas.max_len >= min_len, "classifier.max_len",
                absl::StrCat(">= 2 * classifier.bptt - 1 (", min_len,
                             ") so that every document's last token is pooled"),
                clas.max_len);
  for (const auto& [key, message] : PhaseListErrors(clas)) check->Fail(key, message);
  check->Expect(clas.lr_factor >= 1, "classifier.lr_factor", ">= 1", clas.lr_factor);
  CheckSchedule(clas.schedule, "classifier.schedule", check);
  CheckOptimizer(clas.optimizer, "classifier.optimizer", check);
  check->NonNegative("classifier.ar_alpha", clas.ar_alpha);
  check->NonNegative("classifier.tar_beta", clas.tar_beta);
  check->AtLeast<int64_t>("classifier.max_steps", clas.max_steps, 0);
  check->AtLeast<int64_t>("classifier.min_steps_per_epoch", clas.min_steps_per_epoch, 0);
  check->AtLeast<int64_t>("classifier.precise_bn_docs", clas.precise_bn_docs, 0);
}

void CheckActive(const ActiveConfig& active, Checker* check) {
  check->AtLeast("active.query_size", active.query_size, 1);
  check->AtLeast("active.retrain_every", active.retrain_every, 1);
  check->NoBlankItems("active.labels", active.labels);
  check->AtLeast("active.candidates_per_query", active.candidates_per_query, 1);
  check->AtLeast("active.seed_examples", active.seed_examples, 0);
  if (active.seed_examples == 1) {
    check->Fail("active.seed_examples",
                "active.seed_examples must be 0 (a cold start chosen by the strategy) or at "
                "least 2 (a classifier needs two classes), got 1");
  }
  if (active.cold_start != Strategy::kKMeans && active.cold_start != Strategy::kRandom) {
    check->Fail("active.cold_start",
                absl::StrCat("active.cold_start must be kmeans or random (the strategies that "
                             "need no classifier), got ", EnumName(active.cold_start)));
  }
  check->AtLeast("active.cold_start_labels", active.cold_start_labels, 0);
  check->AtLeast("active.balanced_below", active.balanced_below, 0);
  check->AtLeast("active.mc_passes", active.mc_passes, 1);
  check->AtLeast("active.rounds", active.rounds, 1);
  check->NotEmpty("active.strategies", active.strategies, "strategy");
  check->NotEmpty("active.seeds", active.seeds, "seed");
  check->AtLeast<int64_t>("active.max_pool", active.max_pool, 0);
  check->AtLeast<int64_t>("active.max_test_examples", active.max_test_examples, 0);
}

}  // namespace

std::vector<std::string> ValidationErrors(const Config& config) {
  Checker check(config);
  CheckGeneral(config, &check);
  CheckStages(config, &check);
  CheckPretrain(config.pretrain, &check);
  CheckTask(config.task, &check);
  CheckFinetune(config.finetune, config.model, &check);
  CheckClassifier(config.classifier, &check);
  CheckActive(config.active, &check);
  return check.TakeErrors();
}

absl::Status ValidateConfig(const Config& config) {
  const std::vector<std::string> errors = ValidationErrors(config);
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(JoinErrors(errors));
}

absl::StatusOr<std::vector<UnfreezePhase>> ParsePhases(const ClassifierConfig& classifier) {
  const std::vector<std::pair<std::string, std::string>> errors = PhaseListErrors(classifier);
  if (!errors.empty()) {
    std::vector<std::string> messages;
    for (const auto& error : errors) messages.push_back(error.second);
    return absl::InvalidArgumentError(JoinErrors(messages));
  }
  std::vector<UnfreezePhase> phases;
  for (size_t i = 0; i < classifier.phase_groups.size(); ++i) {
    phases.push_back(UnfreezePhase{classifier.phase_groups[i].count, classifier.phase_epochs[i],
                                   classifier.phase_lrs[i]});
  }
  return phases;
}

}  // namespace ulmfit
