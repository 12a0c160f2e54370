// A run directory's record of which stages are done and with which settings: a finished stage
// is skipped, so one command continues a pipeline, and a stage whose settings changed runs again.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "util/status.h"

namespace ulmfit {

// True (and says so on stderr) when `output`, a stage's final file, already exists and was made
// with the same settings: stages are skipped once done, so one command continues a pipeline.
// A stage is stale when the settings it (or a stage before it) depends on have changed since
// (see StageSettings): then it says which key changed, deletes `stage_dirs` and returns false,
// so the stage and the ones after it run again.
bool StageAlreadyDone(const Config& config, const std::string& stage, const std::string& output,
                      const std::vector<std::string>& stage_dirs);
// Records the settings a finished stage was made with, next to its `output`.
absl::Status MarkStageDone(const Config& config, const std::string& stage,
                           const std::string& output);
// The resolved settings that `stage` ("pretrain", "finetune", "classify") depends on, as YAML:
// its own section and those of the stages before it, without the keys that only say where or
// how fast it runs (output_dir, device, threads, cache_dir, logging, checkpoint interval).
std::string StageSettings(const Config& config, const std::string& stage);

}  // namespace ulmfit
