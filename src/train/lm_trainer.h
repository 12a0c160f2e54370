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
#include "dist/world.h"
#include "model/awd_lstm.h"
#include "train/stage_result.h"
#include "util/status.h"

namespace ulmfit {

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
  bool cpu_bf16 = false;  // run.cpu_bf16 (model/cpu_bf16.h)
  int64_t max_steps_per_epoch = 0;    // 0 = full epochs
  bool resume = false;
  double checkpoint_minutes = 10;
  int log_every = 50;
  torch::Device device{torch::kCPU};
  // Data-parallel: the processes training together (null: this one alone). Then `train` and
  // `valid` hold this rank's rows of the job's batches (LmBatcherOptions::shard_*).
  World* world = nullptr;
};

// The job fields that an LM stage's section (PretrainConfig or FinetuneConfig, which share
// these keys) and the run section set; the caller adds the model, data, stage and lr groups.
template <typename LmStageConfig>
LmTrainingJob LmJobFromConfig(const LmStageConfig& stage, const RunConfig& run,
                              const torch::Device& device, bool resume) {
  LmTrainingJob job;
  job.epochs = stage.epochs;
  job.lr = stage.lr;
  job.schedule = stage.schedule;
  job.optimizer = stage.optimizer;
  job.ar_alpha = stage.ar_alpha;
  job.tar_beta = stage.tar_beta;
  job.bptt = stage.bptt;
  job.scale_lr_with_seq_len = stage.variable_bptt;  // AWD-LSTM: lr * seq_len / bptt
  job.mixed_precision = stage.mixed_precision;
  job.cpu_bf16 = run.cpu_bf16;
  job.max_steps_per_epoch = stage.max_steps;
  job.resume = resume;
  job.checkpoint_minutes = run.checkpoint_minutes;
  job.log_every = run.log_every;
  job.device = device;
  job.world = CurrentWorld();
  return job;
}

// The batch of the whole job for a stage's `batch_size` (its key, for errors): batch_size
// itself, split over the processes, or batch_size per process with run.batch_per_rank.
absl::StatusOr<int64_t> JobBatchSize(int64_t batch_size, const std::string& key,
                                     const RunConfig& run);

// The training batches of an LM stage (shuffled; variable lengths if the stage says so), this
// process's rows of them in a data-parallel run.
template <typename LmStageConfig>
LmBatcherOptions LmTrainBatcherOptions(const LmStageConfig& stage, int64_t job_batch_size,
                                       bool backwards, uint64_t seed) {
  LmBatcherOptions options;
  options.batch_size = job_batch_size;
  options.shard_rank = WorldRank();
  options.shard_count = WorldSize();
  options.bptt = stage.bptt;
  options.variable_bptt = stage.variable_bptt;
  options.backwards = backwards;
  options.shuffle = true;
  options.seed = seed;
  return options;
}

// Runs (or resumes) the job. Errors are user-facing; a NaN loss is an error that leaves the
// last good checkpoint in place. A stop signal saves a checkpoint at the exact step and
// returns kInterrupted.
absl::StatusOr<StageResult> TrainLanguageModel(LmTrainingJob& job);

}  // namespace ulmfit
