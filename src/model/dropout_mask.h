// Dropout masks drawn fast on the CPU. libtorch 1.13's CPU bernoulli_ draws one element at a
// time from its locked Mersenne Twister (about 10 ns an element): the AWD-LSTM's DropConnect
// masks on W_hh (5.3M elements a layer in the full model) made it the largest step cost after
// the matrix products (docs/results.md, "CPU kernels"). Here each element is a hash of its index
// and a seed (SplitMix64, a counter-based generator), so the mask is drawn in parallel, in
// vector registers, and comes out the same whatever the thread count. The seed is one draw from
// libtorch's default CPU generator, so torch::manual_seed still fixes every mask.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace ulmfit {

// A mask of `sizes`: each element 1/(1-p) with probability 1-p, else 0 (so x * mask is dropout
// that keeps the expectation). p <= 0 gives ones, p >= 1 zeros. Float and double CPU tensors use
// the counter-based generator; other devices and dtypes use libtorch's bernoulli_.
torch::Tensor DropoutMask(at::IntArrayRef sizes, double p, const torch::TensorOptions& options);

// torch::dropout(x, p, train) with the mask above: x * mask when training and p > 0, else x.
torch::Tensor Dropout(const torch::Tensor& x, double p, bool train);

// The CPU mask itself, for a given seed: element i of `out` (n of them) from (seed, i) alone.
void FillDropoutMask(float* out, int64_t n, double p, uint64_t seed);
void FillDropoutMask(double* out, int64_t n, double p, uint64_t seed);

}  // namespace ulmfit
