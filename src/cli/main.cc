// ulmfit command line: parses flags, loads the config, runs stages, maps errors to exit codes.
//
// Exit codes: 0 done, 1 runtime error, 2 usage or configuration error, 128+N stopped by signal N
// (a checkpoint was saved; continue with --resume).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "config/config_loader.h"
#include "train/classifier_eval.h"
#include "train/stages.h"
#include "util/json.h"
#include "util/cpu_env.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/signals.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(usage: ulmfit --config FILE [options]
       ulmfit predict --model DIR [--input FILE] [--format jsonl|csv] [--column N]
       ulmfit evaluate --model DIR --data FILE [--output FILE]

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

int Run(int argc, char** argv) {
  Flags flags;
  if (const std::string error = ParseFlags(argc, argv, &flags); !error.empty()) {
    std::fprintf(stderr, "ulmfit: %s\n\n%s", error.c_str(), kUsage);
    return kExitUsage;
  }
  const absl::StatusOr<ulmfit::Config> config =
      ulmfit::LoadConfig(flags.config_path, flags.overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "ulmfit: %s\n", std::string(config.status().message()).c_str());
    return kExitUsage;
  }
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
    const bool described = std::string(name) == "pretrain" ? !config->pretrain.data.train.empty()
                                                           : !config->task.train.empty();
    if (!flags.stage.empty() ? flags.stage != name : !described) continue;
    const absl::StatusOr<ulmfit::StageResult> result = run(*config, flags.resume);
    if (!result.ok()) {
      std::fprintf(stderr, "ulmfit: %s\n", std::string(result.status().message()).c_str());
      return kExitError;
    }
    if (result->outcome == ulmfit::StageOutcome::kInterrupted) return 128 + result->signal;
  }
  return 0;
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

// Threads, device and model for the predict and evaluate commands.
absl::StatusOr<ulmfit::Classifier> LoadClassifier(const std::string& model,
                                                  const std::string& device) {
  ulmfit::ConfigureThreads(0);
  ASSIGN_OR_RETURN(const torch::Device torch_device, ulmfit::ResolveDevice(device));
  return ulmfit::Classifier::Load(ModelDir(model), torch_device);
}

// ulmfit predict --model DIR [--input FILE] [--format jsonl|csv] [--column N] [--batch-size N]
int Predict(const std::vector<std::string>& args) {
  std::string model, input = "-", format = "jsonl", device = "auto";
  int column = -1, batch_size = 64;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--model" && has_value) model = args[++i];
    else if (a == "--input" && has_value) input = args[++i];
    else if (a == "--format" && has_value) format = args[++i];
    else if (a == "--device" && has_value) device = args[++i];
    else if (a == "--column" && has_value) column = std::stoi(args[++i]);
    else if (a == "--batch-size" && has_value) batch_size = std::max(1, std::stoi(args[++i]));
    else {
      std::fprintf(stderr, "ulmfit predict: unknown or incomplete argument '%s'\n\n%s", a.c_str(), kUsage);
      return kExitUsage;
    }
  }
  if (model.empty() || (format != "jsonl" && format != "csv")) {
    std::fprintf(stderr, "ulmfit predict: --model DIR is required; --format is jsonl or csv\n");
    return kExitUsage;
  }
  const auto classifier = LoadClassifier(model, device);
  if (!classifier.ok()) return Fail(classifier.status());

  std::FILE* in = input == "-" ? stdin : std::fopen(input.c_str(), "rb");
  if (in == nullptr) return Fail(absl::NotFoundError(input + ": cannot open input file"));
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
        std::string probs;
        for (size_t c = 0; c < names.size(); ++c) {
          probs += fmt::format("{}{}: {:.6f}", c ? ", " : "", ulmfit::JsonQuote(names[c]),
                               out.probs[i][c]);
        }
        std::printf("{\"label\": %s, \"probs\": {%s}}\n", ulmfit::JsonQuote(label).c_str(),
                    probs.c_str());
      }
    }
    std::fflush(stdout);
    texts.clear();
  };
  char* line = nullptr;
  size_t capacity = 0;
  ssize_t n;
  int64_t line_number = 0;
  while ((n = ::getline(&line, &capacity, in)) >= 0) {
    ++line_number;
    std::string text(line, static_cast<size_t>(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (column >= 0) {
      size_t start = 0;
      for (int c = 0; c < column && start != std::string::npos; ++c) {
        start = text.find('\t', start);
        if (start != std::string::npos) ++start;
      }
      if (start == std::string::npos) {
        std::free(line);
        return Fail(absl::InvalidArgumentError(fmt::format(
            "{}:{}: has no column {} (columns are tab-separated, counted from 0)",
            input == "-" ? "stdin" : input, line_number, column)));
      }
      text = text.substr(start, text.find('\t', start) - start);
    }
    texts.push_back(std::move(text));
    if (static_cast<int>(texts.size()) >= batch_size * 16) flush();
  }
  std::free(line);
  if (in != stdin) std::fclose(in);
  if (!texts.empty()) flush();
  return 0;
}

// ulmfit evaluate --model DIR --data FILE [--output FILE]
int Evaluate(const std::vector<std::string>& args) {
  std::string model, data, output, device = "auto";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--model" && has_value) model = args[++i];
    else if (a == "--data" && has_value) data = args[++i];
    else if (a == "--output" && has_value) output = args[++i];
    else if (a == "--device" && has_value) device = args[++i];
    else {
      std::fprintf(stderr, "ulmfit evaluate: unknown or incomplete argument '%s'\n\n%s", a.c_str(), kUsage);
      return kExitUsage;
    }
  }
  if (model.empty() || data.empty()) {
    std::fprintf(stderr, "ulmfit evaluate: --model DIR and --data FILE are required\n");
    return kExitUsage;
  }
  const auto classifier = LoadClassifier(model, device);
  if (!classifier.ok()) return Fail(classifier.status());
  const auto labeled = ulmfit::ReadLabeledData(data, classifier->config().task);
  if (!labeled.ok()) return Fail(labeled.status());
  const auto eval = classifier->Evaluate(*labeled, classifier->config().classifier.batch_size);
  if (!eval.ok()) return Fail(eval.status());
  const auto& m = eval->metrics;
  const std::string json = ulmfit::JsonLine()
                               .Add("data", data).Add("count", m.count).Add("loss", m.loss)
                               .Add("accuracy", m.accuracy).Add("error_rate", m.error_rate)
                               .Add("macro_f1", m.macro_f1)
                               .str();
  std::printf("%s\n", json.c_str());
  if (!output.empty()) {
    if (absl::Status s = ulmfit::WriteFileAtomic(output, json + "\n"); !s.ok()) return Fail(s);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ulmfit::EnsureFastCpuEnvironment(argc, argv);
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "predict" || command == "evaluate") {
      const std::vector<std::string> args(argv + 2, argv + argc);
      return command == "predict" ? Predict(args) : Evaluate(args);
    }
    return Run(argc, argv);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "ulmfit: internal error: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ulmfit: internal error: %s\n", e.what());
  }
  return kExitError;
}
