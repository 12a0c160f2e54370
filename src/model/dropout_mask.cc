#include "model/dropout_mask.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>
#include <mutex>
#include <vector>

// Built for AVX-512 (whose 64-bit multiply makes the hash one instruction a step), AVX2 and
// baseline x86-64, the widest the CPU runs picked at load (as model/cpu_kernels.cc).
#if defined(__x86_64__) && (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__))
#define ULMFIT_MASK_KERNEL \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ULMFIT_MASK_KERNEL
#endif

namespace ulmfit {
namespace {

// Elements per parallel task: libtorch's grain for pointwise ops.
constexpr int64_t kGrain = 32768;

// Keep element i when the top 32 bits of SplitMix64's output number i + 1 (state
// seed + (i + 1) * golden gamma, then its finaliser) fall below keep_below = (1-p) * 2^32.
template <typename T>
inline __attribute__((always_inline)) void MaskRange(T* out, int64_t begin, int64_t end,
                                                     uint64_t seed, uint64_t keep_below,
                                                     T scale) {
  for (int64_t i = begin; i < end; ++i) {
    uint64_t z = seed + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    out[i] = (z >> 32) < keep_below ? scale : T(0);
  }
}

ULMFIT_MASK_KERNEL void MaskRangeFloat(float* out, int64_t begin, int64_t end, uint64_t seed,
                                       uint64_t keep_below, float scale) {
  MaskRange(out, begin, end, seed, keep_below, scale);
}

ULMFIT_MASK_KERNEL void MaskRangeDouble(double* out, int64_t begin, int64_t end, uint64_t seed,
                                        uint64_t keep_below, double scale) {
  MaskRange(out, begin, end, seed, keep_below, scale);
}

uint64_t KeepBelow(double p) {
  const double keep = std::ldexp(1.0 - p, 32);
  return keep <= 0 ? 0 : keep >= std::ldexp(1.0, 32) ? (1ull << 32) : std::llround(keep);
}

template <typename T, typename Range>
void Fill(T* out, int64_t n, double p, uint64_t seed, Range range) {
  if (p <= 0 || p >= 1) {
    const T value = p <= 0 ? T(1) : T(0);
    std::fill(out, out + n, value);
    return;
  }
  const uint64_t keep_below = KeepBelow(p);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    range(out, begin, end, seed, keep_below, scale);
  });
}

uint64_t SeedFromDefaultGenerator() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
}

}  // namespace

void FillDropoutMask(float* out, int64_t n, double p, uint64_t seed) {
  Fill(out, n, p, seed, MaskRangeFloat);
}

void FillDropoutMask(double* out, int64_t n, double p, uint64_t seed) {
  Fill(out, n, p, seed, MaskRangeDouble);
}

torch::Tensor DropoutMask(at::IntArrayRef sizes, double p, const torch::TensorOptions& options) {
  const auto dtype = options.dtype().toScalarType();
  if (!options.device().is_cpu() || (dtype != torch::kFloat && dtype != torch::kDouble)) {
    if (p <= 0) return torch::ones(sizes, options);
    if (p >= 1) return torch::zeros(sizes, options);
    return torch::empty(sizes, options).bernoulli_(1 - p).div_(1 - p);
  }
  RECORD_FUNCTION("ulmfit::dropout_mask", std::vector<c10::IValue>());
  torch::Tensor mask = torch::empty(sizes, options);
  const uint64_t seed = p > 0 && p < 1 ? SeedFromDefaultGenerator() : 0;
  if (dtype == torch::kFloat) {
    FillDropoutMask(mask.data_ptr<float>(), mask.numel(), p, seed);
  } else {
    FillDropoutMask(mask.data_ptr<double>(), mask.numel(), p, seed);
  }
  return mask;
}

torch::Tensor Dropout(const torch::Tensor& x, double p, bool train) {
  if (!train || p <= 0) return x;
  return x * DropoutMask(x.sizes(), p, x.options());
}

}  // namespace ulmfit
