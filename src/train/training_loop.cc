#include "train/training_loop.h"

#include <cmath>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "model/cpu_bf16.h"
#include "train/fused_adamw.h"
#include "util/progress.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

// Length of the file at `path`, 0 when it does not exist.
int64_t FileSizeOrZero(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

}  // namespace

std::unique_ptr<torch::optim::AdamW> MakeGroupedAdamW(
    const std::vector<std::vector<torch::Tensor>>& layer_groups, const OptimizerConfig& config,
    double lr) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const auto& params : layer_groups) {
    auto options = std::make_unique<torch::optim::AdamWOptions>(lr);
    options->betas({config.beta1, config.beta2}).eps(config.eps).weight_decay(config.weight_decay);
    groups.emplace_back(params, std::move(options));
  }
  // One pass per parameter on the CPU; libtorch's own step elsewhere (train/fused_adamw.h).
  return std::make_unique<FusedAdamW>(std::move(groups), torch::optim::AdamWOptions(lr));
}

std::vector<double> DiscriminativeMultipliers(int num_groups, double factor) {
  std::vector<double> multipliers(num_groups);
  for (int g = 0; g < num_groups; ++g) multipliers[g] = std::pow(factor, -(num_groups - 1 - g));
  return multipliers;
}

void SetGroupRates(torch::optim::Optimizer& optimizer, double lr,
                   const std::vector<double>& multipliers, double scale, double beta1,
                   double beta2) {
  for (size_t g = 0; g < multipliers.size(); ++g) {
    static_cast<torch::optim::AdamWOptions&>(optimizer.param_groups()[g].options())
        .lr(lr * multipliers[g] * scale)
        .betas({beta1, beta2});
  }
}

void ClearGradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
  }
}

void BackwardAndStep(const torch::Tensor& loss, torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, double clip, GradientSync* sync) {
  loss.backward();
  // Clipping after the reduce, so it sees the job's gradient, the same on every rank.
  if (sync != nullptr) sync->AverageGradients();
  if (clip > 0) torch::nn::utils::clip_grad_norm_(model.parameters(), clip);
  optimizer.step();
}

bool ResolveCpuBf16(bool asked, const torch::Device& device, const std::string& stage,
                    const std::string& what) {
  std::string not_used;
  const bool use = UseCpuBf16(asked, device, &not_used);
  if (!not_used.empty()) {
    LogInfo(fmt::format("{}: {}; training in float32", stage, not_used));
  } else if (use) {
    LogInfo(fmt::format("{}: run.cpu_bf16: {} in bfloat16, the rest in float32", stage, what));
  }
  return use;
}

absl::Status NonFiniteLossError(const std::string& stage, double loss, const std::string& where,
                                const std::string& checkpoint_dir, bool checkpoint_exists,
                                const std::string& advice) {
  return absl::InternalError(fmt::format(
      "{}: the loss became {} at {}; stopped without saving. {}, then run again{}", stage, loss,
      where, advice,
      checkpoint_exists
          ? fmt::format(" with --resume (the last good checkpoint in {} is intact)",
                        checkpoint_dir)
          : " (no checkpoint was saved before this step, so the stage starts over)"));
}

StepDecision DecideAfterStep(World* world, int stop_signal, bool save_due) {
  if (world == nullptr) return {stop_signal, save_due};
  const std::vector<double> agreed =
      world->AllReduceValues({static_cast<double>(stop_signal), save_due ? 1.0 : 0.0},
                             World::Op::kMax);
  return {static_cast<int>(agreed[0]), agreed[1] > 0};
}

StageCheckpoints::StageCheckpoints(std::string stage, std::string dir, std::string metrics_path,
                                   double checkpoint_minutes, World* world)
    : stage_(std::move(stage)), dir_(std::move(dir)), metrics_path_(std::move(metrics_path)),
      checkpoint_minutes_(checkpoint_minutes), world_(world),
      start_(std::chrono::steady_clock::now()),
      last_save_(start_) {}

absl::StatusOr<TrainingState> StageCheckpoints::Start(bool resume, bool refuse_unfinished,
                                                      torch::nn::Module& model,
                                                      torch::optim::Optimizer& optimizer,
                                                      std::vector<torch::Tensor>* lstm_state) {
  TrainingState state;
  state.stage = stage_;
  if (!resume || !exists()) {
    if (!resume && refuse_unfinished && exists()) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: an unfinished {} run is here; continue it with --resume, or choose another "
          "run.output_dir", dir_, stage_));
    }
    return state;
  }
  std::vector<torch::Tensor> unused;
  const int rank = world_ != nullptr ? world_->rank() : 0;
  const int size = world_ != nullptr ? world_->size() : 1;
  std::vector<torch::Tensor>* lstm = lstm_state != nullptr ? lstm_state : &unused;
  ASSIGN_OR_RETURN(state, LoadCheckpoint(dir_, model, optimizer, lstm, rank, size));
  // The checkpoint holds the whole job's rows; this rank continues with its own block.
  for (auto& t : *lstm) {
    const int64_t rows = t.size(1) / size;
    t = t.narrow(1, rank * rows, rows).contiguous();
  }
  if (state.stage != stage_) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: checkpoint belongs to stage '{}', not '{}'", dir_, state.stage, stage_));
  }
  // Lines logged after the checkpoint will be logged again by the replayed steps.
  const bool leader = world_ == nullptr || world_->leader();
  if (leader && FileSizeOrZero(metrics_path_) > state.metrics_bytes) {
    fs::resize_file(metrics_path_, static_cast<uintmax_t>(state.metrics_bytes));
  }
  elapsed_before_ = state.elapsed_seconds;
  resumed_ = true;
  return state;
}

absl::Status StageCheckpoints::Save(TrainingState* state, const torch::nn::Module& model,
                                    const torch::optim::Optimizer& optimizer,
                                    const std::vector<torch::Tensor>& lstm_state) {
  state->elapsed_seconds = ElapsedSeconds();
  state->metrics_bytes = FileSizeOrZero(metrics_path_);
  last_save_ = std::chrono::steady_clock::now();
  if (world_ == nullptr) return SaveCheckpoint(dir_, model, optimizer, lstm_state, *state);

  // Every rank takes part in the gathers; rank 0 alone writes.
  RankGenerators ranks;
  auto gather = [&](const torch::Tensor& t) { return world_->AllGather(t).unbind(0); };
  ranks.cpu = gather(at::globalContext().defaultGenerator(torch::kCPU).get_state());
  const auto params = model.parameters();
  if (!params.empty() && params.front().is_cuda()) {
    torch::Generator generator = at::globalContext().defaultGenerator(params.front().device());
    torch::Tensor own;
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      own = generator.get_state();
    }
    ranks.cuda = gather(own);
  }
  std::vector<torch::Tensor> job_lstm;
  for (const auto& t : lstm_state) job_lstm.push_back(torch::cat(gather(t), /*dim=*/1));
  if (!world_->leader()) return absl::OkStatus();
  return SaveCheckpoint(dir_, model, optimizer, job_lstm, *state, &ranks);
}

bool StageCheckpoints::PeriodicSaveDue() const {
  return checkpoint_minutes_ > 0 && SecondsSince(last_save_) >= checkpoint_minutes_ * 60.0;
}

double StageCheckpoints::ElapsedSeconds() const { return elapsed_before_ + SecondsSince(start_); }

}  // namespace ulmfit
