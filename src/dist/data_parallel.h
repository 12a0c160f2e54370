// Data-parallel training on a World (dist/world.h), as PyTorch's DistributedDataParallel does it
// (there is no DDP in libtorch's C++ API): the same initial weights on every rank, each rank's
// gradients summed over the ranks in flattened buckets and averaged once the sums are complete,
// then clipping and the optimizer step on every rank alike, so the weights stay identical.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "dist/world.h"

namespace ulmfit {

// The module's parameters, each once: the LM's tied embedding/decoder weight is one tensor
// registered twice, and reducing it twice would double its gradient.
std::vector<torch::Tensor> UniqueParameters(const torch::nn::Module& module);

// Rank 0's parameters and buffers (BatchNorm statistics) into every rank's module, in place.
void BroadcastModule(World& world, torch::nn::Module& module);

class GradientSync {
 public:
  // DDP's default bucket cap (reducer.hpp kDefaultBucketBytesCap): few enough collectives that
  // their latency does not add up, big enough to keep the link busy.
  static constexpr int64_t kBucketBytes = 25 << 20;

  GradientSync(World& world, const torch::nn::Module& module,
               int64_t bucket_bytes = kBucketBytes);

  // After backward, before clipping: every trainable parameter's gradient becomes the mean over
  // the ranks (a parameter without a gradient on this rank counts as zeros). The parameters that
  // train must be the same on every rank (they are: freezing follows the shared schedule).
  // libtorch 1.13's C++ API has no hook that fires once a parameter's gradient is complete, so
  // the buckets start after backward rather than during it; they then run concurrently.
  void AverageGradients();

  // Seconds spent in AverageGradients so far (for logs and bench/).
  double seconds() const { return seconds_; }

 private:
  World& world_;
  std::vector<torch::Tensor> params_;
  int64_t bucket_bytes_;
  double seconds_ = 0;
};

// The sum of `x` over the ranks, differentiable: its gradient is the sum of the ranks' output
// gradients, so each rank's backward carries every rank's loss through its own input. Used by
// the classifier head's synchronised BatchNorm.
torch::Tensor CrossRankSum(World& world, const torch::Tensor& x);

}  // namespace ulmfit
