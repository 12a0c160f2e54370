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
#include "train/stages.h"
#include "util/cpu_env.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/signals.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(usage: ulmfit --config FILE [options]

Runs the ULMFiT pipeline described by a YAML file (see docs/config.md).

options:
  --config FILE        the run's YAML configuration (required)
  --set KEY=VALUE      override a config key, e.g. --set pretrain.epochs=2 (repeatable)
  --stage NAME         run only this stage: pretrain
  --resume             continue an interrupted run from its last checkpoint
  --print-config       print the resolved configuration and exit
  -h, --help           show this help
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
  if (!flags->stage.empty() && flags->stage != "pretrain") {
    return fmt::format("--stage '{}' is not a stage; use pretrain", flags->stage);
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
  const absl::StatusOr<ulmfit::StageResult> result = ulmfit::RunPretrain(*config, flags.resume);
  if (!result.ok()) {
    std::fprintf(stderr, "ulmfit: %s\n", std::string(result.status().message()).c_str());
    return kExitError;
  }
  if (result->outcome == ulmfit::StageOutcome::kInterrupted) return 128 + result->signal;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ulmfit::EnsureFastCpuEnvironment(argc, argv);
  try {
    return Run(argc, argv);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "ulmfit: internal error: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ulmfit: internal error: %s\n", e.what());
  }
  return kExitError;
}
