#include "cli/commands.h"

#include <cstdio>
#include <filesystem>

#include "util/device.h"
#include "util/cpu_env.h"
#include "util/status.h"

namespace ulmfit::cli {
namespace {

// The model folder of a run directory, or the folder itself.
std::string ModelDir(const std::string& path) {
  const auto nested = std::filesystem::path(path) / "model";
  return std::filesystem::exists(nested / kClassifierWeightsFile) ? nested.string() : path;
}

}  // namespace

std::optional<int> ParseCommandLine(const FlagTable& table, const std::vector<std::string>& args) {
  const absl::StatusOr<bool> help = ParseFlags(table, args);
  if (!help.ok()) return UsageError(table, std::string(help.status().message()));
  if (!*help) return std::nullopt;
  std::fputs(Usage(table).c_str(), stdout);
  std::fputs("\n'ulmfit --help' lists the other commands and the exit codes.\n", stdout);
  return kExitOk;
}

int UsageError(const FlagTable& table, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n'%s --help' lists its flags.\n", table.command.c_str(),
               message.c_str(), table.command.c_str());
  return kExitUsage;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "ulmfit: %s\n", std::string(status.message()).c_str());
  return kExitError;
}

Flag ConfigFlag(std::string* path) {
  return StringFlag("--config", "FILE",
                    "the run's YAML configuration; its keys are in docs/config.md", path)
      .Required();
}

Flag SetFlag(std::vector<std::string>* overrides) {
  return RepeatedFlag("--set", "KEY=VALUE",
                      "override a config key, e.g. --set pretrain.epochs=2", overrides);
}

Flag ModelFlag(std::vector<std::string>* models) {
  return RepeatedFlag("--model", "DIR",
                      "a run directory or its model/ folder; several average their "
                      "probabilities, e.g. a forward and a backward (model.backwards: true) run: "
                      "the paper's bidirectional classifier",
                      models)
      .Required();
}

Flag DeviceFlag(std::string* device) {
  return StringFlag("--device", "D", "auto, cpu, cuda or cuda:N", device);
}

Flag BatchSizeFlag(int* batch_size) {
  return IntFlag("--batch-size", "N", "texts per forward pass", batch_size, 1);
}

absl::StatusOr<ClassifierEnsemble> LoadClassifier(const std::vector<std::string>& models,
                                                  const std::string& device) {
  ConfigureThreads(0);
  ASSIGN_OR_RETURN(const torch::Device torch_device, ResolveDevice(device));
  std::vector<std::string> dirs;
  for (const std::string& model : models) dirs.push_back(ModelDir(model));
  return ClassifierEnsemble::Load(dirs, torch_device);
}

}  // namespace ulmfit::cli
