// A run directory's record of which stages are done and with which settings: a finished stage
// is skipped, so one command continues a pipeline, and a stage whose settings changed runs again.
//
// A finished stage's outputs are replaced only by a stage that finished: when the settings
// changed, its folders are set aside as <dir>.previous (with a copy of the run's tokenizer) and
// removed once the new stage finishes; a later run whose settings are those of the set-aside
// outputs again (a typo fixed) puts them back instead of training. An unfinished stage records
// the settings it started with (started_settings.yaml in its folder), so that neither --resume
// nor a fresh start mixes what it left (checkpoints, the tokenizer) with other settings.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "util/status.h"

namespace ulmfit {

// The stages in pipeline order: a stage depends on the outputs of the ones before it.
inline constexpr const char* kStageNames[] = {"pretrain", "finetune", "classify"};

// Where a stage of the run in config.run.output_dir keeps its files.
struct StageFiles {
  std::string output;             // the final file; stage_settings.yaml is written next to it
  std::vector<std::string> dirs;  // the stage's folders (its checkpoints are inside the first)
  std::string tokenizer_dir;      // the run's tokenizer folder, which the stage writes; or ""
};
StageFiles FilesOfStage(const Config& config, const std::string& stage);

// True (and says so on stderr) when the stage's output already exists and was made with the
// same settings: stages are skipped once done, so one command continues a pipeline. A stage is
// stale when the settings it (or a stage before it) depends on have changed since (see
// StageSettings): then it says which key changed, sets its folders aside as <dir>.previous and
// returns false, so the stage and the ones after it run again. Also true when the output is
// missing but the set-aside one was made with these settings and nothing unfinished is in the
// way: then it is put back. An error only when a folder cannot be moved.
absl::StatusOr<bool> StageAlreadyDone(const Config& config, const std::string& stage);

// For a stage that is not done, before it reads or trains anything: an error when its folders
// (or, for pretrain, the run's tokenizer) hold what an unfinished run of other settings left
// and this run would use it (--resume, or a checkpoint a fresh start would not ignore). Says
// the key, its old and new values, and to revert it or delete the folder. Changes nothing.
absl::Status CheckStageCanStart(const Config& config, const std::string& stage, bool resume);

// CheckStageCanStart, then records the settings the stage starts with. Returns whether the
// stage continues a run of these same settings (--resume and an earlier start recorded), so
// that what that run left, such as its tokenizer, may be reused.
absl::StatusOr<bool> StartStage(const Config& config, const std::string& stage, bool resume);

// Records the settings a finished stage was made with, next to its `output`, and removes the
// set-aside outputs of this stage and of the ones after it (made from outputs now replaced).
absl::Status MarkStageDone(const Config& config, const std::string& stage,
                           const std::string& output);

// The resolved settings that `stage` ("pretrain", "finetune", "classify") depends on, as YAML:
// its own section and those of the stages before it, without the keys that only say where or
// how fast it runs (output_dir, device, threads, cache_dir, logging, checkpoint interval).
std::string StageSettings(const Config& config, const std::string& stage);

// The first key whose value differs between two StageSettings, for messages:
// "text.vocab_size: 60 is now 80" (empty when they are the same).
struct SettingsChange {
  std::string key;
  std::string before;
  std::string now;
};
SettingsChange FirstSettingsChange(const std::string& before, const std::string& now);

}  // namespace ulmfit
