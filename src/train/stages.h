// The pipeline's stages as the CLI runs them. Each stage reads the typed Config, writes its
// outputs under run.output_dir, and skips itself when its outputs already exist.
#pragma once

#include <string>

#include "config/config.h"
#include "train/lm_trainer.h"
#include "util/status.h"

namespace ulmfit {

// Stage 1: reads the general corpus, trains or loads the tokenizer (<output_dir>/tokenizer),
// pretrains the LM and writes <output_dir>/pretrain/lm.pt.
absl::StatusOr<StageResult> RunPretrain(const Config& config, bool resume);

// The token-id cache shared by all runs: text.cache_dir, else $ULMFIT_CACHE_DIR, else
// $XDG_CACHE_HOME/ulmfit, else ~/.cache/ulmfit.
std::string DefaultCacheDir(const TextConfig& text);

}  // namespace ulmfit
