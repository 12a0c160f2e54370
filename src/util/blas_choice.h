// Choosing OpenBLAS's kernel set by measurement, once per CPU model.
//
// OpenBLAS (DYNAMIC_ARCH) picks its kernels by the CPU's name, and the name can mislead: issue
// 20 measured its own choice on a 2-core AMD EPYC (Zen 5, AVX-512 with bf16), Cooperlake,
// training the small LM 1.54x slower than SkylakeX's kernels, where another machine of that
// family found the two level (docs/results.md); elsewhere it does not recognise the CPU at all.
// OPENBLAS_CORETYPE is read when the library loads, so each candidate is timed in a child
// process (this same program, re-executed with ULMFIT_BLAS_PROBE set) on the matrix products
// of a training step; the fastest is cached per CPU model and OpenBLAS build in the user's cache
// directory, so later runs only read one line. Every candidate computes the same fp32 products
// (only the summation order differs), and none is tried that the CPU lacks instructions for.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ulmfit {

// The vector extensions that decide which kernel sets can run here.
struct CpuIsa {
  bool avx2_fma = false;
  bool avx512 = false;       // F, CD, BW, DQ and VL: what OpenBLAS's SkylakeX kernels use
  bool avx512_bf16 = false;  // Cooperlake's
  bool amx = false;          // AMX tiles with bf16: SapphireRapids's
};

// This CPU's extensions, from /proc/cpuinfo's flags.
CpuIsa CurrentCpuIsa();
CpuIsa ParseCpuFlags(std::string_view flags_line);

// The OpenBLAS kernel sets worth timing on a CPU with `isa`, oldest first; empty without
// AVX2+FMA (then OpenBLAS's own choice stands).
std::vector<std::string> BlasCoreCandidates(const CpuIsa& isa);

struct BlasProbe {
  std::string core;      // the kernel set the child actually loaded
  double seconds = 0;    // the best time of the product list
};

// The fastest probe's core; `detected` (OpenBLAS's own choice) is kept unless another is more
// than `margin` faster, so noise alone never switches kernels. "" when there are no probes.
std::string PickFastestCore(const std::vector<BlasProbe>& probes, std::string_view detected,
                            double margin = 0.03);

// Case-insensitive: OpenBLAS reports "Haswell" for OPENBLAS_CORETYPE=HASWELL.
bool SameBlasCore(std::string_view a, std::string_view b);

// The cache: one tab-separated line per key (the CPU model and the OpenBLAS build):
// key, core, then a readable note of the timings. Lines that do not parse are ignored.
std::optional<std::string> FindCachedCore(const std::string& cache_text, const std::string& key);
std::string WithCachedCore(const std::string& cache_text, const std::string& key,
                           const std::string& core, const std::string& note);

// The cached core for `key` if it is one of `candidates` (spelled as there): a cache copied
// from another machine never selects kernels this CPU cannot run. "" otherwise.
std::string UsableCachedCore(const std::string& cache_text, const std::string& key,
                             const std::vector<std::string>& candidates);

// What identifies a kernel choice: the CPU's model name, family, model and stepping, and the
// OpenBLAS build (openblas_get_config()).
std::string BlasCacheKey();

// The file the choice is cached in: openblas_core.tsv in UserCacheDir() (util/files.h).
std::string BlasCacheFile();

// The kernel set to use where the user has not set OPENBLAS_CORETYPE: from the cache, else by
// timing each candidate in a child process and caching the winner (under a file lock, so
// concurrent first runs measure once). `how` gets one line for the logs (e.g. "measured:
// SkylakeX 1.00, Cooperlake 0.65, Haswell 0.80") . "" when nothing could be measured (no
// OpenBLAS, a single candidate, the probes failed): the caller keeps its fallback.
std::string ChooseBlasCore(const std::string& detected, std::string* how);

// Call first in main() (EnsureFastCpuEnvironment does): in a probe child, times the products,
// prints "core seconds" on stdout and exits; otherwise returns at once.
void RunBlasProbeIfAsked();

// The seconds one pass over a training step's matrix products takes (the best of a few), with
// the BLAS and thread settings of this process.
double TimeStepProducts();

}  // namespace ulmfit
