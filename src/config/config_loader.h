// Reads, overrides and writes back the YAML configuration (docs/config.md).
//
// Order of precedence: struct defaults < preset < the file's values < --set overrides. The
// overrides edit the YAML tree before conversion, so they pass the same type and range checks as
// the file. Every error is one line: "FILE:LINE:COL: KEY ..." (or "--set KEY=VALUE: ...").
//
// The config code is split by concern: config.h (the structs), enums.h (enum names),
// schema.h (the key table), value_text.h (text <-> values), validate.h (ValidateConfig,
// ParsePhases), presets.h (ApplyPreset) and this file. Including this header gives all of them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/config.h"
#include "config/presets.h"
#include "config/validate.h"

namespace ulmfit {

// Parses the YAML file at `path` into a Config. `overrides` are "section.key=value" (or
// "section.sub.key=value") strings from --set; they may create keys missing from the file. A
// list key takes "a,b" or a flow sequence "[a, b]".
// Returns NotFoundError for an unreadable file, InvalidArgumentError for everything else.
absl::StatusOr<Config> LoadConfig(const std::string& path,
                                  const std::vector<std::string>& overrides = {});

// Same as LoadConfig, from YAML text; `source_name` stands in for the path in messages.
absl::StatusOr<Config> LoadConfigFromString(const std::string& yaml, const std::string& source_name,
                                            const std::vector<std::string>& overrides = {});

// The fully resolved config as YAML (every key, same layout as the input; lists as flow
// sequences, "[1, 2, all]"), e.g. resolved.yaml. LoadConfigFromString(ConfigToYaml(c), ...)
// gives back the same values.
std::string ConfigToYaml(const Config& config);

}  // namespace ulmfit
