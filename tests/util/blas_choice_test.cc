// Choosing OpenBLAS's kernel set: which sets a CPU may try, how the fastest is picked, the
// cache's format, and a real first run that measures and caches, then a second that only reads.
#include "util/blas_choice.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "test_util.h"
#include "util/cpu_env.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;
using Cores = std::vector<std::string>;
using ulmfit_test::Lines;
using ulmfit_test::Read;
using ulmfit_test::RunCli;
using ulmfit_test::TempDir;

TEST(BlasChoice, CpuFlagsDecideTheCandidates) {
  const std::string avx2 = "fpu sse4_2 fma avx avx2 bmi2";
  EXPECT_EQ(BlasCoreCandidates(ParseCpuFlags(avx2)), (Cores{"Haswell"}));
  // A flag is a whole word: avx512fp16 alone is not avx512f.
  EXPECT_EQ(BlasCoreCandidates(ParseCpuFlags(avx2 + " avx512fp16 avx512cd avx512bw avx512dq "
                                             "avx512vl")),
            (Cores{"Haswell"}));
  const std::string skx = avx2 + " avx512f avx512cd avx512bw avx512dq avx512vl";
  EXPECT_EQ(BlasCoreCandidates(ParseCpuFlags(skx)), (Cores{"Haswell", "SkylakeX"}));
  EXPECT_EQ(BlasCoreCandidates(ParseCpuFlags(skx + " avx512_bf16")),
            (Cores{"Haswell", "SkylakeX", "Cooperlake"}));
  EXPECT_EQ(BlasCoreCandidates(ParseCpuFlags(skx + " avx512_bf16 amx_bf16 amx_tile amx_int8")),
            (Cores{"Haswell", "SkylakeX", "Cooperlake", "SapphireRapids"}));
  // No AVX2+FMA (or AVX-512 without them): nothing to try, OpenBLAS's own choice stands.
  EXPECT_TRUE(BlasCoreCandidates(ParseCpuFlags("fpu sse4_2 avx")).empty());
  EXPECT_TRUE(BlasCoreCandidates(ParseCpuFlags("avx2 avx512f avx512cd avx512bw avx512dq avx512vl"))
                  .empty());
}

TEST(BlasChoice, FastestWinsButOpenBlasKeepsItsChoiceWithinTheMargin) {
  const std::vector<BlasProbe> probes = {{"Haswell", 1.00}, {"SkylakeX", 0.80}, {"Cooperlake", 0.90}};
  EXPECT_EQ(PickFastestCore(probes, "Prescott"), "SkylakeX");
  EXPECT_EQ(PickFastestCore(probes, "Cooperlake"), "SkylakeX");  // 12.5% slower: switch
  const std::vector<BlasProbe> close = {{"SkylakeX", 0.80}, {"Cooperlake", 0.82}};
  EXPECT_EQ(PickFastestCore(close, "COOPERLAKE"), "Cooperlake");  // 2.5%: noise, keep it
  EXPECT_EQ(PickFastestCore(close, "Cooperlake", /*margin=*/0.01), "SkylakeX");
  EXPECT_EQ(PickFastestCore({}, "Haswell"), "");
  EXPECT_EQ(PickFastestCore({{"Haswell", 0}}, "Haswell"), "");  // a failed timing counts not
}

TEST(BlasChoice, CacheKeepsOneLinePerKey) {
  EXPECT_EQ(FindCachedCore("", "cpu A"), std::nullopt);
  std::string cache = WithCachedCore("", "cpu A; OpenBLAS 0.3.21", "SkylakeX", "measured");
  cache = WithCachedCore(cache, "cpu B; OpenBLAS 0.3.21", "Haswell", "measured");
  EXPECT_EQ(FindCachedCore(cache, "cpu A; OpenBLAS 0.3.21"), "SkylakeX");
  EXPECT_EQ(FindCachedCore(cache, "cpu B; OpenBLAS 0.3.21"), "Haswell");
  EXPECT_EQ(FindCachedCore(cache, "cpu A"), std::nullopt);  // a prefix is another key
  cache = WithCachedCore(cache, "cpu A; OpenBLAS 0.3.21", "Cooperlake", "again");
  EXPECT_EQ(FindCachedCore(cache, "cpu A; OpenBLAS 0.3.21"), "Cooperlake");
  EXPECT_EQ(Lines(cache).size(), 2u);
  // Damaged lines are skipped, not fatal.
  EXPECT_EQ(FindCachedCore("garbage\ncpu A\t\tnote\n\x01\x02\ncpu A\tHaswell\tok", "cpu A"),
            "Haswell");
  EXPECT_EQ(FindCachedCore("cpu A\t\tnote\n", "cpu A"), std::nullopt);
  // A cached kernel set this CPU cannot run (a copied cache, an edited line) is not used.
  const Cores avx2_only = {"Haswell"};
  EXPECT_EQ(UsableCachedCore(cache, "cpu A; OpenBLAS 0.3.21", avx2_only), "");
  EXPECT_EQ(UsableCachedCore(cache, "cpu B; OpenBLAS 0.3.21", avx2_only), "Haswell");
  EXPECT_EQ(UsableCachedCore("cpu B\tHASWELL\tx\n", "cpu B", avx2_only), "Haswell");
  EXPECT_EQ(UsableCachedCore(cache, "cpu C", avx2_only), "");
}

TEST(BlasChoice, TheDescriptionSaysHowTheKernelsWereChosen) {
  if (BlasCoreName().empty()) GTEST_SKIP() << "BLAS is not OpenBLAS";
  setenv("ULMFIT_BLAS_CHOICE", "chosen by measurement, cached in /x", 1);
  const std::string line = DescribeComputeEnvironment();
  unsetenv("ULMFIT_BLAS_CHOICE");
  EXPECT_NE(line.find(", chosen by measurement, cached in /x), BLAS threads"), std::string::npos)
      << line;
}

TEST(BlasChoice, FirstRunMeasuresAndCachesLaterRunsRead) {
  const Cores candidates = BlasCoreCandidates(CurrentCpuIsa());
  if (BlasCoreName().empty() || candidates.size() < 2) {
    GTEST_SKIP() << "not OpenBLAS, or this CPU has a single kernel set to choose (needs AVX-512)";
  }
  const fs::path dir = TempDir("blas_choice");
  const fs::path cache = dir / "cache" / "openblas_core.tsv";
  const std::vector<std::pair<std::string, std::string>> env = {
      {"ULMFIT_CACHE_DIR", (dir / "cache").string()}, {"OPENBLAS_CORETYPE", ""},
      {"ULMFIT_CPU_ENV", ""}, {"ULMFIT_BLAS_CHOICE", ""}};
  ASSERT_EQ(RunCli({"--help"}, dir / "out", dir / "err", {}, env), 0) << Read(dir / "err");
  ASSERT_TRUE(fs::exists(cache)) << Read(dir / "err");
  const std::string first = Read(cache);
  const std::optional<std::string> core = FindCachedCore(first, BlasCacheKey());
  ASSERT_TRUE(core.has_value()) << first;
  EXPECT_NE(std::find(candidates.begin(), candidates.end(), *core), candidates.end()) << first;
  EXPECT_NE(first.find("measured with"), std::string::npos) << first;

  // A second run reads the line and measures nothing: the file is left as it was.
  const auto written = fs::last_write_time(cache);
  ASSERT_EQ(RunCli({"--help"}, dir / "out", dir / "err", {}, env), 0) << Read(dir / "err");
  EXPECT_EQ(Read(cache), first);
  EXPECT_EQ(fs::last_write_time(cache), written);

  fs::remove_all(dir);
}

}  // namespace
}  // namespace ulmfit
