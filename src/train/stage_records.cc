#include "train/stage_records.h"

#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "absl/strings/strip.h"
#include "config/config_loader.h"
#include "util/files.h"
#include "util/progress.h"

namespace ulmfit {
namespace fs = std::filesystem;

std::string StageSettings(const Config& config, const std::string& stage) {
  Config kept = config;
  const Config defaults;
  kept.source_path.clear();
  kept.key_locations.clear();
  kept.run = defaults.run;
  kept.run.seed = config.run.seed;
  kept.text.cache_dir.clear();
  kept.text.threads = 0;
  kept.active = defaults.active;
  if (stage == "pretrain") {
    kept.task = defaults.task;
    kept.finetune = defaults.finetune;
  }
  if (stage != "classify") kept.classifier = defaults.classifier;
  return ConfigToYaml(kept);
}

namespace {

std::string SettingsPath(const std::string& output) {
  return (fs::path(output).parent_path() / "stage_settings.yaml").string();
}

// The first line where two YAML dumps differ, for the message.
std::string FirstDifference(const std::string& before, const std::string& now) {
  std::istringstream a(before), b(now);
  std::string line_a, line_b, section;
  while (true) {
    const bool more_a = static_cast<bool>(std::getline(a, line_a));
    const bool more_b = static_cast<bool>(std::getline(b, line_b));
    if (!more_a && !more_b) return "";
    if (!more_a || !more_b || line_a != line_b) {
      return fmt::format("under '{}': '{}' is now '{}'", section,
                         std::string(absl::StripAsciiWhitespace(line_a)),
                         std::string(absl::StripAsciiWhitespace(line_b)));
    }
    if (!line_a.empty() && line_a[0] != ' ') section = line_a;
  }
}

// The record as today's ConfigToYaml writes it: an older ulmfit wrote some values in another
// form (lists as comma strings), and a changed spelling of the same settings is no change.
std::string Normalized(const std::string& recorded) {
  const absl::StatusOr<Config> config = LoadConfigFromString(recorded, "stage_settings.yaml");
  return config.ok() ? ConfigToYaml(*config) : recorded;
}

}  // namespace

bool StageAlreadyDone(const Config& config, const std::string& stage, const std::string& output,
                      const std::vector<std::string>& stage_dirs) {
  if (!fs::exists(output)) return false;
  absl::StatusOr<std::string> before = ReadFile(SettingsPath(output));
  const std::string now = StageSettings(config, stage);
  if (before.ok()) *before = Normalized(*before);
  if (before.ok() && *before != now) {
    LogInfo(fmt::format("{}: the settings changed since {} was made ({}); training this stage "
                        "again", stage, output, FirstDifference(*before, now)));
    for (const std::string& dir : stage_dirs) RemoveTree(dir);
    return false;
  }
  LogInfo(fmt::format("{}: {} exists; stage already complete, skipping (delete it to train "
                      "again)", stage, output));
  return true;
}

absl::Status MarkStageDone(const Config& config, const std::string& stage,
                           const std::string& output) {
  return WriteFileAtomic(SettingsPath(output), StageSettings(config, stage));
}

}  // namespace ulmfit
