// `ulmfit label`: an interactive terminal loop in which a person labels the texts the model
// most wants labelled. Each answer is appended to task.train (label<TAB>text) and flushed to
// disk at once, so an interrupted session loses nothing; a restarted one skips what is already
// labelled or skipped. Every active.retrain_every new labels the classifier is retrained over
// the run's fine-tuned LM and the suggestions are recomputed.
#pragma once

#include <cstdio>

#include "config/config.h"
#include "util/status.h"

namespace ulmfit {

// Reads keys from `in_fd` (raw mode when it is a terminal; otherwise one byte at a time, so a
// script can pipe keys in) and draws on `out`. Returns the process exit code: 0 on quit or end
// of input, 128 + N when stopped by signal N.
absl::StatusOr<int> RunLabelSession(const Config& config, int in_fd, std::FILE* out);

}  // namespace ulmfit
