// CPU performance setup. Two traps measured on small (2-core) machines:
//  - libgomp threads spin-wait after each parallel region; with 2 intra-op threads libtorch's many
//    small parallel regions (LSTM gate pointwise ops) then cost milliseconds each, as the spinning
//    threads fight OpenBLAS's own threads for the cores. OMP_WAIT_POLICY=PASSIVE avoids it.
//  - OpenBLAS (DYNAMIC_ARCH) may not recognise a new CPU and fall back to an old generic kernel
//    (e.g. "Prescott"), 2-3x slower matrix products. OPENBLAS_CORETYPE=Haswell fixes it.
//  - glibc serves every block over 32 MiB with a fresh mmap and unmaps it on free. The LM's
//    (seq*batch, vocab) logits and their gradients are ~0.5 GB each, so every step page-faulted
//    gigabytes anew: a 23 s step became 2.4 s with big blocks kept in the heap (small model,
//    vocab 30k, bs 64, bptt 70, libtorch 1.13 here).
// The first two variables are read when the libraries load, so they must be in the environment
// before the process starts: EnsureFastCpuEnvironment() sets them and re-executes the program.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ulmfit {

// Call first thing in main(). If OMP_WAIT_POLICY and GOMP_SPINCOUNT are both unset, sets
// OMP_WAIT_POLICY=PASSIVE; if OPENBLAS_CORETYPE is unset, OpenBLAS chose an old/generic core and
// the CPU has AVX2+FMA, sets OPENBLAS_CORETYPE=Haswell. If it set anything, re-executes
// /proc/self/exe with the same argv and ULMFIT_CPU_ENV=1 (never twice; on failure it carries on).
// Never overrides a variable the user set. Also calls ConfigureCpuAllocator().
void EnsureFastCpuEnvironment(int argc, char** argv);

// glibc malloc: no mmap for large blocks (M_MMAP_MAX 0) and no trimming of the heap top
// (M_TRIM_THRESHOLD INT_MAX), so freed tensor memory is reused instead of unmapped and faulted in
// again. The price: the process keeps its peak heap until exit (call malloc_trim(0) to return
// it). Skipped when MALLOC_*_ or GLIBC_TUNABLES=glibc.malloc.* are set. Returns whether applied.
bool ConfigureCpuAllocator();

// What EnsureFastCpuEnvironment decides, as a pure function (tests). `getenv` semantics: a
// variable counts as set when present, even if empty.
struct CpuEnvFacts {
  bool omp_wait_policy_set = false;
  bool gomp_spincount_set = false;
  bool openblas_coretype_set = false;
  std::string blas_core;       // openblas_get_corename(); empty when not OpenBLAS
  bool cpu_has_avx2_fma = false;
};
std::vector<std::pair<std::string, std::string>> CpuEnvironmentFixes(const CpuEnvFacts& facts);

// True for OpenBLAS kernels older than AVX2 (Prescott, Core2, Nehalem, Sandybridge, ...).
bool IsOldBlasCore(std::string_view core_name);

// openblas_get_corename() of the loaded OpenBLAS, or "" when BLAS is not OpenBLAS.
std::string BlasCoreName();

// Physical cores this process may run on (SMT siblings counted once); >= 1.
int PhysicalCoreCount();

// Intra-op threads: `requested` if > 0, else PhysicalCoreCount(). OpenBLAS's own pthread pool is
// set to the same count (libtorch does not do that itself). Measured on a 2-core AMD EPYC with
// PASSIVE waiting: 2 threads train the LSTM faster than 1 (see bench/bench_lm.cc notes).
void ConfigureThreads(int requested);

// One line for logs and benchmarks: torch version, intra-op threads, BLAS core and threads,
// OMP_WAIT_POLICY / GOMP_SPINCOUNT, CUDA availability.
std::string DescribeComputeEnvironment();

}  // namespace ulmfit
