// Stage 3's training loop (Howard & Ruder 2018, section 3.3): the classifier trains in phases
// of gradual unfreezing, with discriminative learning rates and a schedule within each phase,
// on BPT3C batches; after every epoch the head's BatchNorm statistics are set from a fixed
// sample and the best epoch by classifier.select_metric is kept. The loop mirrors the language
// model's (train/lm_trainer.h) and shares its pieces (train/training_loop.h): a stop signal
// checkpoints the exact step, and --resume goes on from there.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/config.h"
#include "config/config_loader.h"
#include "data/clas_batcher.h"
#include "dist/world.h"
#include "model/classifier.h"
#include "train/stage_result.h"
#include "util/status.h"

namespace ulmfit {

// Everything the classifier loop needs; the caller builds the model and the batches.
struct ClasTrainingJob {
  std::string stage_dir;      // holds checkpoint/, best.pt and best.json
  std::string metrics_path;   // metrics.jsonl (shared by all stages of a run)
  TextClassifier model{nullptr};
  ClasBatcher* train = nullptr;
  ClasBatcher* valid = nullptr;       // null: no validation data, the last epoch is kept
  ClasBatcher* batch_norm = nullptr;  // the precise-BatchNorm sample (train/precise_bn.h)
  int num_classes = 2;
  std::vector<UnfreezePhase> phases;
  ClassifierConfig config;    // rates, schedule, optimizer, AR/TAR, selection, step limits
  bool resume = false;
  double checkpoint_minutes = 10;
  int log_every = 50;
  torch::Device device{torch::kCPU};
  bool cpu_bf16 = false;  // run.cpu_bf16 (model/cpu_bf16.h)
  // Data-parallel: the processes training together (null: this one alone). Then `train` gives
  // this rank's rows of the job's batches (ClasBatcher::SetShard), the head's BatchNorm uses the
  // job's batch statistics, and validation is split by batches and combined.
  World* world = nullptr;
};

// Trains (or resumes) the job. On completion job.model holds the kept epoch's weights (also in
// <stage_dir>/best.pt) and the result names that epoch and its validation metrics.
absl::StatusOr<StageResult> TrainClassifier(ClasTrainingJob& job);

}  // namespace ulmfit
