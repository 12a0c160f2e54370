// The two presets. The struct defaults in config.h are the `fastai` preset (fastai v2 and
// fastbook chapter 10); `paper` (Howard & Ruder 2018 and its scripts) differs in exactly the
// keys of PaperPresetValues(). docs/config.md, "Presets", explains each difference.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace ulmfit {

// One key where the paper preset differs from the struct (fastai) defaults.
struct PresetValue {
  const char* key;    // dotted key, e.g. "pretrain.schedule.kind"
  const char* paper;  // its paper value, as in a config file ("stlr", "1,2,all")
  const char* why;    // where the two values come from
};

// The paper preset's values, one row per key that differs from the struct defaults.
const std::vector<PresetValue>& PaperPresetValues();

// Sets every key of PaperPresetValues() to `preset`'s value (fastai: the struct default) and
// config->preset, so applying one preset after the other is well defined.
void ApplyPreset(Preset preset, Config* config);

// The same by name ("fastai" or "paper"); an unknown name leaves the config unchanged (the
// loader rejects it before calling this).
void ApplyPreset(const std::string& name, Config* config);

}  // namespace ulmfit
