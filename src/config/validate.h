// The one place for value rules: ranges of single keys and every rule across keys. The loader
// only checks that each value has the right type (number, enum name, list of ...).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/config.h"

namespace ulmfit {

// Range and cross-key checks on every field; all problems are reported together on one line,
// each located through config.key_locations when the loader filled it.
absl::Status ValidateConfig(const Config& config);

// The same problems, one message each ("LOCATION: KEY must be ..."), so the loader can report
// them together with its own type errors.
std::vector<std::string> ValidationErrors(const Config& config);

// One phase of the classifier's gradual unfreezing (classifier.phase_groups, phase_epochs and
// phase_lrs, item by item).
struct UnfreezePhase {
  int groups;  // trainable layer groups counted from the top; 0 (GroupCount::kAll) = all
  int epochs;  // may be 0 (the phase is skipped); the phases add up to at least 1
  double lr;   // peak lr of the top group; lower groups get lr / classifier.lr_factor^k
};

// The phase lists of `classifier` paired up into phases, in order. InvalidArgumentError (one
// line naming the key and the bad item, no file location) if they break ValidateConfig's phase
// rules (lengths, ranges), as a config built in code may; a config that passed ValidateConfig
// always succeeds.
absl::StatusOr<std::vector<UnfreezePhase>> ParsePhases(const ClassifierConfig& classifier);

}  // namespace ulmfit
