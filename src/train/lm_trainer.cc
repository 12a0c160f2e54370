#include "train/lm_trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <regex>

#include <fmt/format.h>

#include "train/autocast.h"
#include "train/checkpoint.h"
#include "train/schedule.h"
#include "util/files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/signals.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

torch::optim::AdamWOptions& GroupOptions(torch::optim::Optimizer& optimizer, size_t group) {
  return static_cast<torch::optim::AdamWOptions&>(optimizer.param_groups()[group].options());
}

std::unique_ptr<torch::optim::AdamW> MakeOptimizer(LanguageModel& model,
                                                   const LmTrainingJob& job) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (auto& params : model->LayerGroups()) {
    auto options = std::make_unique<torch::optim::AdamWOptions>(job.lr);
    options->betas({job.optimizer.beta1, job.optimizer.beta2})
        .eps(job.optimizer.eps)
        .weight_decay(job.optimizer.weight_decay);
    groups.emplace_back(params, std::move(options));
  }
  torch::optim::AdamWOptions defaults(job.lr);
  return std::make_unique<torch::optim::AdamW>(std::move(groups), defaults);
}

// Size of metrics.jsonl, so a resumed run can drop lines written after its checkpoint.
int64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

}  // namespace

absl::StatusOr<torch::Device> ResolveDevice(const std::string& device) {
  if (device == "cpu") return torch::Device(torch::kCPU);
  if (device == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  const std::regex cuda_re("cuda(?::([0-9]+))?");
  std::smatch match;
  if (std::regex_match(device, match, cuda_re)) {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(fmt::format(
          "run.device is '{}' but this libtorch has no usable CUDA device; use device: cpu or "
          "auto", device));
    }
    const int index = match[1].matched ? std::stoi(match[1].str()) : 0;
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::FailedPreconditionError(fmt::format(
          "run.device is '{}' but only {} CUDA device(s) exist", device,
          torch::cuda::device_count()));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(
      fmt::format("run.device '{}' is not one of auto, cpu, cuda, cuda:N", device));
}

LmEvaluation EvaluateLanguageModel(LanguageModel& model, LmBatcher& batcher,
                                   const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  model->encoder()->ResetState();
  double loss_sum = 0;
  int64_t correct = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < batcher.num_batches(); ++i) {
    const LmBatch batch = batcher.Batch(i);
    const auto input = batch.input.to(device);
    const auto target = batch.target.to(device).reshape({-1});
    const LmOutput out = model->forward(input);
    const auto logits = out.logits.reshape({target.size(0), -1}).to(torch::kFloat);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, target,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(target).sum().item<int64_t>();
    tokens += target.size(0);
  }
  model->encoder()->ResetState();
  if (was_training) model->train();
  LmEvaluation eval;
  eval.tokens = tokens;
  if (tokens > 0) {
    eval.loss = loss_sum / tokens;
    eval.perplexity = std::exp(eval.loss);
    eval.accuracy = static_cast<double>(correct) / tokens;
  }
  return eval;
}

absl::StatusOr<StageResult> TrainLanguageModel(LmTrainingJob& job) {
  LanguageModel& model = job.model;
  model->to(job.device);
  auto optimizer = MakeOptimizer(model, job);
  const size_t num_groups = optimizer->param_groups().size();
  if (job.group_lr_mult.empty()) job.group_lr_mult.assign(num_groups, 1.0);
  if (job.group_lr_mult.size() != num_groups) {
    return absl::InternalError(fmt::format("{} lr multipliers for {} layer groups",
                                           job.group_lr_mult.size(), num_groups));
  }

  // Groups at multiplier 0 are frozen for this job (fastai freeze_to); restored on return.
  const auto layer_groups = model->LayerGroups();
  struct Unfreeze {
    std::vector<torch::Tensor> params;
    ~Unfreeze() { for (auto& p : params) p.requires_grad_(true); }
  } unfreeze;
  for (size_t g = 0; g < num_groups; ++g) {
    if (job.group_lr_mult[g] != 0) continue;
    for (auto p : layer_groups[g]) {
      p.requires_grad_(false);
      unfreeze.params.push_back(p);
    }
  }

  const std::string checkpoint_dir = (fs::path(job.stage_dir) / "checkpoint").string();
  TrainingState state;
  state.stage = job.stage;
  if (job.resume && CheckpointExists(checkpoint_dir)) {
    std::vector<torch::Tensor> lstm_state;
    ASSIGN_OR_RETURN(state, LoadCheckpoint(checkpoint_dir, *model, *optimizer, &lstm_state));
    if (state.stage != job.stage) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: checkpoint belongs to stage '{}', not '{}'", checkpoint_dir, state.stage,
          job.stage));
    }
    if (state.step_in_epoch > 0) {
      for (auto& t : lstm_state) t = t.to(job.device);
      model->encoder()->SetState(lstm_state);
    }
    // Lines logged after the checkpoint will be logged again by the replayed steps.
    if (FileSize(job.metrics_path) > state.metrics_bytes) {
      fs::resize_file(job.metrics_path, static_cast<uintmax_t>(state.metrics_bytes));
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
        "{}: the training text has too few tokens for batch_size {} (need more than one token "
        "per stream); add data or lower the batch size", job.stage, job.train->row_length()));
  }
  const int64_t total_steps = batches_per_epoch * job.epochs;
  const LrSchedule schedule(job.schedule, job.lr, job.optimizer.beta1, total_steps);

  const bool mixed_precision = job.mixed_precision && job.device.is_cuda();
  if (job.mixed_precision && !mixed_precision) {
    LogInfo(fmt::format("{}: mixed_precision applies to CUDA only; training in float32 on {}",
                        job.stage, job.device.str()));
  }
  ProgressLine progress;
  const auto stage_start = Clock::now();
  const double elapsed_before = state.elapsed_seconds;
  auto last_checkpoint = Clock::now();
  StageResult result;

  auto save_checkpoint = [&]() -> absl::Status {
    state.elapsed_seconds = elapsed_before + SecondsSince(stage_start);
    state.metrics_bytes = FileSize(job.metrics_path);
    last_checkpoint = Clock::now();
    return SaveCheckpoint(checkpoint_dir, *model, *optimizer, model->encoder()->GetState(), state);
  };

  for (; state.epoch < job.epochs; ++state.epoch, state.step_in_epoch = 0) {
    job.train->StartEpoch(state.epoch);
    int64_t epoch_batches = job.train->num_batches();
    if (job.max_steps_per_epoch > 0) epoch_batches = std::min(epoch_batches, job.max_steps_per_epoch);
    model->train();
    if (state.step_in_epoch == 0) model->encoder()->ResetState();

    // Restored from the checkpoint when resuming mid-epoch, zero otherwise.
    double& loss_sum = state.epoch_loss_sum;
    int64_t& loss_count = state.epoch_loss_count;
    int64_t& epoch_tokens = state.epoch_tokens;
    const int64_t resumed_tokens = epoch_tokens;
    const auto epoch_start = Clock::now();
    const int64_t first_step = state.step_in_epoch;
    for (int64_t i = first_step; i < epoch_batches; ++i) {
      const LmBatch batch = job.train->Batch(i);
      const ScheduleValue value = schedule.At(state.global_step);
      const double seq_scale =
          job.scale_lr_with_seq_len ? static_cast<double>(batch.seq_len) / job.bptt : 1.0;
      for (size_t g = 0; g < num_groups; ++g) {
        GroupOptions(*optimizer, g)
            .lr(value.lr * job.group_lr_mult[g] * seq_scale)
            .betas({value.beta1, job.optimizer.beta2});
      }

      const auto input = batch.input.to(job.device);
      const auto target = batch.target.to(job.device).reshape({-1});
      optimizer->zero_grad();
      torch::Tensor lm_loss;
      torch::Tensor loss;
      {
        AutocastScope autocast(mixed_precision);
        const LmOutput out = model->forward(input);
        const auto logits = out.logits.reshape({target.size(0), -1}).to(torch::kFloat);
        lm_loss = torch::nn::functional::cross_entropy(logits, target);
        loss = lm_loss;
        if (job.ar_alpha > 0 || job.tar_beta > 0) {
          loss = loss + ArTarLoss(out, job.ar_alpha, job.tar_beta);
        }
      }
      const double loss_value = lm_loss.item<double>();
      if (!std::isfinite(loss_value) || !std::isfinite(loss.item<double>())) {
        progress.Finish();
        return absl::InternalError(fmt::format(
            "{}: the loss became {} at epoch {} step {}; stopped without saving, so the last "
            "good checkpoint in {} is intact. Lower the learning rate ({}) or raise "
            "optimizer.clip, then run again with --resume",
            job.stage, loss_value, state.epoch + 1, i, checkpoint_dir, job.lr));
      }
      loss.backward();
      if (job.optimizer.clip > 0) {
        torch::nn::utils::clip_grad_norm_(model->parameters(), job.optimizer.clip);
      }
      optimizer->step();
      ++state.global_step;
      state.step_in_epoch = i + 1;

      loss_sum += loss_value;
      ++loss_count;
      epoch_tokens += batch.input.numel();
      const double epoch_seconds = SecondsSince(epoch_start);
      const double tokens_per_s = (epoch_tokens - resumed_tokens) / std::max(epoch_seconds, 1e-9);
      const double steps_per_s = (i + 1 - first_step) / std::max(epoch_seconds, 1e-9);
      const int64_t steps_left =
          (epoch_batches - i - 1) + (job.epochs - state.epoch - 1) * batches_per_epoch;
      const bool log_now = (i + 1) % job.log_every == 0 || i + 1 == epoch_batches;
      progress.Update(
          fmt::format("{} ep {}/{} step {}/{} loss {:.3f} ppl {:.1f} lr {:.2e} tok/s {} eta {}",
                      job.stage, state.epoch + 1, job.epochs, i + 1, epoch_batches,
                      loss_sum / loss_count, std::exp(loss_sum / loss_count), value.lr,
                      FormatCount(tokens_per_s), FormatDuration(steps_left / steps_per_s)),
          log_now);

      if (const int signal = StopSignal(); signal != 0) {
        progress.Finish();
        RETURN_IF_ERROR(save_checkpoint());
        LogInfo(fmt::format("{}: stopped by signal {}; checkpoint saved in {}; continue with "
                            "--resume", job.stage, signal, checkpoint_dir));
        result.outcome = StageOutcome::kInterrupted;
        result.signal = signal;
        return result;
      }
      if (job.checkpoint_minutes > 0 &&
          SecondsSince(last_checkpoint) >= job.checkpoint_minutes * 60.0 && i + 1 < epoch_batches) {
        RETURN_IF_ERROR(save_checkpoint());
      }
    }
    progress.Finish();

    const double train_loss = loss_count ? loss_sum / loss_count : 0;
    const double epoch_seconds = SecondsSince(epoch_start);
    RETURN_IF_ERROR(AppendLine(
        job.metrics_path,
        JsonLine()
            .Add("stage", job.stage).Add("event", "train_epoch").Add("epoch", state.epoch + 1)
            .Add("step", state.global_step).Add("train_loss", train_loss)
            .Add("train_ppl", std::exp(train_loss)).Add("tokens", epoch_tokens)
            .Add("tokens_per_s", (epoch_tokens - resumed_tokens) / std::max(epoch_seconds, 1e-9))
            .Add("seconds", epoch_seconds)
            .Add("elapsed_s", elapsed_before + SecondsSince(stage_start))
            .str()));
    if (job.valid != nullptr) {
      const auto valid_start = Clock::now();
      const LmEvaluation eval = EvaluateLanguageModel(model, *job.valid, job.device);
      result.final_valid_loss = eval.loss;
      result.final_valid_ppl = eval.perplexity;
      if (state.best_valid_loss == 0 || eval.loss < state.best_valid_loss) {
        state.best_valid_loss = eval.loss;
      }
      LogInfo(fmt::format("{} ep {}/{} train_loss {:.3f} valid_loss {:.3f} valid_ppl {:.2f} "
                          "valid_acc {:.4f} time {}",
                          job.stage, state.epoch + 1, job.epochs, train_loss, eval.loss,
                          eval.perplexity, eval.accuracy, FormatDuration(epoch_seconds)));
      RETURN_IF_ERROR(AppendLine(
          job.metrics_path,
          JsonLine()
              .Add("stage", job.stage).Add("event", "valid").Add("epoch", state.epoch + 1)
              .Add("step", state.global_step).Add("valid_loss", eval.loss)
              .Add("valid_ppl", eval.perplexity).Add("valid_acc", eval.accuracy)
              .Add("valid_tokens", eval.tokens).Add("seconds", SecondsSince(valid_start))
              .str()));
    }
    // The epoch is done: the checkpoint points at the start of the next one.
    ++state.epoch;
    state.step_in_epoch = 0;
    state.epoch_loss_sum = 0;
    state.epoch_loss_count = 0;
    state.epoch_tokens = 0;
    RETURN_IF_ERROR(save_checkpoint());
    --state.epoch;  // the for-loop increments it again
  }
  return result;
}

}  // namespace ulmfit
