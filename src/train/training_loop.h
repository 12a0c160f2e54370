// The pieces both training loops share (the language model's, train/lm_trainer.h, and the
// classifier's, train/clas_trainer.h): AdamW over layer groups with per-group learning rates,
// the optimizer step, the non-finite-loss stop, and checkpoints that let a stopped stage go on
// at the exact step where it stopped.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/config.h"
#include "dist/data_parallel.h"
#include "dist/world.h"
#include "train/checkpoint.h"
#include "util/status.h"

namespace ulmfit {

// AdamW with one parameter group per entry of `layer_groups` (bottom first), each starting at
// `lr`; SetGroupRates changes them step by step.
std::unique_ptr<torch::optim::AdamW> MakeGroupedAdamW(
    const std::vector<std::vector<torch::Tensor>>& layer_groups, const OptimizerConfig& config,
    double lr);

// Discriminative fine-tuning (Howard & Ruder 2018, section 3.2): the group k below the top
// learns at lr / factor^k.
std::vector<double> DiscriminativeMultipliers(int num_groups, double factor);

// This step's rates: group g at lr * multipliers[g] * scale, Adam's betas (beta1, beta2).
void SetGroupRates(torch::optim::Optimizer& optimizer, double lr,
                   const std::vector<double>& multipliers, double scale, double beta1,
                   double beta2);

// Drops every parameter's gradient before a step's backward pass (libtorch 2's zero_grad
// default; 1.x's zero_grad fills them with zeros, then backward adds into them: two sweeps over
// all the gradients a step that this saves). A parameter that gets no gradient is then skipped by
// the optimizer, as in PyTorch; the data-parallel reduce gives such a parameter zeros.
void ClearGradients(torch::optim::Optimizer& optimizer);

// Backward pass, the gradients averaged over the processes (`sync`, null in a one-process run),
// gradient-norm clipping (clip > 0) and the optimizer's update.
void BackwardAndStep(const torch::Tensor& loss, torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, double clip,
                     GradientSync* sync = nullptr);

// What every process of a run must do after a step, decided together: a stop signal reached
// any of them (SIGTERM to one rank checkpoints all), or the periodic checkpoint is due on any.
// Without a World, this process's own view.
struct StepDecision {
  int stop_signal = 0;
  bool save_due = false;
};
StepDecision DecideAfterStep(World* world, int stop_signal, bool save_due);

// Whether a stage's steps run with run.cpu_bf16 (`asked`) on `device` (model/cpu_bf16.h), said
// in the log either way it was asked for: "<stage>: ..." naming what runs in bfloat16 (`what`).
bool ResolveCpuBf16(bool asked, const torch::Device& device, const std::string& stage,
                    const std::string& what);

// The error a non-finite loss stops a stage with. Nothing is saved after it, so the newest
// checkpoint (if `checkpoint_exists`) is the last good state; `advice` says what to lower.
absl::Status NonFiniteLossError(const std::string& stage, double loss, const std::string& where,
                                const std::string& checkpoint_dir, bool checkpoint_exists,
                                const std::string& advice);

// A stage's checkpoint directory, its share of metrics.jsonl and the clock of periodic saves.
class StageCheckpoints {
 public:
  // `world`: the processes of a data-parallel run (null: one process). Then every rank calls
  // Start and Save alike; Save gathers each rank's generators and LSTM rows to rank 0, which
  // alone writes, and Start gives each rank its own.
  StageCheckpoints(std::string stage, std::string dir, std::string metrics_path,
                   double checkpoint_minutes, World* world = nullptr);

  // Without `resume`: an error when an unfinished run of this stage is in `dir` (so that it is
  // not overwritten by accident), when `refuse_unfinished`. With `resume` and a checkpoint:
  // restores the model, optimizer, RNGs and `lstm_state` (may be null), returns the position,
  // and drops the metrics lines logged after the checkpoint (the replayed steps log them again).
  // Otherwise a fresh TrainingState for the stage.
  absl::StatusOr<TrainingState> Start(bool resume, bool refuse_unfinished,
                                      torch::nn::Module& model,
                                      torch::optim::Optimizer& optimizer,
                                      std::vector<torch::Tensor>* lstm_state);

  // Saves `state` (its elapsed time and metrics length brought up to date) with the model,
  // optimizer and RNGs.
  absl::Status Save(TrainingState* state, const torch::nn::Module& model,
                    const torch::optim::Optimizer& optimizer,
                    const std::vector<torch::Tensor>& lstm_state = {});

  // True when run.checkpoint_minutes have passed since the last save (or the start).
  bool PeriodicSaveDue() const;
  // Seconds of training in this stage, including those before a resume.
  double ElapsedSeconds() const;
  // True once Start has restored a checkpoint.
  bool resumed() const { return resumed_; }
  const std::string& dir() const { return dir_; }
  bool exists() const { return CheckpointExists(dir_); }

 private:
  std::string stage_;
  std::string dir_;
  std::string metrics_path_;
  double checkpoint_minutes_;
  World* world_;
  bool resumed_ = false;
  double elapsed_before_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_save_;
};

}  // namespace ulmfit
