// Language-model training: the loop shared by stage 1 (pretraining) and stage 2 (target-domain
// fine-tuning). Contiguous BPTT batches, AdamW with per-group learning rates, a schedule,
// AR/TAR, gradient clipping, validation each epoch, exact resume from checkpoints.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/config.h"
#include "data/lm_batcher.h"
#include "model/awd_lstm.h"
#include "util/status.h"

namespace ulmfit {

enum class StageOutcome { kCompleted, kSkipped, kInterrupted };

struct StageResult {
  StageOutcome outcome = StageOutcome::kCompleted;
  int signal = 0;                // for kInterrupted: the signal that stopped the run
  double final_valid_loss = 0;   // last epoch's validation loss
  double final_valid_ppl = 0;
};

// Everything the LM loop needs; the caller builds the model, data and optimizer groups.
struct LmTrainingJob {
  std::string stage;                  // name in logs and metrics ("pretrain", "finetune")
  std::string stage_dir;              // checkpoints live in <stage_dir>/checkpoint
  std::string metrics_path;           // metrics.jsonl (shared by all stages of a run)
  LanguageModel model{nullptr};
  LmBatcher* train = nullptr;
  LmBatcher* valid = nullptr;         // may be null: no validation
  int epochs = 1;
  double lr = 1e-3;                   // peak lr of the top group
  std::vector<double> group_lr_mult;  // one per LanguageModel::LayerGroups() group (1 = top lr)
  ScheduleConfig schedule;
  OptimizerConfig optimizer;
  double ar_alpha = 0;
  double tar_beta = 0;
  int64_t bptt = 70;                  // for scaling lr with the sequence length
  bool scale_lr_with_seq_len = false;
  bool mixed_precision = false;
  int64_t max_steps_per_epoch = 0;    // 0 = full epochs
  bool resume = false;
  double checkpoint_minutes = 10;
  int log_every = 50;
  torch::Device device{torch::kCPU};
};

// Runs (or resumes) the job. Errors are user-facing; a NaN loss is an error that leaves the
// last good checkpoint in place.
absl::StatusOr<StageResult> TrainLanguageModel(LmTrainingJob& job);

// Cross-entropy loss, accuracy and perplexity of the model on `batcher` (eval mode, no grad).
struct LmEvaluation {
  double loss = 0;
  double perplexity = 0;
  double accuracy = 0;
  int64_t tokens = 0;
};
LmEvaluation EvaluateLanguageModel(LanguageModel& model, LmBatcher& batcher,
                                   const torch::Device& device);

// Resolves run.device ("auto", "cpu", "cuda", "cuda:N") to a torch device, with clear errors.
absl::StatusOr<torch::Device> ResolveDevice(const std::string& device);

}  // namespace ulmfit
