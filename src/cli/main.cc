// ulmfit command line: parses flags, loads the config, runs stages, maps errors to exit codes.
//
// Exit codes: 0 done, 1 runtime error, 2 usage or configuration error, 128+N stopped by signal N
// (a checkpoint was saved; continue with --resume).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <absl/strings/numbers.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "config/config_loader.h"
#include "active/label_session.h"
#include "active/simulation.h"
#include "active/suggest.h"
#include "infer/classifier.h"
#include "train/stages.h"
#include "util/device.h"
#include "util/json.h"
#include "util/cpu_env.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/signals.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

// A flag's integer value; a one-line error naming the flag where it is not one.
template <typename T>
bool IntArg(const std::string& flag, const std::string& value, T* out) {
  if (absl::SimpleAtoi(value, out)) return true;
  std::fprintf(stderr, "ulmfit: %s needs an integer, got '%s'\n", flag.c_str(), value.c_str());
  return false;
}

constexpr const char* kUsage = R"(usage: ulmfit --config FILE [options]
       ulmfit predict --model DIR [--model DIR2] [--input FILE] [--format jsonl|csv] [--column N]
       ulmfit evaluate --model DIR [--model DIR2] --data FILE [--output FILE]
       ulmfit suggest --model DIR --pool FILE --k N [--strategy S] [--format csv|jsonl]
       ulmfit active-learn --config FILE [--set KEY=VALUE ...]
       ulmfit label --config FILE [--set KEY=VALUE ...]

Runs the ULMFiT pipeline described by a YAML file (see docs/config.md): stage 1 pretrains a
language model (pretrain.data), stage 2 fine-tunes it on the task's text and stage 3 trains
the classifier (task.*). Stages whose outputs exist are skipped.

options:
  --config FILE        the run's YAML configuration (required)
  --set KEY=VALUE      override a config key, e.g. --set pretrain.epochs=2 (repeatable)
  --stage NAME         run only this stage: pretrain, finetune or classify
  --resume             continue an interrupted run from its last checkpoint
  --print-config       print the resolved configuration and exit
  -h, --help           show this help

predict: reads texts (FILE or stdin, one per line; --column N takes the N-th tab-separated
column, 0-based) and writes the label and class probabilities per text, in input order, as
JSON lines (default) or CSV. --model is a run directory or its model/ folder.
evaluate: scores labelled data (same format as task.train) and prints the metrics as JSON;
--output also writes them to a file.
suggest: scores every text of the pool (one per line; --column N and --id-column N pick
tab-separated columns) and writes the N most useful to label next, best first, with score,
predicted label and probabilities (CSV by default, or JSON lines; --output FILE). Strategies:
least_confidence, margin, entropy, random, diverse (default: the most uncertain, one per cluster
of similar texts). --seed N fixes random scores and clustering.
active-learn: a simulation on a labelled task.train whose labels are hidden until "queried":
stages 1-2 as usual, then rounds of training a classifier and adding the active.query_size
texts each strategy picks; test error per round in <output_dir>/active/ (results.csv, .md, .svg).
label: shows the texts of active.pool the model most wants labelled, one at a time; keys 1-9
pick a label (active.labels), s skips, u undoes, q quits. Each answer is appended to task.train
at once; the classifier is retrained every active.retrain_every labels.
predict, evaluate and suggest take --model more than once to average the models' probabilities, e.g. a forward and a
backward (model.backwards: true) run: the paper's bidirectional classifier. All take
--device (auto, cpu, cuda) and --batch-size N.
)";

struct Flags {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string stage;
  bool resume = false;
  bool print_config = false;
};

// Returns an error message, or "" on success.
std::string ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& name) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)name;
      return argv[++i];
    };
    auto split_inline = [&](const std::string& name, std::string* out) -> bool {
      if (arg.rfind(name + "=", 0) == 0) {
        *out = arg.substr(name.size() + 1);
        return true;
      }
      return false;
    };
    std::string inline_value;
    if (arg == "--config" || arg == "--set" || arg == "--stage") {
      const char* v = value(arg);
      if (v == nullptr) return fmt::format("{} needs a value", arg);
      if (arg == "--config") flags->config_path = v;
      if (arg == "--set") flags->overrides.push_back(v);
      if (arg == "--stage") flags->stage = v;
    } else if (split_inline("--config", &inline_value)) {
      flags->config_path = inline_value;
    } else if (split_inline("--set", &inline_value)) {
      flags->overrides.push_back(inline_value);
    } else if (split_inline("--stage", &inline_value)) {
      flags->stage = inline_value;
    } else if (arg == "--resume") {
      flags->resume = true;
    } else if (arg == "--print-config") {
      flags->print_config = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      return fmt::format("unknown argument '{}'", arg);
    }
  }
  if (flags->config_path.empty()) return "--config FILE is required";
  if (!flags->stage.empty() && flags->stage != "pretrain" && flags->stage != "finetune" &&
      flags->stage != "classify") {
    return fmt::format("--stage '{}' is not a stage; use pretrain, finetune or classify",
                       flags->stage);
  }
  return "";
}

// The pipeline (`ulmfit --config ...`), or with `active_learn` stages 1 and 2 followed by the
// active-learning simulation (`ulmfit active-learn --config ...`).
// Parses the flags and loads the config they name; false (after printing why) on a usage or
// configuration error.
bool FlagsAndConfig(int argc, char** argv, Flags* flags, absl::StatusOr<ulmfit::Config>* config) {
  if (const std::string error = ParseFlags(argc, argv, flags); !error.empty()) {
    std::fprintf(stderr, "ulmfit: %s\n\n%s", error.c_str(), kUsage);
    return false;
  }
  *config = ulmfit::LoadConfig(flags->config_path, flags->overrides);
  if (!config->ok()) {
    std::fprintf(stderr, "ulmfit: %s\n", std::string(config->status().message()).c_str());
    return false;
  }
  return true;
}

int Run(int argc, char** argv, bool active_learn) {
  Flags flags;
  absl::StatusOr<ulmfit::Config> config;
  if (!FlagsAndConfig(argc, argv, &flags, &config)) return kExitUsage;
  const std::string resolved = ulmfit::ConfigToYaml(*config);
  if (flags.print_config) {
    std::fputs(resolved.c_str(), stdout);
    return 0;
  }

  ulmfit::ConfigureThreads(config->run.threads);
  ulmfit::LogInfo(fmt::format("ulmfit: {}", ulmfit::DescribeComputeEnvironment()));
  ulmfit::LogInfo("ulmfit: resolved configuration:\n" + resolved);
  if (absl::Status s = ulmfit::EnsureWritableDir(config->run.output_dir, "run.output_dir");
      !s.ok()) {
    std::fprintf(stderr, "ulmfit: %s\n", std::string(s.message()).c_str());
    return kExitError;
  }
  const std::string resolved_path =
      (std::filesystem::path(config->run.output_dir) / "resolved.yaml").string();
  if (absl::Status s = ulmfit::WriteFileAtomic(resolved_path, resolved); !s.ok()) {
    std::fprintf(stderr, "ulmfit: %s\n", std::string(s.message()).c_str());
    return kExitError;
  }

  ulmfit::InstallStopSignalHandlers();
  using StageFn = absl::StatusOr<ulmfit::StageResult> (*)(const ulmfit::Config&, bool);
  const std::pair<const char*, StageFn> stages[] = {{"pretrain", ulmfit::RunPretrain},
                                                    {"finetune", ulmfit::RunFinetune},
                                                    {"classify", ulmfit::RunClassify}};
  for (const auto& [name, run] : stages) {
    if (active_learn && std::string(name) == "classify") continue;
    // finetune.pretrained: none means no stage 1, even where the file describes one;
    // classifier.language_model means neither stage 1 nor 2 (another run did them).
    const bool other_lm = !config->classifier.language_model.empty();
    const bool described =
        std::string(name) == "pretrain"
            ? !config->pretrain.data.train.empty() &&
                  config->finetune.pretrained != ulmfit::kNoPretraining && !other_lm
            : !config->task.train.empty() && !(other_lm && std::string(name) == "finetune");
    if (!flags.stage.empty() ? flags.stage != name : !described) continue;
    const absl::StatusOr<ulmfit::StageResult> result = run(*config, flags.resume);
    if (!result.ok()) {
      std::fprintf(stderr, "ulmfit: %s\n", std::string(result.status().message()).c_str());
      return kExitError;
    }
    if (result->outcome == ulmfit::StageOutcome::kInterrupted) return 128 + result->signal;
  }
  if (active_learn) {
    const absl::StatusOr<ulmfit::StageResult> result =
        ulmfit::RunActiveLearningSimulation(*config);
    if (!result.ok()) {
      std::fprintf(stderr, "ulmfit: %s\n", std::string(result.status().message()).c_str());
      return kExitError;
    }
    if (result->outcome == ulmfit::StageOutcome::kInterrupted) return 128 + result->signal;
  }
  return 0;
}

// ulmfit label --config FILE [--set KEY=VALUE ...]
int Label(int argc, char** argv) {
  Flags flags;
  absl::StatusOr<ulmfit::Config> config;
  if (!FlagsAndConfig(argc, argv, &flags, &config)) return kExitUsage;
  ulmfit::ConfigureThreads(config->run.threads);
  ulmfit::InstallStopSignalHandlers();
  const absl::StatusOr<int> code = ulmfit::RunLabelSession(*config, STDIN_FILENO, stdout);
  if (!code.ok()) {
    std::fprintf(stderr, "ulmfit: %s\n", std::string(code.status().message()).c_str());
    return kExitError;
  }
  return *code;
}

// The model folder of a run directory, or the folder itself.
std::string ModelDir(const std::string& path) {
  const auto nested = std::filesystem::path(path) / "model";
  return std::filesystem::exists(nested / ulmfit::kClassifierWeightsFile) ? nested.string()
                                                                           : path;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "ulmfit: %s\n", std::string(status.message()).c_str());
  return kExitError;
}

// Threads, device and models for the predict and evaluate commands.
absl::StatusOr<ulmfit::ClassifierEnsemble> LoadClassifier(const std::vector<std::string>& models,
                                                          const std::string& device) {
  ulmfit::ConfigureThreads(0);
  ASSIGN_OR_RETURN(const torch::Device torch_device, ulmfit::ResolveDevice(device));
  std::vector<std::string> dirs;
  for (const std::string& model : models) dirs.push_back(ModelDir(model));
  return ulmfit::ClassifierEnsemble::Load(dirs, torch_device);
}

// Texts from a file or stdin ("-"), one per line, optionally a tab-separated column of each.
class TextLines {
 public:
  explicit TextLines(std::string path) : path_(std::move(path)) {}
  ~TextLines() {
    std::free(buffer_);
    if (in_ != nullptr && in_ != stdin) std::fclose(in_);
  }
  absl::Status Open() {
    in_ = path_ == "-" ? stdin : std::fopen(path_.c_str(), "rb");
    if (in_ == nullptr) {
      return absl::NotFoundError(path_ + ": cannot open input file (check the path)");
    }
    if (in_ != stdin) {
      std::error_code ec;
      size_ = static_cast<double>(std::filesystem::file_size(path_, ec));
    }
    return absl::OkStatus();
  }
  // Reads the next line into `text` (column `text_column`, or the whole line when < 0) and
  // `id` (column `id_column`, or the 1-based line number). False at the end of the input.
  absl::StatusOr<bool> Next(int text_column, int id_column, std::string* text, std::string* id) {
    const ssize_t n = ::getline(&buffer_, &capacity_, in_);
    if (n < 0) return false;
    ++line_number_;
    std::string line(buffer_, static_cast<size_t>(n));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    ASSIGN_OR_RETURN(*text, Column(line, text_column));
    if (id != nullptr) {
      if (id_column >= 0) {
        ASSIGN_OR_RETURN(*id, Column(line, id_column));
      } else {
        *id = std::to_string(line_number_);
      }
    }
    return true;
  }
  // Fraction of the file read so far; -1 for stdin.
  double fraction() const {
    return in_ == stdin || size_ <= 0 ? -1 : static_cast<double>(std::ftell(in_)) / size_;
  }

 private:
  absl::StatusOr<std::string> Column(const std::string& line, int column) const {
    if (column < 0) return line;
    size_t start = 0;
    for (int c = 0; c < column && start != std::string::npos; ++c) {
      start = line.find('\t', start);
      if (start != std::string::npos) ++start;
    }
    if (start == std::string::npos) {
      return absl::InvalidArgumentError(fmt::format(
          "{}:{}: has no column {} (columns are tab-separated, counted from 0)",
          path_ == "-" ? "stdin" : path_, line_number_, column));
    }
    return line.substr(start, line.find('\t', start) - start);
  }

  std::string path_;
  std::FILE* in_ = nullptr;
  char* buffer_ = nullptr;
  size_t capacity_ = 0;
  int64_t line_number_ = 0;
  double size_ = 0;
};

// {"label": p, ...} for one text's class probabilities (predict and suggest JSON lines).
std::string ProbsJson(const std::vector<std::string>& names, const std::vector<float>& probs) {
  std::string json;
  for (size_t c = 0; c < names.size(); ++c) {
    json += fmt::format("{}{}: {:.6f}", c ? ", " : "", ulmfit::JsonQuote(names[c]), probs[c]);
  }
  return "{" + json + "}";
}

// A CSV field, quoted when it needs to be.
std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string quoted = "\"";
  for (char c : value) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// ulmfit predict --model DIR [--input FILE] [--format jsonl|csv] [--column N] [--batch-size N]
int Predict(const std::vector<std::string>& args) {
  std::vector<std::string> models;
  std::string input = "-", format = "jsonl", device = "auto";
  int column = -1, batch_size = 64;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--model" && has_value) models.push_back(args[++i]);
    else if (a == "--input" && has_value) input = args[++i];
    else if (a == "--format" && has_value) format = args[++i];
    else if (a == "--device" && has_value) device = args[++i];
    else if (a == "--column" && has_value) {
      if (!IntArg(a, args[++i], &column)) return kExitUsage;
    } else if (a == "--batch-size" && has_value) {
      if (!IntArg(a, args[++i], &batch_size)) return kExitUsage;
      batch_size = std::max(1, batch_size);
    } else {
      std::fprintf(stderr, "ulmfit predict: unknown or incomplete argument '%s'\n\n%s", a.c_str(), kUsage);
      return kExitUsage;
    }
  }
  if (models.empty() || (format != "jsonl" && format != "csv")) {
    std::fprintf(stderr, "ulmfit predict: --model DIR is required; --format is jsonl or csv\n");
    return kExitUsage;
  }
  const auto classifier = LoadClassifier(models, device);
  if (!classifier.ok()) return Fail(classifier.status());

  TextLines lines(input);
  if (absl::Status opened = lines.Open(); !opened.ok()) return Fail(opened);
  const auto& names = classifier->labels().names();
  if (format == "csv") {
    std::string header = "label";
    for (const auto& name : names) header += ",p_" + name;
    std::printf("%s\n", header.c_str());
  }
  // Batches of texts stream through: memory stays flat for large inputs.
  std::vector<std::string> texts;
  auto flush = [&] {
    const ulmfit::ClassifierEvaluation out = classifier->Predict(texts, batch_size);
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string& label = names[out.predicted[i]];
      if (format == "csv") {
        std::string line = label;
        for (float p : out.probs[i]) line += fmt::format(",{:.6f}", p);
        std::printf("%s\n", line.c_str());
      } else {
        std::printf("{\"label\": %s, \"probs\": %s}\n", ulmfit::JsonQuote(label).c_str(),
                    ProbsJson(names, out.probs[i]).c_str());
      }
    }
    std::fflush(stdout);
    texts.clear();
  };
  std::string text;
  while (true) {
    const absl::StatusOr<bool> more = lines.Next(column, -1, &text, nullptr);
    if (!more.ok()) return Fail(more.status());
    if (!*more) break;
    texts.push_back(std::move(text));
    if (static_cast<int>(texts.size()) >= batch_size * 16) flush();
  }
  if (!texts.empty()) flush();
  return 0;
}

// ulmfit evaluate --model DIR --data FILE [--output FILE]
int Evaluate(const std::vector<std::string>& args) {
  std::vector<std::string> models;
  std::string data, output, device = "auto";
  int batch_size = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--model" && has_value) models.push_back(args[++i]);
    else if (a == "--data" && has_value) data = args[++i];
    else if (a == "--batch-size" && has_value) {
      if (!IntArg(a, args[++i], &batch_size)) return kExitUsage;
      batch_size = std::max(1, batch_size);
    } else if (a == "--output" && has_value) output = args[++i];
    else if (a == "--device" && has_value) device = args[++i];
    else {
      std::fprintf(stderr, "ulmfit evaluate: unknown or incomplete argument '%s'\n\n%s", a.c_str(), kUsage);
      return kExitUsage;
    }
  }
  if (models.empty() || data.empty()) {
    std::fprintf(stderr, "ulmfit evaluate: --model DIR and --data FILE are required\n");
    return kExitUsage;
  }
  const auto classifier = LoadClassifier(models, device);
  if (!classifier.ok()) return Fail(classifier.status());
  const auto labeled = ulmfit::ReadLabeledData(data, classifier->config().task);
  if (!labeled.ok()) return Fail(labeled.status());
  std::vector<ulmfit::ClassificationMetrics> members;
  const auto eval = classifier->Evaluate(
      *labeled, batch_size > 0 ? batch_size : classifier->config().classifier.batch_size,
      &members);
  if (!eval.ok()) return Fail(eval.status());
  const auto& m = eval->metrics;
  ulmfit::JsonLine line;
  line.Add("data", data).Add("count", m.count).Add("loss", m.loss)
      .Add("accuracy", m.accuracy).Add("error_rate", m.error_rate).Add("macro_f1", m.macro_f1);
  if (members.size() > 1) {
    // Each member's own error rate, in --model order, beside the ensemble's.
    for (size_t i = 0; i < members.size(); ++i) {
      line.Add(fmt::format("model{}", i + 1), models[i])
          .Add(fmt::format("model{}_error_rate", i + 1), members[i].error_rate);
    }
  }
  const std::string json = line.str();
  std::printf("%s\n", json.c_str());
  if (!output.empty()) {
    if (absl::Status s = ulmfit::WriteFileAtomic(output, json + "\n"); !s.ok()) return Fail(s);
  }
  return 0;
}

// ulmfit suggest --model DIR --pool FILE --k N [--strategy S] [--format csv|jsonl] ...
int Suggest(const std::vector<std::string>& args) {
  std::vector<std::string> models;
  std::string pool, format = "csv", device = "auto", strategy_name = "diverse", output;
  int64_t k = 0;
  int text_column = -1, id_column = -1;
  ulmfit::SuggestOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--model" && has_value) models.push_back(args[++i]);
    else if (a == "--pool" && has_value) pool = args[++i];
    else if (a == "--k" && has_value) {
      if (!IntArg(a, args[++i], &k)) return kExitUsage;
    } else if (a == "--strategy" && has_value) strategy_name = args[++i];
    else if (a == "--format" && has_value) format = args[++i];
    else if (a == "--output" && has_value) output = args[++i];
    else if (a == "--device" && has_value) device = args[++i];
    else if (a == "--column" && has_value) {
      if (!IntArg(a, args[++i], &text_column)) return kExitUsage;
    } else if (a == "--id-column" && has_value) {
      if (!IntArg(a, args[++i], &id_column)) return kExitUsage;
    } else if (a == "--seed" && has_value) {
      if (!IntArg(a, args[++i], &options.seed)) return kExitUsage;
    } else if (a == "--batch-size" && has_value) {
      if (!IntArg(a, args[++i], &options.batch_size)) return kExitUsage;
      options.batch_size = std::max(1, options.batch_size);
    } else if (a == "--candidates" && has_value) {
      if (!IntArg(a, args[++i], &options.candidates_per_query)) return kExitUsage;
      options.candidates_per_query = std::max(1, options.candidates_per_query);
    } else {
      std::fprintf(stderr, "ulmfit suggest: unknown or incomplete argument '%s'\n\n%s", a.c_str(),
                   kUsage);
      return kExitUsage;
    }
  }
  if (models.empty() || pool.empty() || k < 1 || (format != "csv" && format != "jsonl")) {
    std::fprintf(stderr, "ulmfit suggest: --model DIR, --pool FILE and --k N (>= 1) are "
                         "required; --format is csv or jsonl\n");
    return kExitUsage;
  }
  const absl::StatusOr<ulmfit::Strategy> strategy = ulmfit::ParseStrategy(strategy_name);
  if (!strategy.ok()) {
    std::fprintf(stderr, "ulmfit suggest: --strategy: %s\n",
                 std::string(strategy.status().message()).c_str());
    return kExitUsage;
  }
  options.strategy = *strategy;
  options.k = k;
  const auto classifier = LoadClassifier(models, device);
  if (!classifier.ok()) return Fail(classifier.status());
  TextLines lines(pool);
  if (absl::Status opened = lines.Open(); !opened.ok()) return Fail(opened);

  // The pool streams through in chunks; only the best candidates are kept.
  ulmfit::SuggestionCollector collector(*classifier, options);
  ulmfit::ProgressLine progress;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> texts, ids;
  auto score_chunk = [&] {
    collector.Add(texts, ids);
    texts.clear();
    ids.clear();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double fraction = lines.fraction();
    const double rate = collector.seen() / std::max(seconds, 1e-9);
    progress.Update(
        fmt::format("suggest: {} texts scored{} {:.0f} texts/s{}", collector.seen(),
                    fraction >= 0 ? fmt::format(" ({:.0f}%)", 100 * fraction) : "", rate,
                    fraction > 0 ? " eta " + ulmfit::FormatDuration(seconds / fraction - seconds)
                                 : ""),
        !progress.is_tty());
  };
  std::string text, id;
  while (true) {
    const absl::StatusOr<bool> more = lines.Next(text_column, id_column, &text, &id);
    if (!more.ok()) return Fail(more.status());
    if (!*more) break;
    texts.push_back(std::move(text));
    ids.push_back(std::move(id));
    if (static_cast<int>(texts.size()) >= options.batch_size * 16) score_chunk();
  }
  if (!texts.empty()) score_chunk();
  progress.Finish();
  if (collector.seen() == 0) {
    return Fail(absl::InvalidArgumentError(pool + ": the pool has no texts"));
  }
  const std::vector<ulmfit::Suggestion> chosen = collector.Finish();

  const auto& names = classifier->labels().names();
  std::string out;
  if (format == "csv") {
    out = "rank,id,score,label";
    for (const auto& name : names) out += ",p_" + CsvField(name);
    out += ",text\n";
  }
  for (size_t r = 0; r < chosen.size(); ++r) {
    const ulmfit::Suggestion& s = chosen[r];
    if (format == "csv") {
      out += fmt::format("{},{},{:.6f},{}", r + 1, CsvField(s.id), s.score,
                         CsvField(names[s.predicted]));
      for (float p : s.probs) out += fmt::format(",{:.6f}", p);
      out += "," + CsvField(s.text) + "\n";
    } else {
      out += fmt::format("{{\"rank\": {}, \"id\": {}, \"score\": {:.6f}, \"label\": {}, "
                         "\"probs\": {}, \"text\": {}}}\n",
                         r + 1, ulmfit::JsonQuote(s.id), s.score,
                         ulmfit::JsonQuote(names[s.predicted]), ProbsJson(names, s.probs),
                         ulmfit::JsonQuote(s.text));
    }
  }
  ulmfit::LogInfo(fmt::format("suggest: {} of {} texts chosen by {}", chosen.size(),
                              collector.seen(), strategy_name));
  if (output.empty()) {
    std::fputs(out.c_str(), stdout);
    return 0;
  }
  if (absl::Status s = ulmfit::WriteFileAtomic(output, out); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ulmfit::EnsureFastCpuEnvironment(argc, argv);
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    const std::vector<std::string> args(argc > 2 ? argv + 2 : argv + argc, argv + argc);
    if (command == "predict") return Predict(args);
    if (command == "evaluate") return Evaluate(args);
    if (command == "suggest") return Suggest(args);
    if (command == "active-learn") return Run(argc - 1, argv + 1, /*active_learn=*/true);
    if (command == "label") return Label(argc - 1, argv + 1);
    return Run(argc, argv, /*active_learn=*/false);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "ulmfit: internal error: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ulmfit: internal error: %s\n", e.what());
  }
  return kExitError;
}
