#include "util/cpu_env.h"

#include "util/blas_choice.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>

namespace ulmfit {
namespace {

constexpr char kGuardVar[] = "ULMFIT_CPU_ENV";
constexpr char kBlasChoiceVar[] = "ULMFIT_BLAS_CHOICE";  // how the kernel set was chosen

bool allocator_tuned = false;  // ConfigureCpuAllocator() applied its settings

bool IsSet(const char* name) { return std::getenv(name) != nullptr; }

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

bool CpuHasAvx2Fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// OpenBLAS entry points, looked up at run time: BLAS may be another library (or none visible).
template <typename Fn>
Fn LookupBlas(const char* symbol) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, symbol));
}

int BlasThreads() {
  auto fn = LookupBlas<int (*)()>("openblas_get_num_threads");
  return fn ? fn() : 0;
}

constexpr char kHugeTlbTunable[] = "glibc.malloc.hugetlb=1";
constexpr const char* kMallocVars[] = {"GLIBC_TUNABLES", "MALLOC_MMAP_MAX_",
                                       "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                       "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX"};

bool MallocSetByUser() {
  for (const char* var : kMallocVars) {
    if (IsSet(var)) return true;
  }
  return false;
}

bool GlibcHasHugeTlbTunable() {
  int major = 0, minor = 0;
  if (std::sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2) return false;
  return major > 2 || (major == 2 && minor >= 35);
}

bool ThpAvailable() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(in, line);
  return line.find("[always]") != std::string::npos ||
         line.find("[madvise]") != std::string::npos;
}

int ReadInt(const std::string& path) {
  std::ifstream in(path);
  int v = -1;
  if (!(in >> v)) return -1;
  return v;
}

}  // namespace

bool IsOldBlasCore(std::string_view core_name) {
  // OpenBLAS DYNAMIC_ARCH kernel names (driver/others/dynamic.c) without AVX2+FMA kernels;
  // "Prescott" is its fallback for CPUs it does not recognise.
  static const char* const kOld[] = {
      "unknown",  "generic",  "katmai",    "coppermine",   "northwood", "prescott",
      "banias",   "atom",     "core2",     "penryn",       "dunnington", "nehalem",
      "athlon",   "opteron",  "opteron_sse3", "barcelona", "nano",      "bobcat",
      "sandybridge", "bulldozer", "piledriver", "steamroller"};
  std::string lower(core_name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* name : kOld) {
    if (lower == name) return true;
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> CpuEnvironmentFixes(const CpuEnvFacts& facts) {
  std::vector<std::pair<std::string, std::string>> fixes;
  if (!facts.omp_wait_policy_set && !facts.gomp_spincount_set) {
    fixes.emplace_back("OMP_WAIT_POLICY", "PASSIVE");
  }
  if (!facts.openblas_coretype_set && !facts.blas_core.empty()) {
    if (!facts.measured_core.empty()) {
      if (!SameBlasCore(facts.measured_core, facts.blas_core)) {
        fixes.emplace_back("OPENBLAS_CORETYPE", facts.measured_core);
      }
    } else if (facts.cpu_has_avx2_fma && IsOldBlasCore(facts.blas_core)) {
      fixes.emplace_back("OPENBLAS_CORETYPE", "Haswell");
    }
  }
  if (!facts.malloc_set_by_user && facts.glibc_has_hugetlb && facts.thp_available) {
    fixes.emplace_back("GLIBC_TUNABLES", kHugeTlbTunable);
  }
  return fixes;
}

CpuEnvFacts CurrentCpuEnvFacts() {
  CpuEnvFacts facts;
  facts.omp_wait_policy_set = IsSet("OMP_WAIT_POLICY");
  facts.gomp_spincount_set = IsSet("GOMP_SPINCOUNT");
  facts.openblas_coretype_set = IsSet("OPENBLAS_CORETYPE");
  facts.blas_core = BlasCoreName();
  facts.cpu_has_avx2_fma = CpuHasAvx2Fma();
  facts.malloc_set_by_user = MallocSetByUser();
  facts.glibc_has_hugetlb = GlibcHasHugeTlbTunable();
  facts.thp_available = ThpAvailable();
  return facts;
}

std::string BlasCoreName() {
  auto fn = LookupBlas<char* (*)()>("openblas_get_corename");
  if (fn == nullptr) return "";
  const char* name = fn();
  return name ? name : "";
}

bool ConfigureCpuAllocator() {
  if (MallocSetByUser()) return false;  // the user, a launcher, or our own re-exec tuned it
#ifdef M_MMAP_MAX
  // Serve big blocks from the heap and never give it back (-1: "disables trimming completely",
  // mallopt(3)), so the next step reuses pages that are already mapped.
  allocator_tuned = mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, -1) == 1;
  return allocator_tuned;
#else
  return false;
#endif
}

void EnsureFastCpuEnvironment(int argc, char** argv) {
  RunBlasProbeIfAsked();
  if (!IsSet(kGuardVar)) {  // else we are the re-executed process (or the user opted out)
    CpuEnvFacts facts = CurrentCpuEnvFacts();
    if (!facts.openblas_coretype_set) {
      std::string how;
      facts.measured_core = ChooseBlasCore(facts.blas_core, &how);
      // For DescribeComputeEnvironment, here and in the re-executed process.
      if (!facts.measured_core.empty()) setenv(kBlasChoiceVar, how.c_str(), 1);
    }
    const auto fixes = CpuEnvironmentFixes(facts);
    if (!fixes.empty()) {
      for (const auto& [name, value] : fixes) setenv(name.c_str(), value.c_str(), /*overwrite=*/0);
      setenv(kGuardVar, "1", 1);
      std::vector<char*> args(argv, argv + argc);
      args.push_back(nullptr);
      execv("/proc/self/exe", args.data());
      // execv failed: run on with the slower settings, and let the environment say so.
      for (const auto& fix : fixes) unsetenv(fix.first.c_str());
      unsetenv(kGuardVar);
      unsetenv(kBlasChoiceVar);
    }
  }
  ConfigureCpuAllocator();
}

int PhysicalCoreCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    return std::max(1u, std::thread::hardware_concurrency());
  }
  std::set<std::pair<int, int>> cores;  // (package, core id)
  int logical = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    ++logical;
    const std::string topo = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    const int package = ReadInt(topo + "physical_package_id");
    const int core = ReadInt(topo + "core_id");
    if (package < 0 || core < 0) return std::max(1, logical);  // no topology: count logical
    cores.emplace(package, core);
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
}

void ConfigureThreads(int requested) {
  const int n = requested > 0 ? requested : PhysicalCoreCount();
  torch::set_num_threads(n);
  // OpenBLAS keeps its own pthread pool (libtorch sets only OpenMP/MKL); keep them equal so the
  // two pools never oversubscribe the cores, unless the user chose OPENBLAS_NUM_THREADS.
  if (IsSet("OPENBLAS_NUM_THREADS")) return;
  if (auto set_blas = LookupBlas<void (*)(int)>("openblas_set_num_threads")) set_blas(n);
}

namespace {

std::string MallocMode() {
  if (allocator_tuned) return "heap-only";
  const std::string tunables = EnvOr("GLIBC_TUNABLES", "");
  if (tunables.find("glibc.malloc.hugetlb=") != std::string::npos) {
    return std::string(ThpAvailable() ? "THP" : "default (no THP)") + " (GLIBC_TUNABLES=" +
           tunables + ")";
  }
  return "default";
}

}  // namespace

std::string DescribeComputeEnvironment() {
  const std::string blas = BlasCoreName();
  std::string out = "torch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
                    std::to_string(TORCH_VERSION_MINOR) + "." +
                    std::to_string(TORCH_VERSION_PATCH) + ", intra-op threads " +
                    std::to_string(torch::get_num_threads()) + ", physical cores " +
                    std::to_string(PhysicalCoreCount());
  if (blas.empty()) {
    out += ", BLAS not OpenBLAS";
  } else {
    const std::string choice = EnvOr(kBlasChoiceVar, "");
    out += ", OpenBLAS core " + blas + " (OPENBLAS_CORETYPE=" + EnvOr("OPENBLAS_CORETYPE", "unset") +
           (choice.empty() ? "" : ", " + choice) + "), BLAS threads " +
           std::to_string(BlasThreads());
  }
  out += ", OMP_WAIT_POLICY=" + EnvOr("OMP_WAIT_POLICY", "unset") +
         ", GOMP_SPINCOUNT=" + EnvOr("GOMP_SPINCOUNT", "unset") +
         ", malloc " + MallocMode() + ", CUDA " +
         (torch::cuda::is_available() ? std::to_string(torch::cuda::device_count()) + " GPU(s)"
                                      : std::string("no"));
  return out;
}

}  // namespace ulmfit
