// Reads, overrides, validates and writes back the YAML configuration (docs/config.md).
//
// Order of precedence: struct defaults < preset < the file's values < --set overrides. The
// overrides edit the YAML tree before conversion, so they pass the same type and range checks as
// the file. Every error is one line: "FILE:LINE:COL: KEY ..." (or "--set KEY=VALUE: ...").
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/config.h"

namespace ulmfit {

// Parses the YAML file at `path` into a Config. `overrides` are "section.key=value" (or
// "section.sub.key=value") strings from --set; they may create keys missing from the file.
// Returns NotFoundError for an unreadable file, InvalidArgumentError for everything else.
absl::StatusOr<Config> LoadConfig(const std::string& path,
                                  const std::vector<std::string>& overrides = {});

// Same as LoadConfig, from YAML text; `source_name` stands in for the path in messages.
absl::StatusOr<Config> LoadConfigFromString(const std::string& yaml, const std::string& source_name,
                                            const std::vector<std::string>& overrides = {});

// The fully resolved config as YAML (every key, same layout as the input), e.g. resolved.yaml.
// LoadConfigFromString(ConfigToYaml(c), ...) gives back the same values.
std::string ConfigToYaml(const Config& config);

// Range and enum checks on every field; all problems are reported together on one line, each
// located through config.key_locations when the loader filled it.
absl::Status ValidateConfig(const Config& config);

// One phase of the classifier's gradual unfreezing (classifier.phase_groups, phase_epochs and
// phase_lrs, item by item).
struct UnfreezePhase {
  int groups;  // trainable layer groups counted from the top; 0 = all
  int epochs;  // may be 0 (the phase is skipped); the phases add up to at least 1
  double lr;   // peak lr of the top group; lower groups get lr / classifier.lr_factor^k
};

// The phase lists of `classifier` parsed into phases, in order. InvalidArgumentError (one line
// naming the key and the bad item, no file location) if they are malformed or of different
// lengths; a config that passed ValidateConfig always parses.
absl::StatusOr<std::vector<UnfreezePhase>> ParsePhases(const ClassifierConfig& classifier);

// Sets the defaults that differ between presets ("fastai" or "paper", ULMFIT_REFERENCE.md
// section 7) and config->preset. Unknown names leave the config unchanged; the loader rejects
// them before calling this.
void ApplyPreset(const std::string& name, Config* config);

}  // namespace ulmfit
