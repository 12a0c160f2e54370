// The processes of a data-parallel job and the collectives they run together, on PyTorch's own
// distributed engine, c10d: Gloo on the CPU, NCCL on CUDA. Rank 0 (or torchrun's agent) serves a
// TCPStore that the others join; the process group is built on it.
//
// A single-process run has no World: CurrentWorld() is null and every caller does the
// single-process thing, so a run without a launcher behaves exactly as before this existed.
// Collectives must be called by every rank in the same order. A peer that dies or a collective
// that waits longer than the timeout throws DistributedError (cli/main.cc prints it as one line).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/enums.h"
#include "dist/launch_env.h"
#include "util/status.h"

namespace ulmfit {

// A failed collective or store operation: what this rank was doing, and what to look at.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class World {
 public:
  struct Options {
    DistributedBackend backend = DistributedBackend::kAuto;
    double timeout_s = 1800;
    // The training device as configured; CUDA ranks use cuda:<local_rank>.
    torch::Device device{torch::kCPU};
  };

  // Joins the job `env` describes (env.world_size > 1): the rendezvous through the TCPStore,
  // then the process group. Errors are one line (unreachable store, NCCL without CUDA, ...).
  static absl::StatusOr<std::unique_ptr<World>> Join(const LaunchEnvironment& env,
                                                     const Options& options);
  ~World();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  bool leader() const { return rank_ == 0; }
  const std::string& backend_name() const { return backend_name_; }
  double timeout_s() const { return timeout_s_; }
  // Where collectives' tensors must live: the CPU for Gloo, this rank's GPU for NCCL.
  const torch::Device& device() const { return device_; }

  enum class Op { kSum, kMax };
  // In place, on every rank; blocks until done. Tensors must be contiguous on device().
  void AllReduce(std::vector<torch::Tensor>& tensors, Op op = Op::kSum);
  void AllReduce(torch::Tensor& tensor, Op op = Op::kSum);
  // Element-wise over the ranks, for a few host values (losses, counts, flags).
  std::vector<double> AllReduceValues(const std::vector<double>& values, Op op = Op::kSum);
  // Starts the all-reduce and returns a function that waits for it (several may run at once).
  std::function<void()> AllReduceAsync(std::vector<torch::Tensor>& tensors);
  // Root's values into every rank's tensors, in place.
  void Broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  // Every rank's `tensor` (same shape on all), stacked in rank order: (size, ...), on the
  // tensor's device.
  torch::Tensor AllGather(const torch::Tensor& tensor);
  void Barrier();

  // The leader runs `work` first; the others wait for it to finish (however long that takes;
  // a leader that dies breaks the wait) and then run `work` themselves. For preparation whose
  // files the followers then read from the leader's caches instead of writing them at the same
  // time. A failure on the leader becomes an error on every rank. `name` says what the work
  // does, for that error: "preparing the pretraining text".
  absl::Status LeaderFirst(const std::string& name, const std::function<absl::Status()>& work);

 private:
  struct Impl;
  World() = default;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  std::string backend_name_;
  double timeout_s_ = 1800;
  torch::Device device_{torch::kCPU};
  int64_t leader_first_count_ = 0;
};

// The job this process belongs to, or null for a single-process run.
World* CurrentWorld();
// Makes `world` current for the rest of the process (null: single process again).
void SetCurrentWorld(std::unique_ptr<World> world);

// True where this process writes the run's files: a single process, or rank 0.
inline bool IsLeaderProcess() {
  const World* world = CurrentWorld();
  return world == nullptr || world->leader();
}
// World::LeaderFirst in the current world; a one-process run just does `work`.
absl::Status LeaderFirst(const std::string& name, const std::function<absl::Status()>& work);

// The device this process trains on: run.device resolved (util/device.h), and on CUDA in a
// data-parallel run the GPU of this rank's LOCAL_RANK.
absl::StatusOr<torch::Device> TrainingDevice(const std::string& device);

// An error on every rank when `bytes` (a tokenizer, say) are not the same on all of them: the
// ranks read what rank 0 prepared, so they differ only when they do not share its files.
absl::Status CheckSameOnAllRanks(const std::string& bytes, const std::string& what);

inline int WorldSize() { return CurrentWorld() == nullptr ? 1 : CurrentWorld()->size(); }
inline int WorldRank() { return CurrentWorld() == nullptr ? 0 : CurrentWorld()->rank(); }

// The seed of rank `rank`'s own random streams (dropout masks): rank 0 keeps `seed`, so a
// one-process run draws what it always drew; the others get independent streams.
uint64_t RankSeed(uint64_t seed, int rank);

}  // namespace ulmfit
