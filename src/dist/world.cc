#include "dist/world.h"

#include <chrono>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "util/device.h"
#include "util/hash.h"
#include "util/progress.h"
#include "util/random.h"

namespace ulmfit {
namespace {

// 2.x moved the collectives of ProcessGroupGloo/NCCL to c10d::Backend; 1.13 has them on
// ProcessGroup itself.
#if TORCH_VERSION_MAJOR >= 2
using CollectiveBackend = c10d::Backend;
#else
using CollectiveBackend = c10d::ProcessGroup;
#endif

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::unique_ptr<World>& CurrentWorldSlot() {
  static std::unique_ptr<World> world;
  return world;
}

}  // namespace

struct World::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<CollectiveBackend> group;

  // Runs one collective or store call; turns a failure into a DistributedError saying which
  // rank saw it and what usually causes it.
  template <typename Fn>
  void Checked(const World& world, const char* what, Fn&& fn) {
    try {
      fn();
    } catch (const c10::Error& e) {
      Fail(world, what, e.what_without_backtrace());
    } catch (const std::exception& e) {
      Fail(world, what, e.what());
    }
  }
  [[noreturn]] static void Fail(const World& world, const char* what, const std::string& why) {
    std::string reason = why;
    if (const size_t newline = reason.find('\n'); newline != std::string::npos) {
      reason.resize(newline);
    }
    throw DistributedError(fmt::format(
        "rank {} of {}: {} failed ({}); another worker stopped or did not answer within "
        "run.distributed_timeout_s ({} s); see the first worker's error above",
        world.rank(), world.size(), what, reason, world.timeout_s()));
  }
};

World::~World() = default;

absl::StatusOr<std::unique_ptr<World>> World::Join(const LaunchEnvironment& env,
                                                   const Options& options) {
  std::unique_ptr<World> world(new World());
  world->impl_ = std::make_unique<Impl>();
  world->rank_ = env.rank;
  world->size_ = env.world_size;
  world->local_rank_ = env.local_rank;
  world->timeout_s_ = options.timeout_s;
  const bool cuda = options.device.is_cuda();
  DistributedBackend backend = options.backend;
  if (backend == DistributedBackend::kAuto) {
    backend = cuda ? DistributedBackend::kNccl : DistributedBackend::kGloo;
  }
  if (backend == DistributedBackend::kNccl && !cuda) {
    return absl::InvalidArgumentError(
        "run.distributed_backend: nccl needs CUDA, but this run trains on the CPU; use gloo "
        "(or auto)");
  }
#ifndef USE_C10D_NCCL
  if (backend == DistributedBackend::kNccl) {
    return absl::InvalidArgumentError(
        "run.distributed_backend: this ulmfit was built against a libtorch without NCCL; use "
        "gloo, or build against a CUDA libtorch");
  }
#endif
  world->backend_name_ = backend == DistributedBackend::kNccl ? "nccl" : "gloo";
  world->device_ = backend == DistributedBackend::kNccl
                       ? torch::Device(torch::kCUDA, static_cast<int16_t>(env.local_rank))
                       : torch::Device(torch::kCPU);

  const auto timeout = Millis(options.timeout_s);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(env.master_port);
    store_options.timeout = timeout;
    if (env.agent_store) {
      // torchrun's agent serves the store; its keys for this attempt live under a prefix.
      auto agent = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
      world->impl_->store = c10::make_intrusive<c10d::PrefixStore>(
          fmt::format("/worker/attempt_{}", env.restart_count), agent);
    } else {
      store_options.isServer = env.rank == 0;
      store_options.numWorkers = static_cast<size_t>(env.world_size);
      store_options.waitWorkers = true;
      store_options.multiTenant = true;
      world->impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    }
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (const size_t newline = why.find('\n'); newline != std::string::npos) why.resize(newline);
    return absl::UnavailableError(fmt::format(
        "rank {}: cannot reach the rendezvous store at {}:{} within {} s ({}); check "
        "MASTER_ADDR and MASTER_PORT and that rank 0 is running",
        env.rank, env.master_addr, env.master_port, options.timeout_s, why));
  }

  auto group_store = c10::make_intrusive<c10d::PrefixStore>("ulmfit/default_pg",
                                                            world->impl_->store);
  try {
    if (backend == DistributedBackend::kGloo) {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
      // GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch; a loopback rendezvous
      // stays on loopback (the host name may not resolve on a laptop or a container).
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
        gloo_options->devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (IsLoopback(env.master_addr)) {
        gloo_options->devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      world->impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
          group_store, env.rank, env.world_size, gloo_options);
    } else {
#ifdef USE_C10D_NCCL
      // NCCL creates its communicators on the current device, so pick ours first.
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      world->impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          group_store, env.rank, env.world_size, nccl_options);
#endif
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(fmt::format("rank {}: cannot start the {} process group: {}",
                                              env.rank, world->backend_name_, e.what()));
  }
  return world;
}

void World::AllReduce(std::vector<torch::Tensor>& tensors, Op op) {
  impl_->Checked(*this, "all-reduce", [&] {
    c10d::AllreduceOptions options;
    options.reduceOp = op == Op::kMax ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    impl_->group->allreduce(tensors, options)->wait();
  });
}

void World::AllReduce(torch::Tensor& tensor, Op op) {
  std::vector<torch::Tensor> tensors{tensor};
  AllReduce(tensors, op);
}

std::vector<double> World::AllReduceValues(const std::vector<double>& values, Op op) {
  torch::Tensor tensor =
      torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64)).to(device_);
  AllReduce(tensor, op);
  tensor = tensor.cpu();
  return std::vector<double>(tensor.data_ptr<double>(), tensor.data_ptr<double>() + values.size());
}

std::function<void()> World::AllReduceAsync(std::vector<torch::Tensor>& tensors) {
  c10::intrusive_ptr<c10d::Work> work;
  impl_->Checked(*this, "all-reduce", [&] { work = impl_->group->allreduce(tensors); });
  return [this, work] { impl_->Checked(*this, "all-reduce", [&] { work->wait(); }); };
}

void World::Broadcast(std::vector<torch::Tensor>& tensors, int root) {
  impl_->Checked(*this, "broadcast", [&] {
    for (auto& tensor : tensors) {
      std::vector<torch::Tensor> one{tensor};
      c10d::BroadcastOptions options;
      options.rootRank = root;
      impl_->group->broadcast(one, options)->wait();
    }
  });
}

torch::Tensor World::AllGather(const torch::Tensor& tensor) {
  std::vector<torch::Tensor> input{tensor.detach().to(device_).contiguous()};
  std::vector<std::vector<torch::Tensor>> output(1);
  for (int r = 0; r < size_; ++r) output[0].push_back(torch::empty_like(input[0]));
  impl_->Checked(*this, "all-gather",
                 [&] { impl_->group->allgather(output, input)->wait(); });
  return torch::stack(output[0]).to(tensor.device());
}

void World::Barrier() {
  impl_->Checked(*this, "barrier", [&] { impl_->group->barrier()->wait(); });
}

absl::Status World::LeaderFirst(const std::string& name,
                                const std::function<absl::Status()>& work) {
  const std::string key = fmt::format("ulmfit/leader_first/{}", leader_first_count_++);
  if (leader()) {
    const absl::Status status = work();
    const std::string value = status.ok() ? "ok" : std::string(status.message());
    impl_->Checked(*this, "store set", [&] {
      impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    });
    return status;
  }
  std::vector<uint8_t> value;
  impl_->Checked(*this, name.c_str(), [&] {
    // As long as the leader needs: it tokenizes whole corpora here. A leader that dies takes
    // the store's server (or its connection) with it, which ends the wait.
    impl_->store->wait({key}, std::chrono::hours(24 * 7));
    value = impl_->store->get(key);
  });
  const std::string text(value.begin(), value.end());
  if (text != "ok") {
    return absl::AbortedError(
        fmt::format("rank {}: rank 0 failed while {}: {}", rank_, name, text));
  }
  return work();
}

World* CurrentWorld() { return CurrentWorldSlot().get(); }

void SetCurrentWorld(std::unique_ptr<World> world) { CurrentWorldSlot() = std::move(world); }

absl::Status LeaderFirst(const std::string& name, const std::function<absl::Status()>& work) {
  World* world = CurrentWorld();
  return world == nullptr ? work() : world->LeaderFirst(name, work);
}

absl::StatusOr<torch::Device> TrainingDevice(const std::string& device) {
  ASSIGN_OR_RETURN(torch::Device resolved, ResolveDevice(device));
  const World* world = CurrentWorld();
  if (world == nullptr || !resolved.is_cuda()) return resolved;
  if (world->local_rank() >= static_cast<int>(torch::cuda::device_count())) {
    return absl::FailedPreconditionError(fmt::format(
        "rank {}: LOCAL_RANK {} but this node has {} GPU(s); start at most one process per GPU",
        world->rank(), world->local_rank(), torch::cuda::device_count()));
  }
  return torch::Device(torch::kCUDA, static_cast<int16_t>(world->local_rank()));
}

absl::Status CheckSameOnAllRanks(const std::string& bytes, const std::string& what) {
  World* world = CurrentWorld();
  if (world == nullptr) return absl::OkStatus();
  // Two 32-bit halves, exact in doubles; equal everywhere iff max == -max(-x).
  const uint64_t hash = Hash64(bytes);
  const double high = static_cast<double>(hash >> 32);
  const double low = static_cast<double>(hash & 0xffffffffULL);
  const std::vector<double> max =
      world->AllReduceValues({high, low, -high, -low}, World::Op::kMax);
  if (max[0] == -max[2] && max[1] == -max[3]) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format(
      "rank {}: the processes of this run do not have the same {}; every node must see rank 0's "
      "run.output_dir and text.cache_dir (a shared file system; docs/distributed.md)",
      world->rank(), what));
}

uint64_t RankSeed(uint64_t seed, int rank) {
  if (rank == 0) return seed;
  return SplitMix64(seed ^ SplitMix64(0x5eed0000ULL + static_cast<uint64_t>(rank)));
}

}  // namespace ulmfit
