// What the benchmarks share: waiting for the GPU, and peak host and CUDA memory.
#pragma once

#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdio>
#include <string>

#if __has_include(<cuda_runtime_api.h>) && __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define ULMFIT_BENCH_CUDA_STATS 1
#endif

namespace ulmfit::bench {

inline void Sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Peak resident memory of this process so far.
inline double MaxRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux reports KiB
}

#ifdef ULMFIT_BENCH_CUDA_STATS
// A bare "cuda" device has no index: the allocator stats want one.
inline int CudaIndex(const torch::Device& device) {
  return device.has_index() ? device.index() : 0;
}
#endif

inline void ResetCudaPeak(const torch::Device& device) {
#ifdef ULMFIT_BENCH_CUDA_STATS
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(CudaIndex(device));
#endif
  (void)device;
}

// Peak CUDA memory allocated since the last reset, in MB; "-" on the CPU.
inline std::string CudaPeakMb(const torch::Device& device) {
#ifdef ULMFIT_BENCH_CUDA_STATS
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(CudaIndex(device));
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", stats.allocated_bytes[0].peak / 1048576.0);  // AGGREGATE
    return buf;
  }
#endif
  (void)device;
  return "-";
}

}  // namespace ulmfit::bench
