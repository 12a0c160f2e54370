#include "train/stage_records.h"

#include <filesystem>
#include <iterator>
#include <map>
#include <utility>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "config/config_loader.h"
#include "infer/classifier.h"
#include "text/tokenizer_file.h"
#include "train/checkpoint.h"
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

StageFiles FilesOfStage(const Config& config, const std::string& stage) {
  const fs::path run_dir(config.run.output_dir);
  StageFiles files;
  if (stage == "classify") {
    files.output = (run_dir / "model" / kClassifierWeightsFile).string();
    files.dirs = {(run_dir / "classifier").string(), (run_dir / "model").string()};
    return files;
  }
  files.output = (run_dir / stage / "lm.pt").string();
  files.dirs = {(run_dir / stage).string()};
  files.tokenizer_dir = (run_dir / "tokenizer").string();
  return files;
}

namespace {

// Folder names inside a run directory.
constexpr const char* kPreviousSuffix = ".previous";
constexpr const char* kStartedFile = "started_settings.yaml";
// In <stage dir>.previous: the run's tokenizer as it was when the stage was set aside.
constexpr const char* kTokenizerCopy = "run_tokenizer";

std::string Previous(const std::string& dir) { return dir + kPreviousSuffix; }

std::string SettingsPath(const std::string& output) {
  return (fs::path(output).parent_path() / "stage_settings.yaml").string();
}

std::string StartedPath(const StageFiles& files) {
  return (fs::path(files.dirs.front()) / kStartedFile).string();
}

// Where the stage's output is once its folder is set aside.
std::string PreviousOutput(const StageFiles& files) {
  for (const std::string& dir : files.dirs) {
    if (files.output.rfind(dir + "/", 0) == 0) {
      return Previous(dir) + files.output.substr(dir.size());
    }
  }
  return "";
}

// The folder that holds the set-aside output, for messages.
std::string PreviousOutputDir(const StageFiles& files) {
  return fs::path(PreviousOutput(files)).parent_path().string();
}

// The record as today's ConfigToYaml writes it: an older ulmfit wrote some values in another
// form (lists as comma strings), and a changed spelling of the same settings is no change.
std::string Normalized(const std::string& recorded) {
  const absl::StatusOr<Config> config = LoadConfigFromString(recorded, "stage_settings.yaml");
  return config.ok() ? ConfigToYaml(*config) : recorded;
}

absl::StatusOr<std::string> ReadRecord(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  return Normalized(text);
}

// Every scalar (or list) of a YAML document as "section.key" -> value, in document order.
void Flatten(const YAML::Node& node, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>* out) {
  if (node.IsMap()) {
    for (const auto& item : node) {
      const std::string key = item.first.as<std::string>();
      Flatten(item.second, prefix.empty() ? key : prefix + "." + key, out);
    }
    return;
  }
  YAML::Emitter value;
  value << YAML::Flow << node;
  out->emplace_back(prefix, value.c_str());
}

std::string Described(const SettingsChange& change) {
  if (change.key.empty()) return "the recorded settings differ";
  return fmt::format("{}: {} is now {}", change.key, change.before, change.now);
}

// What an unfinished run of the stage left in its folders for a resumed one to continue:
// checkpoints, and the weights of fastai's frozen epochs (stage 2).
bool HasUnfinishedRun(const StageFiles& files) {
  for (const std::string& dir : files.dirs) {
    const fs::path path(dir);
    if (CheckpointExists((path / "checkpoint").string()) ||
        CheckpointExists((path / "frozen" / "checkpoint").string()) ||
        fs::exists(path / "frozen" / "lm.pt")) {
      return true;
    }
  }
  return false;
}

int StageIndex(const std::string& stage) {
  int index = 0;
  for (const char* name : kStageNames) {
    if (stage == name) return index;
    ++index;
  }
  return index;
}

// True when the outputs set aside in <dir>.previous were made with `config`'s settings, the
// stage's folders hold no unfinished run to lose, and the stages before it still hold what
// those outputs were made from.
bool PreviousMatches(const Config& config, const std::string& stage, const StageFiles& files) {
  const std::string previous = PreviousOutput(files);
  if (previous.empty() || !fs::exists(previous)) return false;
  const absl::StatusOr<std::string> record = ReadRecord(SettingsPath(previous));
  return record.ok() && *record == StageSettings(config, stage);
}

bool Restorable(const Config& config, const std::string& stage, const StageFiles& files) {
  if (!PreviousMatches(config, stage, files) || HasUnfinishedRun(files)) return false;
  for (int i = 0; i < StageIndex(stage); ++i) {
    const StageFiles earlier = FilesOfStage(config, kStageNames[i]);
    const absl::StatusOr<std::string> record = ReadRecord(SettingsPath(earlier.output));
    if (record.ok() && fs::exists(earlier.output) &&
        *record != StageSettings(config, kStageNames[i])) {
      return false;
    }
  }
  return true;
}

absl::Status Rename(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) {
    return absl::InternalError(fmt::format("{}: cannot move it to {} ({}); check the run "
                                           "directory's permissions", from, to, ec.message()));
  }
  return absl::OkStatus();
}

// Moves the stage's folders to <dir>.previous (replacing older ones) and copies the run's
// tokenizer there: the stage that runs next may start from it (stage 2 reads stage 1's), and
// overwrites it.
absl::Status SetAside(const StageFiles& files) {
  for (const std::string& dir : files.dirs) {
    RemoveTree(Previous(dir));
    if (fs::exists(dir)) RETURN_IF_ERROR(Rename(dir, Previous(dir)));
  }
  if (files.tokenizer_dir.empty() || !fs::is_directory(files.tokenizer_dir)) {
    return absl::OkStatus();
  }
  const fs::path copy = fs::path(Previous(files.dirs.front())) / kTokenizerCopy;
  RETURN_IF_ERROR(EnsureWritableDir(copy.string(), "run.output_dir"));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(files.tokenizer_dir, ec)) {
    if (!entry.is_regular_file()) continue;
    fs::copy_file(entry.path(), copy / entry.path().filename(),
                  fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::InternalError(
          fmt::format("{}: cannot copy it to {} ({})", entry.path().string(), copy.string(),
                      ec.message()));
    }
  }
  return absl::OkStatus();
}

// The opposite: what an unfinished run left is dropped, the set-aside folders and tokenizer
// come back.
absl::Status PutBack(const StageFiles& files) {
  for (const std::string& dir : files.dirs) {
    RemoveTree(dir);
    if (fs::exists(Previous(dir))) RETURN_IF_ERROR(Rename(Previous(dir), dir));
  }
  const fs::path copy = fs::path(files.dirs.front()) / kTokenizerCopy;
  if (files.tokenizer_dir.empty() || !fs::is_directory(copy)) return absl::OkStatus();
  RemoveTree(files.tokenizer_dir);
  return Rename(copy.string(), files.tokenizer_dir);
}

}  // namespace

SettingsChange FirstSettingsChange(const std::string& before, const std::string& now) {
  std::vector<std::pair<std::string, std::string>> old_values, new_values;
  try {
    Flatten(YAML::Load(before), "", &old_values);
    Flatten(YAML::Load(now), "", &new_values);
  } catch (const YAML::Exception&) {
    return {"settings", "(unreadable)", "(this config's)"};
  }
  const std::map<std::string, std::string> old_map(old_values.begin(), old_values.end());
  const std::map<std::string, std::string> new_map(new_values.begin(), new_values.end());
  for (const auto& [key, value] : new_values) {
    const auto old_value = old_map.find(key);
    if (old_value == old_map.end()) return {key, "(not set)", value};
    if (old_value->second != value) return {key, old_value->second, value};
  }
  for (const auto& [key, value] : old_values) {
    if (new_map.count(key) == 0) return {key, value, "(not set)"};
  }
  return {};
}

absl::StatusOr<bool> StageAlreadyDone(const Config& config, const std::string& stage) {
  const StageFiles files = FilesOfStage(config, stage);
  const std::string now = StageSettings(config, stage);
  if (fs::exists(files.output)) {
    const absl::StatusOr<std::string> before = ReadRecord(SettingsPath(files.output));
    if (before.ok() && *before != now) {
      // Kept until the new outputs are written: the new settings may not get that far.
      RETURN_IF_ERROR(SetAside(files));
      LogInfo(fmt::format("{}: the settings changed since {} was made ({}); training this stage "
                          "again (the finished one stays in {} until this one finishes)",
                          stage, files.output, Described(FirstSettingsChange(*before, now)),
                          PreviousOutputDir(files)));
      return false;
    }
    LogInfo(fmt::format("{}: {} exists; stage already complete, skipping (delete it to train "
                        "again)", stage, files.output));
    return true;
  }
  if (Restorable(config, stage, files)) {
    RETURN_IF_ERROR(PutBack(files));
    LogInfo(fmt::format("{}: the settings are again those of the finished stage set aside in "
                        "{}; put it back, skipping this stage", stage, PreviousOutputDir(files)));
    return true;
  }
  return false;
}

absl::Status CheckStageCanStart(const Config& config, const std::string& stage, bool resume) {
  const StageFiles files = FilesOfStage(config, stage);
  // StageAlreadyDone comes first: it skips or sets aside a finished stage, or puts one back.
  if (fs::exists(files.output) || Restorable(config, stage, files)) return absl::OkStatus();
  const absl::StatusOr<std::string> started = ReadRecord(StartedPath(files));
  const std::string now = StageSettings(config, stage);
  if (!started.ok() || *started == now) return absl::OkStatus();
  // Resumed, stage 1 would also reuse the run's tokenizer, trained when it started.
  const bool in_use =
      HasUnfinishedRun(files) ||
      (resume && !files.tokenizer_dir.empty() && stage == "pretrain" &&
       fs::exists(TokenizerFileIn(files.tokenizer_dir)));
  if (!in_use) return absl::OkStatus();
  SettingsChange change = FirstSettingsChange(*started, now);
  if (change.key.empty()) change = {"settings", "(recorded)", "(this config's)"};
  const std::string& dir = files.dirs.front();
  return absl::FailedPreconditionError(fmt::format(
      "{}: holds an unfinished {} stage started with {}: {}, but this config has {}; revert {} "
      "to {} to continue it (--resume), or delete {} to {}",
      dir, stage, change.key, change.before, change.now, change.key, change.before, dir,
      PreviousMatches(config, stage, files)
          ? fmt::format("put back the finished one in {}", PreviousOutputDir(files))
          : std::string("start the stage over")));
}

absl::StatusOr<bool> StartStage(const Config& config, const std::string& stage, bool resume) {
  RETURN_IF_ERROR(CheckStageCanStart(config, stage, resume));
  const StageFiles files = FilesOfStage(config, stage);
  const std::string path = StartedPath(files);
  const absl::StatusOr<std::string> started = ReadRecord(path);
  const std::string now = StageSettings(config, stage);
  if (started.ok() && *started == now) return resume;
  // A checkpoint without a record (an older ulmfit's): continued unchecked, and not recorded
  // now, which would vouch for it.
  if (!started.ok() && HasUnfinishedRun(files)) return resume;
  RETURN_IF_ERROR(EnsureWritableDir(files.dirs.front(), "run.output_dir"));
  RETURN_IF_ERROR(WriteFileAtomic(path, now));
  return false;
}

absl::Status MarkStageDone(const Config& config, const std::string& stage,
                           const std::string& output) {
  RETURN_IF_ERROR(WriteFileAtomic(SettingsPath(output), StageSettings(config, stage)));
  for (int i = StageIndex(stage); i < static_cast<int>(std::size(kStageNames)); ++i) {
    for (const std::string& dir : FilesOfStage(config, kStageNames[i]).dirs) {
      RemoveTree(Previous(dir));
    }
  }
  return absl::OkStatus();
}

}  // namespace ulmfit
