#include "train/checkpoint.h"

#include <dirent.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "model/weights.h"
#include "util/files.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

std::string OldDir(const std::string& dir) { return dir + ".old"; }
std::string TmpDir(const std::string& dir) { return dir + ".tmp"; }

// Returns the directory holding a complete checkpoint: `dir`, or `dir.old` when a crash hit
// between the two renames of a swap.
std::string CompleteCheckpointDir(const std::string& dir) {
  if (fs::exists(fs::path(dir) / "state.json")) return dir;
  if (fs::exists(fs::path(OldDir(dir)) / "state.json")) return OldDir(dir);
  return "";
}

// The device the model trains on: a CUDA model draws its dropout masks from that device's
// generator, which must be saved too for a resumed run to draw the same masks.
torch::Device ModelDevice(const torch::nn::Module& model) {
  const auto params = model.parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

torch::Generator DefaultGenerator(torch::Device device) {
  return at::globalContext().defaultGenerator(device);
}

}  // namespace

bool CheckpointExists(const std::string& dir) { return !CompleteCheckpointDir(dir).empty(); }

absl::Status SaveCheckpoint(const std::string& dir, const torch::nn::Module& model,
                            const torch::optim::Optimizer& optimizer,
                            const std::vector<torch::Tensor>& lstm_state,
                            const TrainingState& state, const RankGenerators* ranks) {
  const std::string tmp = TmpDir(dir);
  std::error_code ec;
  RemoveTree(tmp);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(fmt::format("{}: cannot create: {}", tmp, ec.message()));
  // A write that fails (a full disk) takes its half-written directory with it.
  struct RemoveOnFailure {
    const std::string& path;
    bool done = false;
    ~RemoveOnFailure() {
      if (!done) RemoveTree(path);
    }
  } cleanup{tmp};

  RETURN_IF_ERROR(SaveModuleWeights(model, (fs::path(tmp) / "model.pt").string()));
  try {
    torch::serialize::OutputArchive opt_archive;
    optimizer.save(opt_archive);
    RETURN_IF_ERROR(SaveArchive(opt_archive, (fs::path(tmp) / "optimizer.pt").string()));

    torch::serialize::OutputArchive rng_archive;
    rng_archive.write("cpu_rng", DefaultGenerator(torch::kCPU).get_state());
    if (const torch::Device device = ModelDevice(model); device.is_cuda()) {
      torch::Generator generator = DefaultGenerator(device);
      std::lock_guard<std::mutex> lock(generator.mutex());
      rng_archive.write("cuda_rng", generator.get_state());
    }
    for (size_t i = 0; i < lstm_state.size(); ++i) {
      rng_archive.write(fmt::format("lstm_state.{}", i), lstm_state[i].detach().cpu());
    }
    if (ranks != nullptr) {
      for (size_t r = 1; r < ranks->cpu.size(); ++r) {
        rng_archive.write(fmt::format("cpu_rng.rank{}", r), ranks->cpu[r]);
      }
      for (size_t r = 1; r < ranks->cuda.size(); ++r) {
        rng_archive.write(fmt::format("cuda_rng.rank{}", r), ranks->cuda[r]);
      }
    }
    RETURN_IF_ERROR(SaveArchive(rng_archive, (fs::path(tmp) / "state.pt").string()));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        fmt::format("{}: cannot save checkpoint: {}", tmp, e.what_without_backtrace()));
  }
  const std::string json = fmt::format(
      "{{\"format_version\": {}, \"stage\": \"{}\", \"epoch\": {}, \"step_in_epoch\": {}, "
      "\"global_step\": {}, \"elapsed_seconds\": {:.3f}, \"metrics_bytes\": {}, "
      "\"best_valid_loss\": {:.17g}, \"epoch_loss_sum\": {:.17g}, \"epoch_loss_count\": {}, "
      "\"epoch_tokens\": {}, \"lstm_state_tensors\": {}, \"best_epoch\": {}, "
      "\"best_score\": {:.17g}, \"world_size\": {}}}\n",
      kCheckpointFormatVersion, state.stage, state.epoch, state.step_in_epoch, state.global_step,
      state.elapsed_seconds, state.metrics_bytes, state.best_valid_loss, state.epoch_loss_sum,
      state.epoch_loss_count, state.epoch_tokens, lstm_state.size(), state.best_epoch,
      state.best_score, ranks != nullptr ? ranks->cpu.size() : 1);
  // state.json last: its presence marks the directory complete.
  RETURN_IF_ERROR(WriteFileAtomic((fs::path(tmp) / "state.json").string(), json));
  cleanup.done = true;

  // Swap: dir -> dir.old, tmp -> dir, drop dir.old. A crash in between leaves dir.old complete.
  RemoveTree(OldDir(dir));
  if (fs::exists(dir)) fs::rename(dir, OldDir(dir), ec);
  if (ec) return absl::InternalError(fmt::format("{}: {}", dir, ec.message()));
  fs::rename(tmp, dir, ec);
  if (ec) return absl::InternalError(fmt::format("{}: {}", dir, ec.message()));
  RemoveTree(OldDir(dir));
  return absl::OkStatus();
}

absl::StatusOr<TrainingState> LoadCheckpoint(const std::string& dir, torch::nn::Module& model,
                                             torch::optim::Optimizer& optimizer,
                                             std::vector<torch::Tensor>* lstm_state,
                                             int rank, int world_size) {
  const std::string from = CompleteCheckpointDir(dir);
  if (from.empty()) return absl::NotFoundError(fmt::format("{}: no checkpoint found", dir));
  const std::string state_path = (fs::path(from) / "state.json").string();
  TrainingState state;
  int64_t num_lstm = 0;
  try {
    const YAML::Node node = YAML::LoadFile(state_path);
    const int version = node["format_version"].as<int>();
    if (version != kCheckpointFormatVersion) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: checkpoint format {} is not supported by this ulmfit (expects {})", state_path,
          version, kCheckpointFormatVersion));
    }
    state.stage = node["stage"].as<std::string>();
    state.epoch = node["epoch"].as<int64_t>();
    state.step_in_epoch = node["step_in_epoch"].as<int64_t>();
    state.global_step = node["global_step"].as<int64_t>();
    state.elapsed_seconds = node["elapsed_seconds"].as<double>();
    state.metrics_bytes = node["metrics_bytes"].as<int64_t>();
    state.best_valid_loss = node["best_valid_loss"].as<double>();
    state.epoch_loss_sum = node["epoch_loss_sum"].as<double>();
    state.epoch_loss_count = node["epoch_loss_count"].as<int64_t>();
    state.epoch_tokens = node["epoch_tokens"].as<int64_t>();
    num_lstm = node["lstm_state_tensors"].as<int64_t>();
    // Absent from checkpoints written before they were added.
    if (node["best_epoch"]) state.best_epoch = node["best_epoch"].as<int64_t>();
    if (node["best_score"]) state.best_score = node["best_score"].as<double>();
    const int written_by = node["world_size"] ? node["world_size"].as<int>() : 1;
    if (written_by != world_size) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: this checkpoint was written by a run of {} process{}, this run has {}; resume "
          "with {} (--nproc {} or WORLD_SIZE={}), or delete {} to start the stage again",
          from, written_by, written_by == 1 ? "" : "es", world_size, written_by, written_by,
          written_by, from));
    }
  } catch (const YAML::Exception& e) {
    return absl::DataLossError(fmt::format(
        "{}: corrupt checkpoint state ({}); delete {} to start the stage again", state_path,
        FirstLineOf(e), from));
  }
  RETURN_IF_ERROR(LoadModuleWeights(model, (fs::path(from) / "model.pt").string()));
  torch::serialize::InputArchive opt_archive, state_archive;
  RETURN_IF_ERROR(
      OpenArchive((fs::path(from) / "optimizer.pt").string(), "checkpoint file", &opt_archive));
  RETURN_IF_ERROR(
      OpenArchive((fs::path(from) / "state.pt").string(), "checkpoint file", &state_archive));
  try {
    optimizer.load(opt_archive);
    const std::string suffix = rank == 0 ? "" : fmt::format(".rank{}", rank);
    torch::Tensor rng;
    state_archive.read("cpu_rng" + suffix, rng);
    DefaultGenerator(torch::kCPU).set_state(rng);
    // Written by a CUDA run only (and by none before it was added): a run resumed on another
    // kind of device goes on with that device's generator as seeded.
    torch::Tensor cuda_rng;
    if (const torch::Device device = ModelDevice(model);
        device.is_cuda() && state_archive.try_read("cuda_rng" + suffix, cuda_rng)) {
      torch::Generator generator = DefaultGenerator(device);
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(cuda_rng);
    }
    lstm_state->clear();
    for (int64_t i = 0; i < num_lstm; ++i) {
      torch::Tensor t;
      state_archive.read(fmt::format("lstm_state.{}", i), t);
      lstm_state->push_back(t);
    }
  } catch (const std::exception& e) {  // c10::Error, and std::out_of_range from c10::Dict
    return absl::DataLossError(fmt::format(
        "{}: corrupt or mismatched checkpoint ({}); delete it to start the stage again", from,
        FirstLineOf(e)));
  }
  return state;
}

}  // namespace ulmfit
