// CPU performance setup. Three traps measured on small (2-core) machines:
//  - libgomp threads spin-wait after each parallel region; with 2 intra-op threads libtorch's many
//    small parallel regions (LSTM gate pointwise ops) then cost milliseconds each, as the spinning
//    threads fight OpenBLAS's own threads for the cores. OMP_WAIT_POLICY=PASSIVE avoids it.
//  - OpenBLAS (DYNAMIC_ARCH) may not recognise a new CPU and fall back to an old generic kernel
//    (e.g. "Prescott"), 2-3x slower matrix products, or choose by name a kernel set that is
//    slower on it than another it supports. OPENBLAS_CORETYPE, chosen by measurement, fixes it.
//  - glibc serves every block over 32 MiB with a fresh mmap and unmaps it on free. The LM's
//    (seq*batch, vocab) logits and their gradients are ~0.5 GB each, so every step faulted in
//    gigabytes of 4 KiB pages anew: ~610k page faults and 12-13 CPU-seconds per step of the small
//    bench model (vocab 30k, bs 64, bptt 70). With GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (glibc
//    >= 2.35) those mappings use transparent huge pages: ~4k faults and ~3 CPU-seconds per step,
//    memory still returned on free. Without THP the fallback keeps big blocks in the heap
//    (ConfigureCpuAllocator): ~70k faults, ~4 CPU-seconds, but the heap never shrinks.
// These variables are read when the libraries load, so they must be in the environment before
// the process starts: EnsureFastCpuEnvironment() sets them and re-executes the program.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ulmfit {

// Call first thing in main(). Sets, each only where the user left it unset:
//   OMP_WAIT_POLICY=PASSIVE      when OMP_WAIT_POLICY and GOMP_SPINCOUNT are unset;
//   OPENBLAS_CORETYPE=<fastest>  the kernel set that measured fastest on this CPU model
//                                (util/blas_choice.h), where it differs from OpenBLAS's own
//                                choice; without a measurement, Haswell when OpenBLAS chose an
//                                old/generic core on an AVX2+FMA CPU;
//   GLIBC_TUNABLES=glibc.malloc.hugetlb=1
//                                when GLIBC_TUNABLES and MALLOC_*_ are unset, glibc >= 2.35 and
//                                transparent huge pages are "always" or "madvise".
// A probe child of ChooseBlasCore (ULMFIT_BLAS_PROBE set) times its products and exits here.
// If it set anything it re-executes /proc/self/exe with the same argv and ULMFIT_CPU_ENV=1 (never
// twice; if execv fails it undoes the variables and carries on). Then, when malloc was left
// alone (no THP route), it calls ConfigureCpuAllocator().
void EnsureFastCpuEnvironment(int argc, char** argv);

// Fallback for big tensors without THP: glibc malloc serves large blocks from the heap
// (M_MMAP_MAX 0) and never trims it (M_TRIM_THRESHOLD -1), so freed tensor memory is reused
// instead of unmapped and faulted in again. The price: the process keeps its peak heap (which
// fragmentation can push above the live peak) until exit. Skipped when MALLOC_*_ or any
// GLIBC_TUNABLES are set. Returns whether applied.
bool ConfigureCpuAllocator();

// What EnsureFastCpuEnvironment decides, as a pure function (tests). `getenv` semantics: a
// variable counts as set when present, even if empty.
struct CpuEnvFacts {
  bool omp_wait_policy_set = false;
  bool gomp_spincount_set = false;
  bool openblas_coretype_set = false;
  std::string blas_core;       // openblas_get_corename(); empty when not OpenBLAS
  std::string measured_core;   // ChooseBlasCore(): the fastest kernel set; empty if unmeasured
  bool cpu_has_avx2_fma = false;
  bool malloc_set_by_user = false;  // GLIBC_TUNABLES or any MALLOC_*_ variable present
  bool glibc_has_hugetlb = false;   // glibc >= 2.35 knows glibc.malloc.hugetlb
  bool thp_available = false;       // /sys/kernel/mm/transparent_hugepage/enabled: always|madvise
};
// The facts of this process and machine.
CpuEnvFacts CurrentCpuEnvFacts();
std::vector<std::pair<std::string, std::string>> CpuEnvironmentFixes(const CpuEnvFacts& facts);

// True for OpenBLAS kernels older than AVX2 (Prescott, Core2, Nehalem, Sandybridge, ...).
bool IsOldBlasCore(std::string_view core_name);

// openblas_get_corename() of the loaded OpenBLAS, or "" when BLAS is not OpenBLAS.
std::string BlasCoreName();

// Physical cores this process may run on (SMT siblings counted once); >= 1.
int PhysicalCoreCount();

// Intra-op threads: `requested` if > 0, else PhysicalCoreCount(). OpenBLAS's own pthread pool is
// set to the same count (libtorch does not do that itself) unless OPENBLAS_NUM_THREADS is set.
// On the 2-core dev machine, otherwise idle, 2 threads trained the full LM 1.9x faster than 1;
// when other processes keep a core busy, 1 and 2 are about even.
void ConfigureThreads(int requested);

// One line for logs and benchmarks: torch version, intra-op threads, BLAS core and threads,
// OMP_WAIT_POLICY / GOMP_SPINCOUNT, malloc mode, CUDA availability.
std::string DescribeComputeEnvironment();

}  // namespace ulmfit
