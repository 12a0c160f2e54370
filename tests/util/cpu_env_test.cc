// CPU environment setup: which variables get set, that the user's are never overridden, and that
// the re-exec really hands the new environment to a fresh process.
#include "util/cpu_env.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace ulmfit {
namespace {

using Fixes = std::vector<std::pair<std::string, std::string>>;

TEST(CpuEnv, OldBlasCores) {
  for (const char* old : {"Prescott", "prescott", "Core2", "Nehalem", "Atom", "Katmai",
                          "Sandybridge", "Generic", "Unknown"}) {
    EXPECT_TRUE(IsOldBlasCore(old)) << old;
  }
  for (const char* modern : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", ""}) {
    EXPECT_FALSE(IsOldBlasCore(modern)) << modern;
  }
}

TEST(CpuEnv, FixesOnlyWhatTheUserLeftUnset) {
  CpuEnvFacts f;
  f.blas_core = "Prescott";
  f.cpu_has_avx2_fma = true;
  f.glibc_has_hugetlb = true;
  f.thp_available = true;
  const std::pair<std::string, std::string> omp{"OMP_WAIT_POLICY", "PASSIVE"},
      blas{"OPENBLAS_CORETYPE", "Haswell"}, thp{"GLIBC_TUNABLES", "glibc.malloc.hugetlb=1"};
  EXPECT_EQ(CpuEnvironmentFixes(f), (Fixes{omp, blas, thp}));

  CpuEnvFacts user_omp = f;
  user_omp.omp_wait_policy_set = true;
  EXPECT_EQ(CpuEnvironmentFixes(user_omp), (Fixes{blas, thp}));
  CpuEnvFacts user_spin = f;
  user_spin.gomp_spincount_set = true;  // GOMP_SPINCOUNT also controls spinning: respect it
  EXPECT_EQ(CpuEnvironmentFixes(user_spin), (Fixes{blas, thp}));

  CpuEnvFacts user_core = f;
  user_core.openblas_coretype_set = true;
  EXPECT_EQ(CpuEnvironmentFixes(user_core), (Fixes{omp, thp}));
  CpuEnvFacts old_cpu = f;
  old_cpu.cpu_has_avx2_fma = false;  // Prescott may be right for this CPU
  EXPECT_EQ(CpuEnvironmentFixes(old_cpu), (Fixes{omp, thp}));
  CpuEnvFacts good_core = f;
  good_core.blas_core = "Cooperlake";  // detected well: leave it
  EXPECT_EQ(CpuEnvironmentFixes(good_core), (Fixes{omp, thp}));
  CpuEnvFacts no_openblas = f;
  no_openblas.blas_core = "";
  EXPECT_EQ(CpuEnvironmentFixes(no_openblas), (Fixes{omp, thp}));

  // A measured choice (util/blas_choice.h) wins over the Haswell fallback, and over OpenBLAS's
  // own choice where they differ; the user's OPENBLAS_CORETYPE wins over both.
  CpuEnvFacts measured = f;
  measured.measured_core = "SkylakeX";
  EXPECT_EQ(CpuEnvironmentFixes(measured),
            (Fixes{omp, {"OPENBLAS_CORETYPE", "SkylakeX"}, thp}));
  measured.blas_core = "Cooperlake";
  EXPECT_EQ(CpuEnvironmentFixes(measured),
            (Fixes{omp, {"OPENBLAS_CORETYPE", "SkylakeX"}, thp}));
  measured.blas_core = "SKYLAKEX";  // already what OpenBLAS loaded: nothing to change
  EXPECT_EQ(CpuEnvironmentFixes(measured), (Fixes{omp, thp}));
  measured.openblas_coretype_set = true;
  measured.blas_core = "Haswell";
  EXPECT_EQ(CpuEnvironmentFixes(measured), (Fixes{omp, thp}));

  CpuEnvFacts user_malloc = f;
  user_malloc.malloc_set_by_user = true;
  EXPECT_EQ(CpuEnvironmentFixes(user_malloc), (Fixes{omp, blas}));
  CpuEnvFacts old_glibc = f;
  old_glibc.glibc_has_hugetlb = false;
  EXPECT_EQ(CpuEnvironmentFixes(old_glibc), (Fixes{omp, blas}));
  CpuEnvFacts no_thp = f;
  no_thp.thp_available = false;
  EXPECT_EQ(CpuEnvironmentFixes(no_thp), (Fixes{omp, blas}));

  CpuEnvFacts all_set = f;
  all_set.omp_wait_policy_set = all_set.openblas_coretype_set = all_set.malloc_set_by_user = true;
  EXPECT_TRUE(CpuEnvironmentFixes(all_set).empty());
}

TEST(CpuEnv, BlasCoreHonoursOpenblasCoretype) {
  const std::string core = BlasCoreName();
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (core.empty() || forced == nullptr) GTEST_SKIP() << "not OpenBLAS, or core not forced";
  std::string a = core, b = forced;
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    return s;
  };
  EXPECT_EQ(lower(a), lower(b));
}

TEST(CpuEnv, ThreadsAndDescription) {
  const int cores = PhysicalCoreCount();
  EXPECT_GE(cores, 1);
  EXPECT_LE(cores, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const int before = torch::get_num_threads();
  ConfigureThreads(1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  const std::string line = DescribeComputeEnvironment();
  EXPECT_NE(line.find("torch "), std::string::npos) << line;
  EXPECT_NE(line.find("intra-op threads 1"), std::string::npos) << line;
  EXPECT_NE(line.find("OMP_WAIT_POLICY="), std::string::npos) << line;
  ConfigureThreads(0);
  EXPECT_EQ(torch::get_num_threads(), cores);
  ConfigureThreads(before);
}

TEST(CpuEnv, AllocatorKeepsBigBlocksInTheHeapUnlessTheUserTunedMalloc) {
  setenv("MALLOC_TRIM_THRESHOLD_", "1000", 1);
  EXPECT_FALSE(ConfigureCpuAllocator());
  unsetenv("MALLOC_TRIM_THRESHOLD_");
  const char* old_tunables = std::getenv("GLIBC_TUNABLES");
  const std::string saved = old_tunables ? old_tunables : "";
  setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=3", 1);
  EXPECT_FALSE(ConfigureCpuAllocator());
  if (old_tunables) {
    setenv("GLIBC_TUNABLES", saved.c_str(), 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
  if (old_tunables && saved.find("glibc.malloc.") != std::string::npos) GTEST_SKIP();

  ASSERT_TRUE(ConfigureCpuAllocator());
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
  // A 64 MiB tensor (over glibc's 32 MiB mmap ceiling) must not be an mmapped chunk.
  const size_t mmapped_before = mallinfo2().hblkhd;
  torch::Tensor big = torch::ones({16 << 20});
  EXPECT_EQ(mallinfo2().hblkhd, mmapped_before);
  EXPECT_EQ(big.sum().item<double>(), 16 << 20);
#endif
}

// Runs EnsureFastCpuEnvironment in a forked child whose argv re-runs this binary on
// CpuEnvReexecChild.DISABLED_SeesFixedEnvironment. Returns the child's exit status: 7 when the
// re-executed process saw the expected environment, 8 when it did not, 42 when
// EnsureFastCpuEnvironment returned without exec'ing.
int RunChild(const std::vector<std::pair<std::string, const char*>>& env) {
  const pid_t pid = fork();
  if (pid == 0) {
    for (const auto& [name, value] : env) {
      if (value == nullptr) {
        unsetenv(name.c_str());
      } else {
        setenv(name.c_str(), value, 1);
      }
    }
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    std::string self = "/proc/self/exe";
    std::string filter = "--gtest_filter=CpuEnvReexecChild.DISABLED_SeesFixedEnvironment";
    std::string disabled = "--gtest_also_run_disabled_tests";
    char* argv[] = {self.data(), filter.data(), disabled.data(), nullptr};
    EnsureFastCpuEnvironment(3, argv);
    _exit(42);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

using Env = std::vector<std::pair<std::string, const char*>>;

// The child's environment with every malloc variable unset, plus `extra`.
Env WithoutMallocVars(Env extra) {
  Env env = {{"GLIBC_TUNABLES", nullptr},         {"MALLOC_MMAP_MAX_", nullptr},
             {"MALLOC_MMAP_THRESHOLD_", nullptr}, {"MALLOC_TRIM_THRESHOLD_", nullptr},
             {"MALLOC_TOP_PAD_", nullptr},        {"MALLOC_ARENA_MAX", nullptr}};
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

TEST(CpuEnv, ReexecPassesTheFixedEnvironmentWithoutOverridingTheUser) {
  // What this machine should get for malloc when the user sets nothing.
  CpuEnvFacts facts = CurrentCpuEnvFacts();
  facts.malloc_set_by_user = false;
  std::string tunables;
  for (const auto& [name, value] : CpuEnvironmentFixes(facts)) {
    if (name == "GLIBC_TUNABLES") tunables = value;
  }
  // Spin settings and malloc unset: the child must re-exec with OMP_WAIT_POLICY=PASSIVE, the
  // guard and (THP permitting) the hugetlb tunable; the user's OPENBLAS_CORETYPE stays.
  EXPECT_EQ(RunChild(WithoutMallocVars({{"ULMFIT_CPU_ENV", nullptr},
                                        {"OMP_WAIT_POLICY", nullptr},
                                        {"GOMP_SPINCOUNT", nullptr},
                                        {"OPENBLAS_CORETYPE", "Haswell"},
                                        {"ULMFIT_TEST_EXPECT_CORETYPE", "Haswell"},
                                        {"ULMFIT_TEST_EXPECT_TUNABLES", tunables.c_str()}})),
            7);
  // The user's GLIBC_TUNABLES is kept as it is.
  EXPECT_EQ(RunChild(WithoutMallocVars({{"ULMFIT_CPU_ENV", nullptr},
                                        {"OMP_WAIT_POLICY", nullptr},
                                        {"GOMP_SPINCOUNT", nullptr},
                                        {"OPENBLAS_CORETYPE", "Haswell"},
                                        {"GLIBC_TUNABLES", "glibc.malloc.arena_max=4"},
                                        {"ULMFIT_TEST_EXPECT_CORETYPE", "Haswell"},
                                        {"ULMFIT_TEST_EXPECT_TUNABLES",
                                         "glibc.malloc.arena_max=4"}})),
            7);
  // The user chose a spin policy, a core and malloc settings: nothing to fix, no re-exec.
  EXPECT_EQ(RunChild({{"ULMFIT_CPU_ENV", nullptr},
                      {"OMP_WAIT_POLICY", "ACTIVE"},
                      {"OPENBLAS_CORETYPE", "Haswell"},
                      {"GLIBC_TUNABLES", "glibc.malloc.arena_max=4"}}),
            42);
  // The guard is set: never re-exec again.
  EXPECT_EQ(RunChild(WithoutMallocVars(
                {{"ULMFIT_CPU_ENV", "1"}, {"OMP_WAIT_POLICY", nullptr}, {"GOMP_SPINCOUNT", nullptr}})),
            42);
}

// Bytes of anonymous memory this process has in transparent huge pages.
int64_t AnonHugePagesKb() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string key;
  int64_t kb = 0;
  while (in >> key) {
    if (key == "AnonHugePages:") {
      in >> kb;
      return kb;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

// Only run by the re-exec test above, in the re-executed process; reports through its exit code
// (a distinct one, so a filter that matched nothing cannot pass).
TEST(CpuEnvReexecChild, DISABLED_SeesFixedEnvironment) {
  auto is = [](const char* name, const char* want) {
    const char* v = std::getenv(name);
    if (want == nullptr || *want == '\0') return v == nullptr;  // expected unset
    return v != nullptr && std::string(v) == want;
  };
  bool ok = is("ULMFIT_CPU_ENV", "1") && is("OMP_WAIT_POLICY", "PASSIVE") &&
            is("OPENBLAS_CORETYPE", std::getenv("ULMFIT_TEST_EXPECT_CORETYPE")) &&
            is("GLIBC_TUNABLES", std::getenv("ULMFIT_TEST_EXPECT_TUNABLES"));
  if (ok && is("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")) {
    // The tunable took effect: a big tensor lands in transparent huge pages.
    torch::Tensor big = torch::ones({64 << 20});  // 256 MiB
    ok = AnonHugePagesKb() > 0 && big.sum().item<double>() == (64 << 20);
  }
  _exit(ok ? 7 : 8);
}

}  // namespace
}  // namespace ulmfit
