#include "config/config_loader.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "fmt/format.h"
#include "util/status.h"
#include "yaml-cpp/yaml.h"

namespace ulmfit {
namespace {

// ---------------------------------------------------------------------------------------------
// The key table. One line per YAML key: parsing, ConfigToYaml, the unknown-key check and --set
// all walk it, so the key list exists only here. `v(key, field)` reads or writes a scalar field;
// a struct field is a nested section. A new key also needs its range check in ValidateConfig()
// and a row in docs/config.md.

template <typename V>
void VisitFields(RunConfig& c, V& v) {
  v("output_dir", c.output_dir);
  v("seed", c.seed);
  v("device", c.device);
  v("threads", c.threads);
  v("checkpoint_minutes", c.checkpoint_minutes);
  v("log_every", c.log_every);
}

template <typename V>
void VisitFields(TextConfig& c, V& v) {
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

// Struct fields are sections (nested maps); everything else is a scalar.
template <typename T>
constexpr bool kIsSection = std::is_class_v<T> && !std::is_same_v<T, std::string>;

std::vector<std::string> PresetNames() { return {"fastai", "paper"}; }

// ---------------------------------------------------------------------------------------------
// The key tree, built once from the table, for unknown-key checks, suggestions and --set paths.

struct KeyInfo {
  std::string name;
  bool is_section = false;
  std::vector<KeyInfo> children;  // the keys of a section

  const KeyInfo* Find(absl::string_view key) const {
    for (const KeyInfo& child : children) {
      if (child.name == key) return &child;
    }
    return nullptr;
  }
};

class SchemaBuilder {
 public:
  explicit SchemaBuilder(KeyInfo* level) : level_(level) {}

  template <typename T>
  void operator()(const char* key, T& field) {
    KeyInfo info;
    info.name = key;
    if constexpr (kIsSection<T>) {
      info.is_section = true;
      SchemaBuilder sub(&info);
      VisitFields(field, sub);
    }
    level_->children.push_back(std::move(info));
  }

 private:
  KeyInfo* level_;
};

const KeyInfo& Schema() {
  static const KeyInfo* const root = [] {
    auto* info = new KeyInfo;
    Config defaults;
    SchemaBuilder builder(info);
    VisitFields(defaults, builder);
    return info;
  }();
  return *root;
}

// ---------------------------------------------------------------------------------------------
// "Did you mean" suggestions.

int EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word`: a case-insensitive match, a prefix either way, or within edit
// distance 3 (and shorter than the word itself, so "foo" does not suggest "run"). "" if none.
std::string ClosestWord(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string lower = absl::AsciiStrToLower(word);
  constexpr int kNoMatch = 4;
  int best_score = kNoMatch;
  std::string best;
  for (const std::string& candidate : candidates) {
    int score = kNoMatch;
    if (lower == candidate) {
      score = 0;
    } else if (lower.size() >= 2 &&
               (absl::StartsWith(candidate, lower) || absl::StartsWith(lower, candidate))) {
      score = 1;
    } else {
      const int distance = EditDistance(lower, candidate);
      if (distance <= 3 && distance < static_cast<int>(lower.size())) score = distance;
    }
    if (score < best_score) {
      best_score = score;
      best = candidate;
    }
  }
  return best;
}

// Full dotted paths of every key named `name` anywhere in the tree (a key put in the wrong
// section, e.g. a top-level `epochs:`).
void FindEverywhere(const KeyInfo& level, const std::string& prefix, const std::string& name,
                    std::vector<std::string>* found) {
  for (const KeyInfo& child : level.children) {
    if (child.name == name) found->push_back(prefix + child.name);
    if (child.is_section) FindEverywhere(child, prefix + child.name + ".", name, found);
  }
}

// " (did you mean 'model.hidden_size'?)" for an unknown `key` in section `level` at `prefix`
// ("" or "model."); `rest` is appended for --set paths that continue below the bad part.
std::string Suggestion(const std::string& key, const KeyInfo& level, const std::string& prefix,
                       const std::string& rest = "") {
  std::vector<std::string> names;
  for (const KeyInfo& child : level.children) names.push_back(child.name);
  std::string best = ClosestWord(key, names);
  if (!best.empty()) {
    best = prefix + best + rest;
  } else {
    std::vector<std::string> elsewhere;
    FindEverywhere(Schema(), "", absl::AsciiStrToLower(key), &elsewhere);
    if (elsewhere.empty()) return "";
    best = elsewhere.front() + rest;
  }
  return absl::StrCat(" (did you mean '", best, "'?)");
}

// ---------------------------------------------------------------------------------------------
// Scalars: text <-> typed value. Each Parse returns false if `text` is not a valid T.

bool Parse(const std::string& text, std::string* out) {
  *out = text;
  return true;
}

bool Parse(const std::string& text, bool* out) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true" || lower == "yes") {
    *out = true;
  } else if (lower == "false" || lower == "no") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

bool Parse(const std::string& text, double* out) {
  double value;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) return false;
  *out = value;
  return true;
}

// Integers also accept an exact float such as 2e6, handy for sizes.
template <typename Int>
bool ParseInteger(const std::string& text, Int* out) {
  if (absl::SimpleAtoi(text, out)) return true;
  double value;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value) || value != std::floor(value)) {
    return false;
  }
  const double lo = static_cast<double>(std::numeric_limits<Int>::min());
  const double hi = static_cast<double>(std::numeric_limits<Int>::max()) + 1.0;
  if (value < lo || value >= hi) return false;
  *out = static_cast<Int>(value);
  return true;
}

bool Parse(const std::string& text, int* out) { return ParseInteger(text, out); }
bool Parse(const std::string& text, int64_t* out) { return ParseInteger(text, out); }
bool Parse(const std::string& text, uint64_t* out) { return ParseInteger(text, out); }

const char* TypeName(const std::string*) { return "a string"; }
const char* TypeName(const bool*) { return "true or false (yes/no)"; }
const char* TypeName(const double*) { return "a number"; }
const char* TypeName(const int*) { return "an integer"; }
const char* TypeName(const int64_t*) { return "an integer"; }
const char* TypeName(const uint64_t*) { return "a non-negative integer"; }

template <typename T>
std::string Format(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else {
    return fmt::format("{}", value);  // doubles: shortest text that reads back exactly
  }
}

// What a node holds, for "got ..." in messages.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", node.Scalar(), "'");
    default:
      return "nothing";
  }
}

// ---------------------------------------------------------------------------------------------
// YAML tree -> Config.

std::string JoinErrors(const std::vector<std::string>& errors) {
  // One line, whatever yaml-cpp or a value put in.
  return absl::StrReplaceAll(absl::StrJoin(errors, "; "), {{"\n", " "}, {"\r", " "}});
}

struct LoadContext {
  std::string source;                              // file path or source name
  std::map<std::string, std::string> set_sources;  // "a.b" -> "--set a.b=v" that set it
  std::map<std::string, std::string> locations;    // becomes Config::key_locations
  std::vector<std::pair<YAML::Mark, std::string>> errors;

  void AddError(const YAML::Mark& mark, std::string text) {
    errors.emplace_back(mark, std::move(text));
  }

  // All errors on one line, in file order (--set ones first) so a long message reads naturally.
  absl::Status ErrorStatus() const {
    std::vector<std::pair<YAML::Mark, std::string>> sorted = errors;
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.first.line, a.first.column) <
             std::make_pair(b.first.line, b.first.column);
    });
    std::vector<std::string> texts;
    for (const auto& error : sorted) texts.push_back(error.second);
    return absl::InvalidArgumentError(JoinErrors(texts));
  }

  std::string Locate(const std::string& path, const YAML::Mark& mark) const {
    auto it = set_sources.find(path);
    if (it != set_sources.end()) return it->second;
    if (mark.is_null()) return source;
    return absl::StrCat(source, ":", mark.line + 1, ":", mark.column + 1);
  }
};

// Reads one YAML map into the struct whose key table it is handed to (VisitFields(s, reader)).
// The constructor reports unknown and duplicate keys; operator() converts the known ones.
class YamlReader {
 public:
  YamlReader(const YAML::Node& map, const KeyInfo& level, std::string prefix, LoadContext* ctx)
      : level_(level), prefix_(std::move(prefix)), ctx_(ctx) {
    for (const auto& entry : map) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        ctx_->AddError(key.Mark(), absl::StrCat(ctx_->Locate("", key.Mark()),
                                                ": keys must be plain names, got ", Describe(key)));
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string path = prefix_ + name;
      const std::string where = ctx_->Locate(path, key.Mark());
      if (level_.Find(name) == nullptr) {
        ctx_->AddError(key.Mark(), absl::StrCat(where, ": unknown key '", path, "'",
                                                Suggestion(name, level_, prefix_)));
      } else if (!entries_.emplace(name, Entry{key, entry.second}).second) {
        ctx_->AddError(key.Mark(), absl::StrCat(where, ": duplicate key '", path, "'"));
      }
    }
  }

  template <typename T>
  void operator()(const char* key, T& field) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;  // missing keys keep their default
    const std::string path = prefix_ + key;
    const YAML::Node& value = it->second.value;
    const std::string where = ctx_->Locate(path, it->second.key.Mark());
    ctx_->locations[path] = where;
    if constexpr (kIsSection<T>) {
      if (value.IsNull()) return;  // "model:" with nothing below keeps the defaults
      if (!value.IsMap()) {
        ctx_->AddError(it->second.key.Mark(),
                       absl::StrCat(where, ": ", path, ": expected a section (a map of keys), got ",
                                    Describe(value)));
        return;
      }
      YamlReader sub(value, *level_.Find(key), path + ".", ctx_);
      VisitFields(field, sub);
    } else {
      if constexpr (std::is_same_v<T, std::string>) {
        if (value.IsNull()) {  // "valid:" with no value means empty
          field.clear();
          return;
        }
      }
      if (!value.IsScalar() || !Parse(value.Scalar(), &field)) {
        ctx_->AddError(it->second.key.Mark(),
                       absl::StrCat(where, ": ", path, ": expected ", TypeName(&field), ", got ",
                                    Describe(value)));
      }
    }
  }

 private:
  struct Entry {
    YAML::Node key;
    YAML::Node value;
  };
  const KeyInfo& level_;
  std::string prefix_;
  LoadContext* ctx_;
  std::map<std::string, Entry> entries_;
};

// Reads the whole tree into `config`, starting from its current values.
void ReadTree(const YAML::Node& root, Config* config, LoadContext* ctx) {
  YamlReader reader(root, Schema(), "", ctx);
  VisitFields(*config, reader);
}

// Applies one --set "a.b.c=value" to the YAML tree; errors go to ctx->errors.
void ApplyOverride(const std::string& spec, YAML::Node root, LoadContext* ctx) {
  const std::string where = absl::StrCat("--set ", spec);
  const size_t eq = spec.find('=');
  const std::string path =
      std::string(absl::StripAsciiWhitespace(absl::string_view(spec).substr(0, eq)));
  if (eq == std::string::npos || path.empty()) {
    ctx->AddError(YAML::Mark::null_mark(),
                  absl::StrCat(where, ": expected section.key=value, e.g. --set pretrain.lr=1e-3"));
    return;
  }
  const std::string value(absl::StripAsciiWhitespace(absl::string_view(spec).substr(eq + 1)));
  const std::vector<std::string> parts = absl::StrSplit(path, '.');

  // Check the whole path against the key tree first, so nothing is created for a typo.
  const KeyInfo* level = &Schema();
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    const KeyInfo* key = level->Find(parts[i]);
    const bool last = i + 1 == parts.size();
    if (key == nullptr) {
      std::string rest;
      for (size_t j = i + 1; j < parts.size(); ++j) absl::StrAppend(&rest, ".", parts[j]);
      ctx->AddError(YAML::Mark::null_mark(),
                    absl::StrCat(where, ": unknown key '", path, "'",
                                 Suggestion(parts[i], *level, prefix, rest)));
      return;
    }
    if (key->is_section && last) {
      ctx->AddError(YAML::Mark::null_mark(),
                    absl::StrCat(where, ": '", path, "' is a section; set one of its keys, e.g. '",
                                 path, ".", key->children.front().name, "'"));
      return;
    }
    if (!key->is_section && !last) {
      ctx->AddError(YAML::Mark::null_mark(),
                    absl::StrCat(where, ": unknown key '", path, "' ('", prefix, key->name,
                                 "' is a value, not a section)"));
      return;
    }
    level = key;
    prefix += parts[i] + ".";
  }

  // Walk down, creating sections the file does not have. Node::reset rebinds a handle;
  // plain assignment would overwrite the node it points at.
  YAML::Node node = root;
  std::string section;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    section += (i ? "." : "") + parts[i];
    YAML::Node child = node[parts[i]];
    if (!child.IsMap()) {
      if (child.IsDefined() && !child.IsNull()) {
        ctx->AddError(child.Mark(),
                      absl::StrCat(ctx->Locate(section, child.Mark()), ": ", section,
                                   ": expected a section (a map of keys), got ", Describe(child)));
        return;
      }
      node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child.reset(node[parts[i]]);
    }
    node.reset(child);
  }
  node[parts.back()] = value;
  ctx->set_sources[path] = where;
}

// ---------------------------------------------------------------------------------------------
// Validation.

class Checker {
 public:
  explicit Checker(const Config& config) : config_(config) {}

  // Records "LOCATION: KEY must be RULE, got VALUE" unless `ok`.
  template <typename T>
  void Expect(bool ok, const std::string& key, absl::string_view rule, const T& got) {
    if (ok) return;
    std::string shown = Format(got);
    if constexpr (std::is_same_v<T, std::string>) shown = absl::StrCat("'", shown, "'");
    errors_.push_back(absl::StrCat(Locate(key), ": ", key, " must be ", rule, ", got ", shown));
  }

  void OneOf(const std::string& key, const std::string& value,
             const std::vector<std::string>& allowed) {
    for (const std::string& option : allowed) {
      if (value == option) return;
    }
    const std::string best = ClosestWord(value, allowed);
    errors_.push_back(absl::StrCat(
        Locate(key), ": ", key, " must be one of ", absl::StrJoin(allowed, ", "), ", got '", value,
        "'", best.empty() ? "" : absl::StrCat(" (did you mean '", best, "'?)")));
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

  absl::Status Result() const {
    if (errors_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(JoinErrors(errors_));
  }

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
  check->OneOf(p + ".format", d.format, {"auto", "lines", "files"});
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
                  absl::StrCat("< ", Format(1 / largest.second), " so that drop_mult * ",
                               dropout_prefix, ".", largest.first, " (", Format(largest.second),
                               ") stays below 1"),
                  mult);
  }
}

void CheckSchedule(const ScheduleConfig& s, const std::string& p, Checker* check) {
  check->OneOf(p + ".kind", s.kind, {"stlr", "one_cycle", "constant"});
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
}

// The comma-separated items of `list`, whitespace-trimmed; no items for a blank string.
std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> items;
  if (absl::StripAsciiWhitespace(list).empty()) return items;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    items.emplace_back(absl::StripAsciiWhitespace(item));
  }
  return items;
}

// Parses the classifier's phase lists into `phases`; returns (key, message) for each problem,
// messages without a location. Both ParsePhases and ValidateConfig use it.
std::vector<std::pair<std::string, std::string>> ParsePhaseLists(
    const ClassifierConfig& c, std::vector<UnfreezePhase>* phases) {
  struct List {
    const char* key;
    const std::string& text;
    const char* rule;  // what each item must be
    std::vector<std::string> items;
  };
  List groups{"classifier.phase_groups", c.phase_groups, "positive integers or 'all'", {}};
  List epochs{"classifier.phase_epochs", c.phase_epochs, "integers >= 0", {}};
  List lrs{"classifier.phase_lrs", c.phase_lrs, "numbers > 0", {}};
  std::vector<std::pair<std::string, std::string>> errors;
  auto bad_item = [&errors](const List& list, size_t i) {
    errors.emplace_back(list.key, absl::StrCat(list.key, " items must be ", list.rule, ", got '",
                                               list.items[i], "' (item ", i + 1, " of '",
                                               list.text, "')"));
  };

  for (List* list : {&groups, &epochs, &lrs}) {
    list->items = SplitList(list->text);
    if (list->items.empty()) {
      errors.emplace_back(list->key,
                          absl::StrCat(list->key, " must list at least one phase (",
                                       list->rule, ", comma-separated), got '", list->text, "'"));
    }
  }
  for (const List* list : {&epochs, &lrs}) {
    if (groups.items.empty() || list->items.empty() || list->items.size() == groups.items.size()) {
      continue;
    }
    errors.emplace_back(
        list->key, absl::StrCat(list->key, " has ", list->items.size(), " items ('", list->text,
                                "') but classifier.phase_groups has ", groups.items.size(),
                                " ('", groups.text,
                                "'); the phase lists need one item per phase each"));
  }

  phases->assign(groups.items.size(), UnfreezePhase{0, 0, 0.0});
  for (size_t i = 0; i < groups.items.size(); ++i) {
    int value = 0;
    if (groups.items[i] == "all") {
      (*phases)[i].groups = 0;
    } else if (ParseInteger(groups.items[i], &value) && value >= 1) {
      (*phases)[i].groups = value;
    } else {
      bad_item(groups, i);
    }
  }
  int64_t total_epochs = 0;
  bool epochs_ok = true;
  for (size_t i = 0; i < epochs.items.size(); ++i) {
    int value = 0;
    if (ParseInteger(epochs.items[i], &value) && value >= 0) {
      if (i < phases->size()) (*phases)[i].epochs = value;
      total_epochs += value;
    } else {
      bad_item(epochs, i);
      epochs_ok = false;
    }
  }
  if (epochs_ok && !epochs.items.empty() && total_epochs == 0) {
    errors.emplace_back(epochs.key, absl::StrCat(epochs.key, " must add up to at least 1 epoch, "
                                                 "got '", epochs.text, "'"));
  }
  for (size_t i = 0; i < lrs.items.size(); ++i) {
    double value = 0;
    if (Parse(lrs.items[i], &value) && value > 0) {
      if (i < phases->size()) (*phases)[i].lr = value;
    } else {
      bad_item(lrs, i);
    }
  }
  if (!errors.empty()) phases->clear();
  return errors;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::vector<UnfreezePhase>> ParsePhases(const ClassifierConfig& classifier) {
  std::vector<UnfreezePhase> phases;
  const std::vector<std::pair<std::string, std::string>> errors =
      ParsePhaseLists(classifier, &phases);
  if (errors.empty()) return phases;
  std::vector<std::string> messages;
  for (const auto& error : errors) messages.push_back(error.second);
  return absl::InvalidArgumentError(JoinErrors(messages));
}

void ApplyPreset(const std::string& name, Config* config) {
  const bool paper = name == "paper";
  if (!paper && name != "fastai") return;
  config->preset = name;
  // Both presets set every field below, so applying one after the other is well defined.
  // paper: Howard & Ruder 2018 and its scripts (ULMFIT_REFERENCE.md section 1); fastai: fastai
  // v2 and fastbook chapter 10 (section 2), which are also the struct defaults of stages 2 and 3.
  auto set_schedule = [paper](ScheduleConfig* s) {
    s->kind = paper ? "stlr" : "one_cycle";  // slanted triangular (eq. 3) vs fit_one_cycle
    s->cut_frac = 0.1;                       // STLR eq. 3 values; one_cycle ignores them
    s->ratio = 32;
  };
  // Adam: the paper's betas; one_cycle cycles beta1 with mom_max/mom_min instead. eps: PyTorch
  // vs fastai. Weight decay and clipping: the paper's scripts vs fastai (true_wd 0.01,
  // to_fp16(clip=0.1)).
  auto set_optimizer = [paper](OptimizerConfig* o, double paper_weight_decay, double paper_clip) {
    o->beta1 = 0.7;
    o->beta2 = 0.99;
    o->eps = paper ? 1e-8 : 1e-5;
    o->weight_decay = paper ? paper_weight_decay : 0.01;
    o->clip = paper ? paper_clip : 0.1;
  };

  config->model.hidden_size = paper ? 1150 : 1152;  // AWD-LSTM paper vs fastai's n_hid

  PretrainConfig& p = config->pretrain;  // stage 1
  p.variable_bptt = paper;  // AWD-LSTM random lengths vs fastai v2's fixed seq_len
  p.bptt = paper ? 70 : 72;
  p.lr = paper ? 4e-3 : 1e-2;  // paper: LM fine-tuning lr 0.004 [P 4.1]
  set_schedule(&p.schedule);
  set_optimizer(&p.optimizer, 1e-7, 0.3);

  FinetuneConfig& f = config->finetune;  // stage 2: LM fine-tuning
  f.variable_bptt = paper;
  f.bptt = paper ? 70 : 72;
  f.lr = paper ? 4e-3 : 2e-3;  // [P 4.1] vs fastbook's unfrozen fit_one_cycle(10, 2e-3)
  f.frozen_epochs = paper ? 0 : 1;  // fastbook first trains embedding + decoder for one epoch
  f.discriminative = "factor";  // lr / 2.6^k [P 3.2]; the scripts' lr/6, lr/3, lr, lr/2 = "scripts"
  f.drop_mult = paper ? 1.0 : 0.3;  // the scripts' dropmult=1 vs fastbook's 0.3
  set_schedule(&f.schedule);
  set_optimizer(&f.optimizer, 1e-7, 0.3);  // the scripts' finetune_lm.py

  ClassifierConfig& c = config->classifier;  // stage 3
  c.drop_mult = paper ? 1.0 : 0.5;  // fastai v1 / scripts vs v2 text_classifier_learner
  c.bptt = paper ? 70 : 72;
  c.max_len = paper ? 70 * 20 : 72 * 20;
  // paper: one epoch each with the top one and two groups, then everything until 50 epochs in
  // all ([P 3.3], footnote 7; the scripts have no third partial stage), lr 0.01 [P 4.1].
  // fastai: fastbook's 1, 2, 3 groups, then all for 2 epochs.
  c.phase_groups = paper ? "1,2,all" : "1,2,3,all";
  c.phase_epochs = paper ? "1,1,48" : "1,1,1,2";
  c.phase_lrs = paper ? "1e-2,1e-2,1e-2" : "2e-2,1e-2,5e-3,1e-3";
  c.lr_factor = 2.6;  // [P 3.2]; fastbook's slice(lr / 2.6**4, lr)
  set_schedule(&c.schedule);
  set_optimizer(&c.optimizer, 1e-6, 25);  // the scripts' train_clas.py (the notebook: wd 0)
}

absl::StatusOr<Config> LoadConfigFromString(const std::string& yaml, const std::string& source_name,
                                            const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    const std::string where =
        e.mark.is_null() ? source_name
                         : absl::StrCat(source_name, ":", e.mark.line + 1, ":", e.mark.column + 1);
    return absl::InvalidArgumentError(
        JoinErrors({absl::StrCat(where, ": malformed YAML: ", e.msg)}));
  }

  std::vector<std::string> sections;
  for (const KeyInfo& key : Schema().children) sections.push_back(key.name);
  if (!root.IsDefined() || root.IsNull()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": the config is empty; expected a map with keys such as ",
                     absl::StrJoin(sections, ", "), " (see docs/config.md)"));
  }
  if (!root.IsMap()) {
    const YAML::Mark mark = root.Mark();
    return absl::InvalidArgumentError(absl::StrCat(
        mark.is_null() ? source_name
                       : absl::StrCat(source_name, ":", mark.line + 1, ":", mark.column + 1),
        ": the top level must be a map with keys such as ", absl::StrJoin(sections, ", "), ", got ",
        Describe(root)));
  }

  LoadContext ctx;
  ctx.source = source_name;
  for (const std::string& spec : overrides) ApplyOverride(spec, root, &ctx);
  if (!ctx.errors.empty()) return ctx.ErrorStatus();

  // A first read finds every key and type error and the preset; the second applies the file on
  // top of that preset's defaults.
  Config scratch;
  ReadTree(root, &scratch, &ctx);
  if (!ctx.errors.empty()) return ctx.ErrorStatus();
  const std::vector<std::string> presets = PresetNames();
  bool known_preset = false;
  for (const std::string& name : presets) known_preset |= scratch.preset == name;
  if (!known_preset) {
    const std::string best = ClosestWord(scratch.preset, presets);
    return absl::InvalidArgumentError(
        absl::StrCat(ctx.locations["preset"], ": preset: unknown preset '", scratch.preset, "'",
                     best.empty() ? "" : absl::StrCat(" (did you mean '", best, "'?)"),
                     "; choose one of ", absl::StrJoin(presets, ", ")));
  }

  Config config;
  ApplyPreset(scratch.preset, &config);
  ReadTree(root, &config, &ctx);
  config.source_path = source_name;
  config.key_locations = std::move(ctx.locations);
  RETURN_IF_ERROR(ValidateConfig(config));
  return config;
}

absl::StatusOr<Config> LoadConfig(const std::string& path,
                                  const std::vector<std::string>& overrides) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a directory; expected a YAML config file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read config file (does it exist?)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return LoadConfigFromString(text.str(), path, overrides);
}

namespace {

class YamlWriter {
 public:
  explicit YamlWriter(YAML::Emitter* out) : out_(out) {}

  template <typename T>
  void operator()(const char* key, T& field) {
    *out_ << YAML::Key << key << YAML::Value;
    if constexpr (kIsSection<T>) {
      *out_ << YAML::BeginMap;
      VisitFields(field, *this);
      *out_ << YAML::EndMap;
    } else {
      *out_ << Format(field);  // the emitter quotes strings that need it
    }
  }

 private:
  YAML::Emitter* out_;
};

}  // namespace

std::string ConfigToYaml(const Config& config) {
  Config copy = config;  // the key table hands out mutable references
  YAML::Emitter out;
  out << YAML::BeginMap;
  YamlWriter writer(&out);
  VisitFields(copy, writer);
  out << YAML::EndMap;
  return absl::StrCat(out.c_str(), "\n");
}

absl::Status ValidateConfig(const Config& config) {
  Checker check(config);
  check.OneOf("preset", config.preset, PresetNames());

  const RunConfig& run = config.run;
  check.Expect(!run.output_dir.empty(), "run.output_dir", "a directory path", run.output_dir);
  check.Expect(IsDevice(run.device), "run.device", "auto, cpu, cuda or cuda:N", run.device);
  check.AtLeast("run.threads", run.threads, 0);
  check.NonNegative("run.checkpoint_minutes", run.checkpoint_minutes);
  check.AtLeast("run.log_every", run.log_every, 1);

  const TextConfig& text = config.text;
  check.AtLeast("text.vocab_size", text.vocab_size, 16);
  check.OneOf("text.model_type", text.model_type, {"unigram", "bpe"});
  check.Expect(text.character_coverage > 0 && text.character_coverage <= 1,
               "text.character_coverage", "in (0, 1]", text.character_coverage);
  check.AtLeast<int64_t>("text.max_training_sentences", text.max_training_sentences, 0);
  check.AtLeast("text.threads", text.threads, 0);

  const ModelConfig& model = config.model;
  check.AtLeast("model.emb_size", model.emb_size, 1);
  check.AtLeast("model.hidden_size", model.hidden_size, 1);
  check.AtLeast("model.num_layers", model.num_layers, 1);
  CheckDropouts(model.dropout, "model.dropout", &check);
  CheckDropMult("model.drop_mult", model.drop_mult, model.dropout, "model.dropout", &check);

  CheckStages(config, &check);

  const PretrainConfig& pre = config.pretrain;
  CheckLmData(pre.data, "pretrain.data", &check);
  check.AtLeast("pretrain.epochs", pre.epochs, 1);
  check.AtLeast("pretrain.batch_size", pre.batch_size, 1);
  check.AtLeast("pretrain.bptt", pre.bptt, 2);
  check.Positive("pretrain.lr", pre.lr);
  CheckSchedule(pre.schedule, "pretrain.schedule", &check);
  CheckOptimizer(pre.optimizer, "pretrain.optimizer", &check);
  check.NonNegative("pretrain.ar_alpha", pre.ar_alpha);
  check.NonNegative("pretrain.tar_beta", pre.tar_beta);
  check.AtLeast<int64_t>("pretrain.max_steps", pre.max_steps, 0);

  const TaskDataConfig& task = config.task;
  check.Expect(task.valid_fraction >= 0 && task.valid_fraction <= 0.5, "task.valid_fraction",
               "in [0, 0.5]", task.valid_fraction);
  check.OneOf("task.format", task.format, {"auto", "tsv", "csv", "folders"});
  check.Expect(!absl::StripAsciiWhitespace(task.label_column).empty(), "task.label_column",
               "a column name or 0-based index", task.label_column);
  check.Expect(!absl::StripAsciiWhitespace(task.text_columns).empty(), "task.text_columns",
               "comma-separated column names or 0-based indices", task.text_columns);
  check.OneOf("task.header", task.header, {"auto", "yes", "no"});
  check.AtLeast<int64_t>("task.max_train_examples", task.max_train_examples, 0);
  check.AtLeast<int64_t>("task.max_valid_examples", task.max_valid_examples, 0);
  check.AtLeast<int64_t>("task.max_test_examples", task.max_test_examples, 0);
  check.AtLeast<int64_t>("task.max_unlabeled", task.max_unlabeled, 0);

  const FinetuneConfig& fine = config.finetune;
  check.AtLeast("finetune.epochs", fine.epochs, 0);
  check.AtLeast("finetune.batch_size", fine.batch_size, 1);
  check.AtLeast("finetune.bptt", fine.bptt, 2);
  check.Positive("finetune.lr", fine.lr);
  check.OneOf("finetune.discriminative", fine.discriminative, {"factor", "scripts", "none"});
  check.Expect(fine.lr_factor >= 1, "finetune.lr_factor", ">= 1", fine.lr_factor);
  check.AtLeast("finetune.frozen_epochs", fine.frozen_epochs, 0);
  check.Positive("finetune.frozen_lr", fine.frozen_lr);
  // Stage 2 uses the LM dropouts (model.dropout) times its own drop_mult.
  CheckDropMult("finetune.drop_mult", fine.drop_mult, model.dropout, "model.dropout", &check);
  CheckSchedule(fine.schedule, "finetune.schedule", &check);
  CheckOptimizer(fine.optimizer, "finetune.optimizer", &check);
  check.NonNegative("finetune.ar_alpha", fine.ar_alpha);
  check.NonNegative("finetune.tar_beta", fine.tar_beta);
  check.AtLeast<int64_t>("finetune.max_steps", fine.max_steps, 0);

  const ClassifierConfig& clas = config.classifier;
  CheckDropouts(clas.dropout, "classifier.dropout", &check);
  CheckDropMult("classifier.drop_mult", clas.drop_mult, clas.dropout, "classifier.dropout",
                &check);
  check.AtLeast("classifier.hidden", clas.hidden, 1);
  check.Probability("classifier.head_dropout", clas.head_dropout);
  check.AtLeast("classifier.batch_size", clas.batch_size, 1);
  check.AtLeast("classifier.bptt", clas.bptt, 2);
  check.Expect(clas.max_len >= clas.bptt, "classifier.max_len",
               absl::StrCat(">= classifier.bptt (", clas.bptt, ")"), clas.max_len);
  std::vector<UnfreezePhase> phases;
  for (const auto& [key, message] : ParsePhaseLists(clas, &phases)) check.Fail(key, message);
  check.Expect(clas.lr_factor >= 1, "classifier.lr_factor", ">= 1", clas.lr_factor);
  CheckSchedule(clas.schedule, "classifier.schedule", &check);
  CheckOptimizer(clas.optimizer, "classifier.optimizer", &check);
  check.NonNegative("classifier.ar_alpha", clas.ar_alpha);
  check.NonNegative("classifier.tar_beta", clas.tar_beta);
  check.OneOf("classifier.select_metric", clas.select_metric, {"accuracy", "macro_f1", "loss"});
  check.AtLeast<int64_t>("classifier.max_steps", clas.max_steps, 0);
  check.AtLeast<int64_t>("classifier.min_steps_per_epoch", clas.min_steps_per_epoch, 0);
  check.AtLeast<int64_t>("classifier.precise_bn_docs", clas.precise_bn_docs, 0);

  const ActiveConfig& active = config.active;
  const std::vector<std::string> strategy_names = {"least_confidence", "margin", "entropy",
                                                   "random", "diverse"};
  check.OneOf("active.strategy", active.strategy, strategy_names);
  for (const std::string& name : SplitList(active.strategies)) {
    check.OneOf("active.strategies", name, strategy_names);
  }
  for (const std::string& seed : SplitList(active.seeds)) {
    uint64_t value = 0;
    if (!absl::SimpleAtoi(seed, &value)) {
      check.Fail("active.seeds", absl::StrCat("'", seed, "' is not a non-negative integer; "
                                              "write seeds as a list such as 1,2,3"));
    }
  }
  check.AtLeast("active.query_size", active.query_size, 1);
  check.AtLeast("active.retrain_every", active.retrain_every, 1);
  check.AtLeast("active.candidates_per_query", active.candidates_per_query, 1);
  check.AtLeast("active.seed_examples", active.seed_examples, 2);
  check.AtLeast("active.rounds", active.rounds, 1);
  check.AtLeast<int64_t>("active.max_pool", active.max_pool, 0);
  check.AtLeast<int64_t>("active.max_test_examples", active.max_test_examples, 0);
  return check.Result();
}

}  // namespace ulmfit
