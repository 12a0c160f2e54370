#include "train/clas_trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "infer/classifier.h"
#include "model/cpu_bf16.h"
#include "model/weights.h"
#include "train/autocast.h"
#include "train/precise_bn.h"
#include "train/schedule.h"
#include "train/training_loop.h"
#include "util/files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/signals.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

// Higher is better for every selectable metric (loss is negated).
double SelectionScore(const ClassificationMetrics& m, SelectMetric metric) {
  if (metric == SelectMetric::kLoss) return -m.loss;
  if (metric == SelectMetric::kMacroF1) return m.macro_f1;
  return m.accuracy;
}

// The classifier's validation on `batcher`, its batches split over the ranks of `world` (null:
// all here) and the per-example results combined, so every rank gets the whole evaluation.
ClassifierEvaluation Validate(World* world, TextClassifier& model, ClasBatcher& batcher,
                              int num_classes, const torch::Device& device) {
  if (world == nullptr) return EvaluateClassifier(model, batcher, num_classes, device);
  const ClassifierEvaluation own = EvaluateClassifier(
      model, batcher, num_classes, device, /*with_features=*/false, world->rank(), world->size());
  return CombineRankEvaluations(*world, own, batcher.num_examples(), num_classes);
}

// While it lives, the head's BatchNorm normalizes with the statistics of the whole job's batch.
class SyncedBatchStatistics {
 public:
  SyncedBatchStatistics(World* world, TextClassifier& model) : model_(model) {
    if (world == nullptr) return;
    model_->head()->SyncBatchStatistics(
        [world](const torch::Tensor& x) { return CrossRankSum(*world, x); });
  }
  ~SyncedBatchStatistics() { model_->head()->SyncBatchStatistics(nullptr); }

 private:
  TextClassifier& model_;
};

// Passes over the data after an epoch's first reshuffle it with this epoch number offset
// (classifier.min_steps_per_epoch).
constexpr int64_t kPassEpochStride = 1000003;

// One epoch as the phases lay it out.
struct EpochPlan {
  size_t phase = 0;          // 0-based phase index
  int epoch_in_phase = 0;    // 0-based
  int global_epoch = 0;      // 0-based, over all phases
  int total_epochs = 0;
  int trainable = 0;         // layer groups that learn, from the top
  int64_t steps = 0;         // optimizer steps in the epoch
  int64_t batches_per_pass = 0;
  const LrSchedule* schedule = nullptr;
};

class ClasLoop {
 public:
  ClasLoop(ClasTrainingJob& job, torch::optim::AdamW& optimizer, StageCheckpoints& checkpoints,
           TrainingState& state, GradientSync* sync)
      : job_(job), model_(job.model), optimizer_(optimizer), checkpoints_(checkpoints),
        sync_(sync), state_(state), multipliers_(DiscriminativeMultipliers(
                           static_cast<int>(optimizer.param_groups().size()),
                           job.config.lr_factor)),
        mixed_precision_(job.config.mixed_precision && job.device.is_cuda()),
        cpu_bf16_(job.cpu_bf16) {}

  // Trains the planned epoch from the state's position; returns the stop signal (0 when the
  // epoch finished).
  absl::StatusOr<int> TrainEpoch(const EpochPlan& plan);
  // Sets the BatchNorm statistics, validates, keeps the epoch if best, logs and checkpoints.
  absl::Status FinishEpoch(const EpochPlan& plan, StageResult* result);

 private:
  // One optimizer update at the schedule's `value`; returns the cross-entropy alone, as logged
  // (the mean over the job's whole batch).
  absl::StatusOr<double> Step(const EpochPlan& plan, int64_t i, const ClasBatch& batch,
                              const ScheduleValue& value);
  double DocsPerSecond() const {
    return (state_.epoch_loss_count - resumed_docs_) / std::max(train_seconds_, 1e-9);
  }

  ClasTrainingJob& job_;
  TextClassifier& model_;
  torch::optim::AdamW& optimizer_;
  StageCheckpoints& checkpoints_;
  GradientSync* sync_;  // null in a one-process run
  TrainingState& state_;
  const std::vector<double> multipliers_;
  const bool mixed_precision_;
  const bool cpu_bf16_;  // resolved by TrainClassifier: asked for, and usable here
  ProgressLine progress_;
  double train_seconds_ = 0;  // of the epoch in this process (since the resume, if any)
  int64_t resumed_docs_ = 0;  // documents of the epoch trained before a resume
};

absl::StatusOr<double> ClasLoop::Step(const EpochPlan& plan, int64_t i, const ClasBatch& batch,
                                       const ScheduleValue& value) {
  const ClassifierConfig& clas = job_.config;
  SetGroupRates(optimizer_, value.lr, multipliers_, 1.0, value.beta1, clas.optimizer.beta2);
  ClearGradients(optimizer_);
  torch::Tensor loss;
  double loss_value = 0;
  {
    AutocastScope autocast(mixed_precision_);
    CpuBf16Scope cpu_bf16(cpu_bf16_);
    const ClassifierOutput out = model_->forward(batch.tokens.to(job_.device));
    loss = torch::nn::functional::cross_entropy(out.logits.to(torch::kFloat),
                                                batch.labels.to(job_.device));
    loss_value = loss.item<double>();
    if (out.raw.defined() && (clas.ar_alpha > 0 || clas.tar_beta > 0)) {
      LmOutput reg;
      reg.raw = out.raw;
      reg.dropped = out.dropped;
      loss = loss + ArTarLoss(reg, clas.ar_alpha, clas.tar_beta);
    }
  }
  double total_value = loss.item<double>();
  if (job_.world != nullptr) {
    // The job's means over its whole batch. This rank's loss is weighted by its share of the
    // rows (times the ranks, as GradientSync averages), so the averaged gradient is the whole
    // batch's even where the shards' rows differ by one.
    const double rows = static_cast<double>(batch.labels.size(0));
    const double job_rows = static_cast<double>(batch.job_rows);
    const std::vector<double> sums =
        job_.world->AllReduceValues({loss_value * rows, total_value * rows});
    loss_value = sums[0] / job_rows;
    total_value = sums[1] / job_rows;
    loss = loss * (rows * job_.world->size() / job_rows);
  }
  if (!std::isfinite(loss_value) || !std::isfinite(total_value)) {
    progress_.Finish();
    return NonFiniteLossError("classify", loss_value,
                              fmt::format("epoch {} step {}", plan.global_epoch + 1, i + 1),
                              checkpoints_.dir(), checkpoints_.exists(),
                              "Lower classifier.phase_lrs or raise classifier.optimizer.clip");
  }
  BackwardAndStep(loss, *model_, optimizer_, clas.optimizer.clip, sync_);
  ++state_.global_step;
  state_.step_in_epoch = i + 1;
  return loss_value;
}

absl::StatusOr<int> ClasLoop::TrainEpoch(const EpochPlan& plan) {
  model_->train();
  int64_t pass = state_.step_in_epoch / std::max<int64_t>(plan.batches_per_pass, 1);
  job_.train->StartEpoch(plan.global_epoch + pass * kPassEpochStride);
  const auto epoch_start = std::chrono::steady_clock::now();
  const int64_t first_step = state_.step_in_epoch;
  resumed_docs_ = state_.epoch_loss_count;
  for (int64_t i = first_step; i < plan.steps; ++i) {
    // classifier.min_steps_per_epoch: passes after the first reshuffle the data.
    if (i / plan.batches_per_pass != pass) {
      pass = i / plan.batches_per_pass;
      job_.train->StartEpoch(plan.global_epoch + pass * kPassEpochStride);
    }
    const ClasBatch batch = job_.train->Batch(i % plan.batches_per_pass);
    const ScheduleValue value = plan.schedule->At(plan.epoch_in_phase * plan.steps + i);
    ASSIGN_OR_RETURN(const double loss_value, Step(plan, i, batch, value));
    state_.epoch_loss_sum += loss_value * batch.job_rows;
    state_.epoch_loss_count += batch.job_rows;
    const int64_t seen = state_.epoch_loss_count;
    train_seconds_ = SecondsSince(epoch_start);
    progress_.Update(
        fmt::format("classify ep {}/{} (phase {}, {} groups) step {}/{} loss {:.4f} lr {:.2e} "
                    "docs/s {:.1f} eta {}",
                    plan.global_epoch + 1, plan.total_epochs, plan.phase + 1, plan.trainable,
                    i + 1, plan.steps, state_.epoch_loss_sum / seen, value.lr,
                    DocsPerSecond(),
                    FormatDuration(train_seconds_ / (i + 1 - first_step) * (plan.steps - i - 1))),
        (i + 1) % job_.log_every == 0 || i + 1 == plan.steps);
    const StepDecision decision = DecideAfterStep(
        job_.world, StopSignal(), checkpoints_.PeriodicSaveDue() && i + 1 < plan.steps);
    if (const int signal = decision.stop_signal; signal != 0) {
      progress_.Finish();
      RETURN_IF_ERROR(checkpoints_.Save(&state_, *model_, optimizer_));
      LogInfo(fmt::format("classify: stopped by signal {}; checkpoint saved in {}; continue "
                          "with --resume", signal, checkpoints_.dir()));
      return signal;
    }
    if (decision.save_due) {
      RETURN_IF_ERROR(checkpoints_.Save(&state_, *model_, optimizer_));
    }
  }
  progress_.Finish();
  train_seconds_ = SecondsSince(epoch_start);
  return 0;
}

absl::Status ClasLoop::FinishEpoch(const EpochPlan& plan, StageResult* result) {
  const ClassifierConfig& clas = job_.config;
  if (job_.batch_norm != nullptr) {
    SetPreciseBatchNormStatistics(model_, *job_.batch_norm, job_.device);
  }
  const int64_t seen = state_.epoch_loss_count;
  const double train_loss = state_.epoch_loss_sum / std::max<int64_t>(seen, 1);
  const int epoch = plan.global_epoch + 1;
  JsonLine line;
  line.Add("stage", "classify").Add("event", "epoch").Add("epoch", epoch)
      .Add("phase", static_cast<int64_t>(plan.phase + 1)).Add("trainable_groups", plan.trainable)
      .Add("steps", plan.steps).Add("train_loss", train_loss);
  bool best = true;  // without validation data every epoch replaces the last
  std::optional<ClassificationMetrics> valid;
  if (job_.valid != nullptr) {
    valid = Validate(job_.world, model_, *job_.valid, job_.num_classes, job_.device).metrics;
    const double score = SelectionScore(*valid, clas.select_metric);
    best = state_.best_epoch == 0 || score > state_.best_score;
    if (best) state_.best_score = score;
    LogInfo(fmt::format("classify ep {}/{} train_loss {:.4f} valid_loss {:.4f} valid_acc "
                        "{:.4f} valid_f1 {:.4f} time {}{}",
                        epoch, plan.total_epochs, train_loss, valid->loss, valid->accuracy,
                        valid->macro_f1, FormatDuration(train_seconds_), best ? " (best)" : ""));
    line.Add("valid_loss", valid->loss).Add("valid_acc", valid->accuracy)
        .Add("valid_error", valid->error_rate).Add("valid_macro_f1", valid->macro_f1);
  } else {
    state_.best_score = epoch;
    LogInfo(fmt::format("classify ep {}/{} train_loss {:.4f} time {} (no validation data: the "
                        "last epoch is kept)", epoch, plan.total_epochs, train_loss,
                        FormatDuration(train_seconds_)));
  }
  const bool leader = job_.world == nullptr || job_.world->leader();
  if (leader) {
    RETURN_IF_ERROR(AppendLine(
        job_.metrics_path, line.Add("docs_per_s", DocsPerSecond())
                               .Add("seconds", train_seconds_).Add("best", best)
                               .str()));
  }
  if (best) {
    state_.best_epoch = epoch;
    result->best_valid = valid;
  }
  if (best && leader) {
    const fs::path dir(job_.stage_dir);
    RETURN_IF_ERROR(SaveModuleWeights(*model_, (dir / "best.pt").string()));
    RETURN_IF_ERROR(WriteFileAtomic(
        (dir / "best.json").string(),
        fmt::format("{{\"epoch\": {}, \"metric\": \"{}\", \"score\": {:.17g}}}\n", epoch,
                    job_.valid != nullptr ? std::string(EnumName(clas.select_metric)) : "last_epoch",
                    state_.best_score)));
  }
  // The epoch is done: the checkpoint points at the start of the next one.
  state_.epoch = epoch;
  state_.step_in_epoch = 0;
  state_.epoch_loss_sum = 0;
  state_.epoch_loss_count = 0;
  return checkpoints_.Save(&state_, *model_, optimizer_);
}

// The kept epoch of a checkpoint written before TrainingState recorded it (best.json).
void ReadBestFromOldCheckpoint(const std::string& stage_dir, TrainingState* state) {
  if (state->best_epoch != 0) return;
  const absl::StatusOr<std::string> best = ReadFile((fs::path(stage_dir) / "best.json").string());
  if (!best.ok()) return;
  const std::optional<double> epoch = JsonNumberField(*best, "epoch");
  const std::optional<double> score = JsonNumberField(*best, "score");
  if (!epoch || !score) return;
  state->best_epoch = static_cast<int64_t>(*epoch);
  state->best_score = *score;
}

}  // namespace

absl::StatusOr<StageResult> TrainClassifier(ClasTrainingJob& job) {
  const ClassifierConfig& clas = job.config;
  // One optimizer for all phases (its moments persist, as in fastai); a group per layer group.
  const auto groups = job.model->LayerGroups();
  const int num_groups = static_cast<int>(groups.size());
  auto optimizer = MakeGroupedAdamW(groups, clas.optimizer, 1e-3);

  std::optional<GradientSync> sync;
  if (job.world != nullptr) {
    // Rank 0's weights everywhere (a resume then loads the same checkpoint on every rank).
    BroadcastModule(*job.world, *job.model);
    sync.emplace(*job.world, *job.model);
  }
  const SyncedBatchStatistics synced_batch_norm(job.world, job.model);
  StageCheckpoints checkpoints("classify", (fs::path(job.stage_dir) / "checkpoint").string(),
                               job.metrics_path, job.checkpoint_minutes, job.world);
  ASSIGN_OR_RETURN(TrainingState state,
                   checkpoints.Start(job.resume, /*refuse_unfinished=*/true, *job.model,
                                     *optimizer, nullptr));
  if (checkpoints.resumed()) {
    ReadBestFromOldCheckpoint(job.stage_dir, &state);
    LogInfo(fmt::format("classify: resuming at epoch {} step {}", state.epoch + 1,
                        state.step_in_epoch));
  }

  int total_epochs = 0;
  for (const auto& phase : job.phases) total_epochs += phase.epochs;
  job.cpu_bf16 = ResolveCpuBf16(job.cpu_bf16, job.device, "classify", "the encoder's products");
  ClasLoop loop(job, *optimizer, checkpoints, state, sync ? &*sync : nullptr);
  StageResult result;
  int global_epoch = 0;
  for (size_t p = 0; p < job.phases.size(); ++p) {
    const UnfreezePhase& phase = job.phases[p];
    EpochPlan plan;
    plan.phase = p;
    plan.total_epochs = total_epochs;
    plan.trainable = phase.groups == 0 ? num_groups : std::min(phase.groups, num_groups);
    // Gradual unfreezing: only the top `trainable` groups learn in this phase.
    for (int g = 0; g < num_groups; ++g) {
      for (auto param : groups[g]) param.requires_grad_(g >= num_groups - plan.trainable);
    }
    job.train->StartEpoch(0);
    plan.batches_per_pass = job.train->num_batches();
    plan.steps =  // no batches at all: nothing to repeat
        plan.batches_per_pass > 0 ? std::max(plan.batches_per_pass, clas.min_steps_per_epoch) : 0;
    if (clas.max_steps > 0) plan.steps = std::min(plan.steps, clas.max_steps);
    const LrSchedule schedule(clas.schedule, phase.lr, clas.optimizer.beta1,
                              plan.steps * std::max(phase.epochs, 1));
    plan.schedule = &schedule;
    for (int e = 0; e < phase.epochs; ++e, ++global_epoch) {
      if (global_epoch < state.epoch) continue;  // done before the resume
      plan.epoch_in_phase = e;
      plan.global_epoch = global_epoch;
      ASSIGN_OR_RETURN(const int signal, loop.TrainEpoch(plan));
      if (signal != 0) {
        result.outcome = StageOutcome::kInterrupted;
        result.signal = signal;
        return result;
      }
      RETURN_IF_ERROR(loop.FinishEpoch(plan, &result));
    }
  }
  for (auto param : job.model->parameters()) param.requires_grad_(true);
  RETURN_IF_ERROR(
      LoadModuleWeights(*job.model, (fs::path(job.stage_dir) / "best.pt").string()));
  result.best_epoch = state.best_epoch;
  if (job.valid != nullptr && !result.best_valid) {
    // Kept before a resume: measure it again (eval mode draws nothing, so this is exact).
    result.best_valid =
        Validate(job.world, job.model, *job.valid, job.num_classes, job.device).metrics;
  }
  return result;
}

}  // namespace ulmfit
