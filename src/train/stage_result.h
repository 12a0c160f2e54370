// What a training stage hands back to its caller: how it ended and what it measured, so that
// callers (the CLI, active learning) never read a stage's results back from its files.
#pragma once

#include <optional>

#include "infer/metrics.h"

namespace ulmfit {

enum class StageOutcome { kCompleted, kSkipped, kInterrupted };

struct StageResult {
  StageResult() = default;
  explicit StageResult(StageOutcome stage_outcome) : outcome(stage_outcome) {}

  StageOutcome outcome = StageOutcome::kCompleted;
  int signal = 0;                // for kInterrupted: the signal that stopped the run
  double final_valid_loss = 0;   // language models: the last epoch's validation loss
  double final_valid_ppl = 0;
  // Classifiers: the kept epoch (1-based) and its validation metrics (none without
  // validation data), and the test set's metrics when task.test is set.
  int64_t best_epoch = 0;
  std::optional<ClassificationMetrics> best_valid;
  std::optional<ClassificationMetrics> test;
};

}  // namespace ulmfit
