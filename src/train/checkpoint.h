// Checkpoints: a directory holding the model, the optimizer, the RNG and LSTM state, and a small
// state.json. A new checkpoint is written next to the old one and swapped in by renames, so a
// crash at any moment leaves one complete checkpoint on disk.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "util/status.h"

namespace ulmfit {

inline constexpr int kCheckpointFormatVersion = 1;

// Where training stands; enough (with the tensors) to continue exactly where it stopped.
struct TrainingState {
  std::string stage;          // "pretrain", ...
  int64_t epoch = 0;          // 0-based epoch to continue in
  int64_t step_in_epoch = 0;  // next batch index within that epoch
  int64_t global_step = 0;    // optimizer updates so far (drives the LR schedule)
  double elapsed_seconds = 0; // training time before this checkpoint
  int64_t metrics_bytes = 0;  // length of metrics.jsonl when saved (later lines are replayed)
  double best_valid_loss = 0; // for reporting
  // The classifier's kept epoch (1-based; 0 = none yet) and its selection score.
  int64_t best_epoch = 0;
  double best_score = 0;
  // The running sums of the epoch in progress, so its logged train loss is exact after resume.
  double epoch_loss_sum = 0;
  int64_t epoch_loss_count = 0;
  int64_t epoch_tokens = 0;
};

// The random generators of every process of a data-parallel run (each draws its own dropout
// masks), gathered to rank 0, which writes the checkpoint. Index = rank; rank 0's are also
// the checkpoint's plain cpu_rng/cuda_rng, as a one-process run writes them.
struct RankGenerators {
  std::vector<torch::Tensor> cpu;
  std::vector<torch::Tensor> cuda;  // empty unless training on CUDA
};

// `ranks`: null for a one-process run. `lstm_state` is the whole job's (all rows).
absl::Status SaveCheckpoint(const std::string& dir, const torch::nn::Module& model,
                            const torch::optim::Optimizer& optimizer,
                            const std::vector<torch::Tensor>& lstm_state,
                            const TrainingState& state, const RankGenerators* ranks = nullptr);

// Restores into an already-built model and optimizer (same config), with the generators of
// process `rank`. Looks in `dir` and in the `.old` copy a crash may have left behind. A
// checkpoint written by a run of another number of processes is refused (its generators and
// LSTM rows belong to that many processes).
absl::StatusOr<TrainingState> LoadCheckpoint(const std::string& dir, torch::nn::Module& model,
                                             torch::optim::Optimizer& optimizer,
                                             std::vector<torch::Tensor>* lstm_state,
                                             int rank = 0, int world_size = 1);

bool CheckpointExists(const std::string& dir);

}  // namespace ulmfit
