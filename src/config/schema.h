// The key table of the YAML config and what is derived from it: the tree of key names (for
// unknown-key checks, --set paths and docs), access to one field by its dotted path, and
// "did you mean" suggestions.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "config/config.h"
#include "util/spelling.h"  // ClosestWord, for the did-you-mean suggestions

namespace ulmfit {

// ---------------------------------------------------------------------------------------------
// The key table. One line per YAML key: reading, ConfigToYaml, the unknown-key check, --set,
// the presets and the docs test all walk it, so the key list exists only here. `v(key, field)`
// reads or writes a field; a struct field is a nested section. A new key also needs its range
// check in ValidateConfig() (config/validate.cc) and a row in docs/config.md.

template <typename V>
void VisitFields(RunConfig& c, V& v) {
  v("output_dir", c.output_dir);
  v("seed", c.seed);
  v("device", c.device);
  v("threads", c.threads);
  v("checkpoint_minutes", c.checkpoint_minutes);
  v("log_every", c.log_every);
  v("distributed_backend", c.distributed_backend);
  v("distributed_timeout_s", c.distributed_timeout_s);
  v("batch_per_rank", c.batch_per_rank);
  v("cpu_bf16", c.cpu_bf16);
}

template <typename V>
void VisitFields(TextConfig& c, V& v) {
  v("tokenizer", c.tokenizer);
  v("rules", c.rules);
  v("lowercase", c.lowercase);
  v("spm_model", c.spm_model);
  v("vocab_size", c.vocab_size);
  v("model_type", c.model_type);
  v("character_coverage", c.character_coverage);
  v("max_training_sentences", c.max_training_sentences);
  v("cache_dir", c.cache_dir);
  v("threads", c.threads);
}

template <typename V>
void VisitFields(DropoutConfig& c, V& v) {
  v("embed", c.embed);
  v("input", c.input);
  v("weight", c.weight);
  v("hidden", c.hidden);
  v("output", c.output);
}

template <typename V>
void VisitFields(ModelConfig& c, V& v) {
  v("emb_size", c.emb_size);
  v("hidden_size", c.hidden_size);
  v("num_layers", c.num_layers);
  v("dropout", c.dropout);
  v("drop_mult", c.drop_mult);
  v("tie_weights", c.tie_weights);
  v("out_bias", c.out_bias);
  v("backwards", c.backwards);
}

template <typename V>
void VisitFields(LmDataConfig& c, V& v) {
  v("train", c.train);
  v("valid", c.valid);
  v("valid_fraction", c.valid_fraction);
  v("format", c.format);
  v("max_documents", c.max_documents);
}

template <typename V>
void VisitFields(ScheduleConfig& c, V& v) {
  v("kind", c.kind);
  v("cut_frac", c.cut_frac);
  v("ratio", c.ratio);
  v("pct_start", c.pct_start);
  v("div", c.div);
  v("div_final", c.div_final);
  v("mom_max", c.mom_max);
  v("mom_min", c.mom_min);
}

template <typename V>
void VisitFields(OptimizerConfig& c, V& v) {
  v("beta1", c.beta1);
  v("beta2", c.beta2);
  v("eps", c.eps);
  v("weight_decay", c.weight_decay);
  v("clip", c.clip);
}

template <typename V>
void VisitFields(PretrainConfig& c, V& v) {
  v("data", c.data);
  v("epochs", c.epochs);
  v("batch_size", c.batch_size);
  v("bptt", c.bptt);
  v("variable_bptt", c.variable_bptt);
  v("lr", c.lr);
  v("schedule", c.schedule);
  v("optimizer", c.optimizer);
  v("ar_alpha", c.ar_alpha);
  v("tar_beta", c.tar_beta);
  v("mixed_precision", c.mixed_precision);
  v("max_steps", c.max_steps);
}

template <typename V>
void VisitFields(TaskDataConfig& c, V& v) {
  v("train", c.train);
  v("valid", c.valid);
  v("test", c.test);
  v("unlabeled", c.unlabeled);
  v("valid_fraction", c.valid_fraction);
  v("format", c.format);
  v("label_column", c.label_column);
  v("text_columns", c.text_columns);
  v("header", c.header);
  v("max_train_examples", c.max_train_examples);
  v("max_valid_examples", c.max_valid_examples);
  v("max_test_examples", c.max_test_examples);
  v("max_unlabeled", c.max_unlabeled);
}

template <typename V>
void VisitFields(FinetuneConfig& c, V& v) {
  v("pretrained", c.pretrained);
  v("pretrained_vocab", c.pretrained_vocab);
  v("use_test_text", c.use_test_text);
  v("epochs", c.epochs);
  v("batch_size", c.batch_size);
  v("bptt", c.bptt);
  v("variable_bptt", c.variable_bptt);
  v("lr", c.lr);
  v("discriminative", c.discriminative);
  v("lr_factor", c.lr_factor);
  v("frozen_epochs", c.frozen_epochs);
  v("frozen_lr", c.frozen_lr);
  v("drop_mult", c.drop_mult);
  v("schedule", c.schedule);
  v("optimizer", c.optimizer);
  v("ar_alpha", c.ar_alpha);
  v("tar_beta", c.tar_beta);
  v("mixed_precision", c.mixed_precision);
  v("max_steps", c.max_steps);
}

template <typename V>
void VisitFields(ClassifierConfig& c, V& v) {
  v("dropout", c.dropout);
  v("drop_mult", c.drop_mult);
  v("hidden", c.hidden);
  v("head_dropout", c.head_dropout);
  v("batch_size", c.batch_size);
  v("bptt", c.bptt);
  v("max_len", c.max_len);
  v("phase_groups", c.phase_groups);
  v("phase_epochs", c.phase_epochs);
  v("phase_lrs", c.phase_lrs);
  v("lr_factor", c.lr_factor);
  v("schedule", c.schedule);
  v("optimizer", c.optimizer);
  v("ar_alpha", c.ar_alpha);
  v("tar_beta", c.tar_beta);
  v("select_metric", c.select_metric);
  v("min_steps_per_epoch", c.min_steps_per_epoch);
  v("precise_bn_docs", c.precise_bn_docs);
  v("language_model", c.language_model);
  v("mixed_precision", c.mixed_precision);
  v("max_steps", c.max_steps);
}

template <typename V>
void VisitFields(ActiveConfig& c, V& v) {
  v("pool", c.pool);
  v("strategy", c.strategy);
  v("query_size", c.query_size);
  v("retrain_every", c.retrain_every);
  v("labels", c.labels);
  v("candidates_per_query", c.candidates_per_query);
  v("seed_examples", c.seed_examples);
  v("cold_start", c.cold_start);
  v("cold_start_labels", c.cold_start_labels);
  v("balanced_below", c.balanced_below);
  v("mc_passes", c.mc_passes);
  v("rounds", c.rounds);
  v("strategies", c.strategies);
  v("seeds", c.seeds);
  v("max_pool", c.max_pool);
  v("max_test_examples", c.max_test_examples);
}

template <typename V>
void VisitFields(Config& c, V& v) {
  v("preset", c.preset);  // first, so resolved.yaml reads in the order it is applied
  v("run", c.run);
  v("text", c.text);
  v("model", c.model);
  v("pretrain", c.pretrain);
  v("task", c.task);
  v("finetune", c.finetune);
  v("classifier", c.classifier);
  v("active", c.active);
}

// ---------------------------------------------------------------------------------------------
// Kinds of field: a list (YAML sequence), a section (a struct with a VisitFields overload), or
// a scalar (everything else: strings, numbers, booleans, enums).

template <typename T>
struct IsList : std::false_type {};
template <typename T>
struct IsList<std::vector<T>> : std::true_type {};
template <typename T>
constexpr bool kIsList = IsList<T>::value;

template <typename T>
constexpr bool kIsSection = std::is_class_v<T> && !std::is_same_v<T, std::string> && !kIsList<T>;

// ---------------------------------------------------------------------------------------------
// The key tree, built once from the table.

struct KeyInfo {
  std::string name;
  bool is_section = false;
  bool is_list = false;
  std::vector<KeyInfo> children;  // the keys of a section

  const KeyInfo* Find(absl::string_view key) const;
};

// The root: the top-level keys (preset and the sections).
const KeyInfo& Schema();

// Every key that holds a value (not a section), as full dotted paths in table order, e.g.
// "classifier.phase_lrs", "pretrain.schedule.kind".
std::vector<std::string> AllValueKeys();

// ---------------------------------------------------------------------------------------------
// One field by its dotted path ("pretrain.schedule.kind"): calls fn(field) with a reference to
// it and returns true, or returns false if no value key has that path. The presets use it.

template <typename Fn>
class PathVisitor {
 public:
  PathVisitor(std::string prefix, const std::string& path, Fn& fn, bool* found)
      : prefix_(std::move(prefix)), path_(path), fn_(fn), found_(found) {}

  template <typename T>
  void operator()(const char* key, T& field) {
    const std::string full = prefix_ + key;
    if constexpr (kIsSection<T>) {
      if (path_.compare(0, full.size() + 1, full + ".") != 0) return;
      PathVisitor sub(full + ".", path_, fn_, found_);
      VisitFields(field, sub);
    } else if (full == path_) {
      fn_(field);
      *found_ = true;
    }
  }

 private:
  std::string prefix_;
  const std::string& path_;
  Fn& fn_;
  bool* found_;
};

template <typename Fn>
bool VisitField(Config& config, const std::string& path, Fn&& fn) {
  bool found = false;
  PathVisitor<std::remove_reference_t<Fn>> visitor("", path, fn, &found);
  VisitFields(config, visitor);
  return found;
}

// ---------------------------------------------------------------------------------------------
// "Did you mean" suggestions.


// " (did you mean 'model.hidden_size'?)" for an unknown `key` in section `level` at `prefix`
// ("" or "model."), else for a key of that name elsewhere in the tree (a key put in the wrong
// section); "" if nothing is close. `rest` is appended for --set paths that continue below the
// bad part.
std::string Suggestion(const std::string& key, const KeyInfo& level, const std::string& prefix,
                       const std::string& rest = "");

}  // namespace ulmfit
