// `ulmfit active-learn`: an active-learning simulation on a fully labelled data set. The labels
// of task.train are hidden; a seed set is labelled, then each round trains a classifier over the
// one fine-tuned LM (stage 2 runs once), records its test error and "labels" the query_size
// texts a strategy picks. Results stream to <output_dir>/active/results.csv (a rerun continues
// where an interrupted one stopped) and end as results.md and error_vs_labels.svg.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "train/stages.h"
#include "util/status.h"

namespace ulmfit {

struct SimulationRow {
  std::string strategy;
  uint64_t seed = 0;
  int round = 0;
  int64_t labels = 0;
  double test_error = 0;
  double test_macro_f1 = 0;
  double train_seconds = 0;
  double query_seconds = 0;
};

// A stratified random seed set: one example of each label first (so every class is known), then
// uniformly at random from the rest, `n` in all; indices ascending.
std::vector<int64_t> SeedSet(const std::vector<std::string>& labels, int64_t n, uint64_t seed);

// Runs every strategy x seed of config.active; needs stage 2's fine-tuned LM in
// config.run.output_dir. Returns kInterrupted (with the signal) when stopped by a signal.
absl::StatusOr<StageResult> RunActiveLearningSimulation(const Config& config);

// Mean, min and max test error per strategy and number of labels, as a Markdown table and an
// SVG chart (error against labels, one line per strategy).
std::string SimulationMarkdown(const std::vector<SimulationRow>& rows);
// Per strategy: the area under its learning curve (mean error over rounds) with its spread over
// seeds, the difference from random's at the same seed, how many seeds beat random, and the
// labels it needs to reach random's final mean error.
std::string SimulationSummary(const std::vector<SimulationRow>& rows);
std::string SimulationChart(const std::vector<SimulationRow>& rows, const std::string& title);

}  // namespace ulmfit
