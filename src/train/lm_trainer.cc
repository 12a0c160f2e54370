#include "train/lm_trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "infer/language_model.h"
#include "model/cpu_bf16.h"
#include "train/autocast.h"
#include "train/schedule.h"
#include "train/training_loop.h"
#include "util/files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/signals.h"

namespace ulmfit {
namespace fs = std::filesystem;

absl::StatusOr<int64_t> JobBatchSize(int64_t batch_size, const std::string& key,
                                     const RunConfig& run) {
  const int processes = WorldSize();
  if (run.batch_per_rank) return batch_size * processes;
  if (batch_size % processes != 0) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: {} does not split evenly over {} processes; make it a multiple of {}, or set "
        "run.batch_per_rank: true to make it each process's batch",
        key, batch_size, processes, processes));
  }
  return batch_size;
}

namespace {

// A validation measured on each rank's rows, as the whole job's.
LmEvaluation SumOverRanks(World* world, const LmEvaluation& own) {
  if (world == nullptr) return own;
  const std::vector<double> sums = world->AllReduceValues(
      {own.loss * own.tokens, own.accuracy * own.tokens, static_cast<double>(own.tokens)});
  LmEvaluation eval;
  eval.tokens = static_cast<int64_t>(sums[2]);
  if (eval.tokens > 0) {
    eval.loss = sums[0] / sums[2];
    eval.perplexity = std::exp(eval.loss);
    eval.accuracy = sums[1] / sums[2];
  }
  return eval;
}

// One run of the LM loop: the job, its optimizer and schedule, and where training stands.
class LmLoop {
 public:
  LmLoop(LmTrainingJob& job, torch::optim::AdamW& optimizer, StageCheckpoints& checkpoints,
         TrainingState& state, int64_t batches_per_epoch, GradientSync* sync)
      : job_(job), model_(job.model), optimizer_(optimizer), checkpoints_(checkpoints),
        sync_(sync),
        state_(state), batches_per_epoch_(batches_per_epoch),
        schedule_(job.schedule, job.lr, job.optimizer.beta1, batches_per_epoch * job.epochs),
        mixed_precision_(job.mixed_precision && job.device.is_cuda()),
        cpu_bf16_(job.cpu_bf16) {}

  // Trains from the state's position to the end of its epoch; returns the stop signal (0 when
  // the epoch finished).
  absl::StatusOr<int> TrainEpoch();
  // Logs the epoch's training loss, validates, and checkpoints the start of the next epoch.
  absl::Status FinishEpoch(StageResult* result);

 private:
  // One optimizer update on batch `i` at the schedule's `value`; returns the cross-entropy
  // alone, as logged.
  absl::StatusOr<double> Step(int64_t i, const LmBatch& batch, const ScheduleValue& value);
  void ShowProgress(int64_t i, int64_t epoch_batches, double lr, bool force);

  LmTrainingJob& job_;
  LanguageModel& model_;
  torch::optim::AdamW& optimizer_;
  StageCheckpoints& checkpoints_;
  GradientSync* sync_;  // null in a one-process run
  TrainingState& state_;
  const int64_t batches_per_epoch_;
  const LrSchedule schedule_;
  const bool mixed_precision_;
  const bool cpu_bf16_;  // resolved by TrainLanguageModel: asked for, and usable here
  ProgressLine progress_;
  std::chrono::steady_clock::time_point epoch_start_;
  int64_t first_step_ = 0;
  int64_t resumed_tokens_ = 0;
  double sync_seconds_at_start_ = 0;  // GradientSync's clock when the epoch (re)started
};

absl::StatusOr<double> LmLoop::Step(int64_t i, const LmBatch& batch,
                                     const ScheduleValue& value) {
  const double seq_scale =
      job_.scale_lr_with_seq_len ? static_cast<double>(batch.seq_len) / job_.bptt : 1.0;
  SetGroupRates(optimizer_, value.lr, job_.group_lr_mult, seq_scale, value.beta1,
                job_.optimizer.beta2);

  const auto input = batch.input.to(job_.device);
  const auto target = batch.target.to(job_.device).reshape({-1});
  ClearGradients(optimizer_);
  torch::Tensor lm_loss;
  torch::Tensor loss;
  {
    AutocastScope autocast(mixed_precision_);
    CpuBf16Scope cpu_bf16(cpu_bf16_);
    LmOutput out;
    lm_loss = model_->ForwardLoss(input, target, &out);
    loss = lm_loss;
    if (job_.ar_alpha > 0 || job_.tar_beta > 0) {
      loss = loss + ArTarLoss(out, job_.ar_alpha, job_.tar_beta);
    }
  }
  double loss_value = lm_loss.item<double>();
  double total_value = loss.item<double>();
  if (job_.world != nullptr) {
    // Every rank holds as many rows, so the job's loss is the mean of the ranks'; all of them
    // see a non-finite one and stop together.
    const std::vector<double> sums = job_.world->AllReduceValues({loss_value, total_value});
    loss_value = sums[0] / job_.world->size();
    total_value = sums[1] / job_.world->size();
  }
  if (!std::isfinite(loss_value) || !std::isfinite(total_value)) {
    progress_.Finish();
    return NonFiniteLossError(
        job_.stage, loss_value, fmt::format("epoch {} step {}", state_.epoch + 1, i),
        checkpoints_.dir(), checkpoints_.exists(),
        fmt::format("Lower the learning rate ({}) or raise optimizer.clip", job_.lr));
  }
  BackwardAndStep(loss, *model_, optimizer_, job_.optimizer.clip, sync_);
  ++state_.global_step;
  state_.step_in_epoch = i + 1;
  return loss_value;
}

void LmLoop::ShowProgress(int64_t i, int64_t epoch_batches, double lr, bool force) {
  const double mean_loss = state_.epoch_loss_sum / state_.epoch_loss_count;
  const double epoch_seconds = SecondsSince(epoch_start_);
  const double tokens_per_s =
      (state_.epoch_tokens - resumed_tokens_) / std::max(epoch_seconds, 1e-9);
  const double steps_per_s = (i + 1 - first_step_) / std::max(epoch_seconds, 1e-9);
  const int64_t steps_left =
      (epoch_batches - i - 1) + (job_.epochs - state_.epoch - 1) * batches_per_epoch_;
  progress_.Update(
      fmt::format("{} ep {}/{} step {}/{} loss {:.3f} ppl {:.1f} lr {:.2e} tok/s {} eta {}",
                  job_.stage, state_.epoch + 1, job_.epochs, i + 1, epoch_batches, mean_loss,
                  std::exp(mean_loss), lr, FormatCount(tokens_per_s),
                  FormatDuration(steps_left / steps_per_s)),
      force);
}

absl::StatusOr<int> LmLoop::TrainEpoch() {
  job_.train->StartEpoch(state_.epoch);
  int64_t epoch_batches = job_.train->num_batches();
  if (job_.max_steps_per_epoch > 0) {
    epoch_batches = std::min(epoch_batches, job_.max_steps_per_epoch);
  }
  model_->train();
  if (state_.step_in_epoch == 0) model_->encoder()->ResetState();
  // The running sums come from the checkpoint when resuming mid-epoch, zero otherwise.
  resumed_tokens_ = state_.epoch_tokens;
  epoch_start_ = std::chrono::steady_clock::now();
  first_step_ = state_.step_in_epoch;
  sync_seconds_at_start_ = sync_ != nullptr ? sync_->seconds() : 0;
  for (int64_t i = first_step_; i < epoch_batches; ++i) {
    const LmBatch batch = job_.train->Batch(i);
    const ScheduleValue value = schedule_.At(state_.global_step);
    ASSIGN_OR_RETURN(const double loss_value, Step(i, batch, value));
    state_.epoch_loss_sum += loss_value;
    ++state_.epoch_loss_count;
    // The job's tokens: every rank trains as many rows.
    state_.epoch_tokens += batch.input.numel() * (job_.world ? job_.world->size() : 1);
    ShowProgress(i, epoch_batches, value.lr,
                 (i + 1) % job_.log_every == 0 || i + 1 == epoch_batches);

    const StepDecision decision = DecideAfterStep(
        job_.world, StopSignal(), checkpoints_.PeriodicSaveDue() && i + 1 < epoch_batches);
    if (const int signal = decision.stop_signal; signal != 0) {
      progress_.Finish();
      RETURN_IF_ERROR(checkpoints_.Save(&state_, *model_, optimizer_,
                                        model_->encoder()->GetState()));
      LogInfo(fmt::format("{}: stopped by signal {}; checkpoint saved in {}; continue with "
                          "--resume", job_.stage, signal, checkpoints_.dir()));
      return signal;
    }
    if (decision.save_due) {
      RETURN_IF_ERROR(checkpoints_.Save(&state_, *model_, optimizer_,
                                        model_->encoder()->GetState()));
    }
  }
  progress_.Finish();
  return 0;
}

absl::Status LmLoop::FinishEpoch(StageResult* result) {
  const int64_t loss_count = state_.epoch_loss_count;
  const double train_loss = loss_count ? state_.epoch_loss_sum / loss_count : 0;
  const double epoch_seconds = SecondsSince(epoch_start_);
  const bool leader = job_.world == nullptr || job_.world->leader();
  if (leader) {
    JsonLine line;
    line.Add("stage", job_.stage).Add("event", "train_epoch").Add("epoch", state_.epoch + 1)
        .Add("step", state_.global_step).Add("train_loss", train_loss)
        .Add("train_ppl", std::exp(train_loss)).Add("tokens", state_.epoch_tokens)
        .Add("tokens_per_s",
             (state_.epoch_tokens - resumed_tokens_) / std::max(epoch_seconds, 1e-9))
        .Add("seconds", epoch_seconds)
        .Add("elapsed_s", checkpoints_.ElapsedSeconds());
    if (sync_ != nullptr) {
      // What data parallelism costs: rank 0's wait for the gradients' all-reduce, per step.
      const int64_t steps = std::max<int64_t>(state_.step_in_epoch - first_step_, 1);
      line.Add("processes", static_cast<int64_t>(job_.world->size()))
          .Add("allreduce_s_per_step", (sync_->seconds() - sync_seconds_at_start_) / steps);
    }
    RETURN_IF_ERROR(AppendLine(job_.metrics_path, line.str()));
  }
  if (job_.valid != nullptr) {
    const auto valid_start = std::chrono::steady_clock::now();
    const LmEvaluation eval =
        SumOverRanks(job_.world, EvaluateLanguageModel(model_, *job_.valid, job_.device));
    result->final_valid_loss = eval.loss;
    result->final_valid_ppl = eval.perplexity;
    if (state_.best_valid_loss == 0 || eval.loss < state_.best_valid_loss) {
      state_.best_valid_loss = eval.loss;
    }
    LogInfo(fmt::format("{} ep {}/{} train_loss {:.3f} valid_loss {:.3f} valid_ppl {:.2f} "
                        "valid_acc {:.4f} time {}",
                        job_.stage, state_.epoch + 1, job_.epochs, train_loss, eval.loss,
                        eval.perplexity, eval.accuracy, FormatDuration(epoch_seconds)));
    if (leader) {
      RETURN_IF_ERROR(AppendLine(
          job_.metrics_path,
          JsonLine()
              .Add("stage", job_.stage).Add("event", "valid").Add("epoch", state_.epoch + 1)
              .Add("step", state_.global_step).Add("valid_loss", eval.loss)
              .Add("valid_ppl", eval.perplexity).Add("valid_acc", eval.accuracy)
              .Add("valid_tokens", eval.tokens)
              .Add("seconds", SecondsSince(valid_start))
              .str()));
    }
  }
  // The epoch is done: the checkpoint points at the start of the next one.
  ++state_.epoch;
  state_.step_in_epoch = 0;
  state_.epoch_loss_sum = 0;
  state_.epoch_loss_count = 0;
  state_.epoch_tokens = 0;
  return checkpoints_.Save(&state_, *model_, optimizer_, model_->encoder()->GetState());
}

// Groups at multiplier 0 are frozen for this job (fastai freeze_to); restored on destruction.
class FreezeZeroRateGroups {
 public:
  FreezeZeroRateGroups(LanguageModel& model, const std::vector<double>& multipliers) {
    const auto groups = model->LayerGroups();
    for (size_t g = 0; g < groups.size(); ++g) {
      if (multipliers[g] != 0) continue;
      for (auto p : groups[g]) {
        p.requires_grad_(false);
        frozen_.push_back(p);
      }
    }
  }
  ~FreezeZeroRateGroups() {
    for (auto& p : frozen_) p.requires_grad_(true);
  }

 private:
  std::vector<torch::Tensor> frozen_;
};

}  // namespace

absl::StatusOr<StageResult> TrainLanguageModel(LmTrainingJob& job) {
  LanguageModel& model = job.model;
  model->to(job.device);
  const auto layer_groups = model->LayerGroups();
  auto optimizer = MakeGroupedAdamW(layer_groups, job.optimizer, job.lr);
  const size_t num_groups = layer_groups.size();
  if (job.group_lr_mult.empty()) job.group_lr_mult.assign(num_groups, 1.0);
  if (job.group_lr_mult.size() != num_groups) {
    return absl::InternalError(fmt::format("{} lr multipliers for {} layer groups",
                                           job.group_lr_mult.size(), num_groups));
  }
  const FreezeZeroRateGroups freeze(model, job.group_lr_mult);

  std::optional<GradientSync> sync;
  if (job.world != nullptr) {
    // Rank 0's weights everywhere (a resume then loads the same checkpoint on every rank).
    BroadcastModule(*job.world, *model);
    sync.emplace(*job.world, *model);
  }
  StageCheckpoints checkpoints(job.stage, (fs::path(job.stage_dir) / "checkpoint").string(),
                               job.metrics_path, job.checkpoint_minutes, job.world);
  std::vector<torch::Tensor> lstm_state;
  ASSIGN_OR_RETURN(TrainingState state,
                   checkpoints.Start(job.resume, /*refuse_unfinished=*/false, *model,
                                     *optimizer, &lstm_state));
  if (checkpoints.resumed()) {
    if (state.step_in_epoch > 0) {
      for (auto& t : lstm_state) t = t.to(job.device);
      model->encoder()->SetState(lstm_state);
    }
    LogInfo(fmt::format("{}: resuming at epoch {} step {} (global step {})", job.stage,
                        state.epoch + 1, state.step_in_epoch, state.global_step));
  }

  int64_t batches_per_epoch = job.train->EstimatedBatchesPerEpoch();
  if (job.max_steps_per_epoch > 0) {
    batches_per_epoch = std::min(batches_per_epoch, job.max_steps_per_epoch);
  }
  if (batches_per_epoch <= 0) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: the training text has {} tokens, too few for batch_size {} (each of the batch's "
        "streams needs at least 2); add data or lower {}.batch_size",
        job.stage, job.train->num_tokens(), job.train->options().batch_size,
        job.stage == "pretrain" ? "pretrain" : "finetune"));
  }
  if (job.mixed_precision && !job.device.is_cuda()) {
    LogInfo(fmt::format("{}: mixed_precision applies to CUDA only; training in float32 on {}",
                        job.stage, job.device.str()));
  }

  job.cpu_bf16 = ResolveCpuBf16(job.cpu_bf16, job.device, job.stage, "the model's products");

  LmLoop loop(job, *optimizer, checkpoints, state, batches_per_epoch,
              sync ? &*sync : nullptr);
  StageResult result;
  while (state.epoch < job.epochs) {
    ASSIGN_OR_RETURN(const int signal, loop.TrainEpoch());
    if (signal != 0) {
      result.outcome = StageOutcome::kInterrupted;
      result.signal = signal;
      return result;
    }
    RETURN_IF_ERROR(loop.FinishEpoch(&result));
  }
  return result;
}

}  // namespace ulmfit
