// The smoke version of the experiment drivers in bench/: bench/sample_efficiency.sh end to end
// on a tiny task, every method on shared splits, the report written, a rerun adding nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "test_util.h"

namespace ulmfit_test {
namespace {

#ifdef ULMFIT_BENCH_DATA
// Runs `bash script args...` with the binaries under test; stdout and stderr to `log`.
int RunScript(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("ULMFIT", ULMFIT_BINARY, 1);
    ::setenv("BENCH_DATA", ULMFIT_BENCH_DATA, 1);
    // fastText's default 2M-bucket bigram table (800 MB, written and read back each run) would
    // take most of the smoke test's time on its 160 rows.
    ::setenv("FASTTEXT_ARGS", "-bucket 10000", 1);
    ::setenv("PRECISE_BN", (fs::path(ULMFIT_BENCH_DATA).parent_path() / "precise_bn").c_str(), 1);
    std::vector<std::string> copy = args;
    std::vector<char*> argv{const_cast<char*>("bash")};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execvp("bash", argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
#endif

TEST(BenchSmokeTest, SampleEfficiencyDriver) {
#ifndef ULMFIT_BENCH_DATA
  GTEST_SKIP() << "the benchmarks are not built (ULMFIT_BUILD_BENCH=OFF)";
#else
  const fs::path dir = TempDir("bench");
  WriteTinySetup(dir, "base", false);
  ASSERT_EQ(RunCli({"--config", (dir / "base.yaml").string(), "--stage", "pretrain"},
                   dir / "out.txt", dir / "err.txt"), 0) << Read(dir / "err.txt");
  std::string methods = "ulmfit,supervised,scratch";
  if (std::system("command -v fasttext >/dev/null 2>&1") == 0) methods += ",fasttext";
  const std::vector<std::string> args = {
      std::string(ULMFIT_SOURCE_DIR) + "/bench/sample_efficiency.sh",
      (dir / "base.yaml").string(), "--sizes", "20,all", "--seeds", "1,2", "--methods", methods,
      "--work", (dir / "work").string(), "--out", (dir / "results").string(),
      "--set", "pretrain.data.train=", "--set", "finetune.pretrained=" + (dir / "base").string(),
      // fewer than the 20 examples, so the re-scoring below must draw the same sample
      "--set", "classifier.precise_bn_docs=12"};
  const fs::path log = dir / "driver.log";
  ASSERT_EQ(RunScript(args, log), 0) << Read(log);

  const std::vector<std::string> rows = Lines(Read(dir / "results" / "results.csv"));
  const size_t num_methods = std::count(methods.begin(), methods.end(), ',') + 1;
  ASSERT_EQ(rows.size(), 1 + 2 * 2 * num_methods) << Read(log);
  EXPECT_EQ(rows[0].rfind("experiment,method,size,labels,seed,test_error,", 0), 0u);
  for (size_t i = 1; i < rows.size(); ++i) {
    const std::vector<std::string> cells = SplitCsv(rows[i]);
    ASSERT_GE(cells.size(), 11u) << rows[i];
    // Size 20 means 20 labelled examples; "all" the whole 160-row training file.
    EXPECT_EQ(cells[3], cells[2] == "all" ? "160" : "20") << rows[i];
    const double error = std::stod(cells[5]);
    EXPECT_GE(error, 0.0) << rows[i];
    EXPECT_LE(error, 1.0) << rows[i];
  }
  const std::string md = Read(dir / "results" / "results.md");
  for (const std::string& method : {"ulmfit", "supervised", "scratch"}) {
    EXPECT_NE(md.find("| " + method + " |"), std::string::npos) << md;
  }
  EXPECT_NE(md.find("| method | 20 | all (160) |"), std::string::npos) << md;
  EXPECT_NE(Read(dir / "results" / "chart.svg").find("<svg"), std::string::npos);
  // The LM was fine-tuned once for all the ulmfit runs; each seed drew its own sample.
  EXPECT_TRUE(fs::exists(dir / "work" / "lm" / "finetune" / "lm.pt"));
  const fs::path data = dir / "work" / "data";
  EXPECT_EQ(Lines(Read(data / "train-20-1.tsv")).size(), 20u);
  EXPECT_NE(Read(data / "train-20-1.tsv"), Read(data / "train-20-2.tsv"));

  // A rerun finds every row done: nothing is trained again.
  ASSERT_EQ(RunScript(args, log), 0) << Read(log);
  EXPECT_EQ(Lines(Read(dir / "results" / "results.csv")).size(), rows.size());

  // These runs trained with precise BN on, and bench/precise_bn measures the same documents as
  // stage 3 (the model's precise_bn_docs and seed), so re-scoring changes no error or macro-F1.
  // Seed 1's rows are enough (every process pays libtorch's second of start-up).
  fs::create_directories(dir / "seed1");
  {
    std::ofstream seed1(dir / "seed1" / "results.csv");
    seed1 << rows[0] << "\n";
    for (size_t i = 1; i < rows.size(); ++i) {
      if (SplitCsv(rows[i])[4] == "1") seed1 << rows[i] << "\n";
    }
  }
  const std::vector<std::string> seed1_rows = Lines(Read(dir / "seed1" / "results.csv"));
  ASSERT_EQ(seed1_rows.size(), 1 + 2 * num_methods) << Read(dir / "seed1" / "results.csv");
  ASSERT_EQ(RunScript({std::string(ULMFIT_SOURCE_DIR) + "/bench/rescore_precise_bn.sh",
                       (dir / "seed1").string(), (dir / "rescored").string(),
                       (dir / "work").string()},
                      log),
            0)
      << Read(log);
  const std::vector<std::string> rescored = Lines(Read(dir / "rescored" / "results.csv"));
  ASSERT_EQ(rescored.size(), seed1_rows.size()) << Read(log);
  const auto first_fields = [](const std::string& row) {  // experiment ... macro_f1
    size_t at = 0;
    for (int k = 0; k < 7; ++k) at = row.find(',', at) + 1;
    return row.substr(0, at);
  };
  for (size_t i = 1; i < seed1_rows.size(); ++i) {
    EXPECT_EQ(first_fields(rescored[i]), first_fields(seed1_rows[i])) << Read(log);
  }
  int rescored_runs = 0;  // the test loss too, which any other sample would move
  for (const auto& run : fs::directory_iterator(dir / "work" / "runs")) {
    if (!fs::exists(run.path() / "test_metrics-precise-bn.json")) continue;
    ++rescored_runs;
    EXPECT_EQ(JsonNumber(Read(run.path() / "test_metrics-precise-bn.json"), "loss"),
              JsonNumber(Read(run.path() / "test_metrics.json"), "loss"))
        << run.path();
  }
  EXPECT_EQ(rescored_runs, 2 * 3);  // ulmfit, supervised, scratch at 2 sizes, seed 1
  fs::remove_all(dir);
#endif
}

// bench/ablations.sh on the tiny task: one row per variant, the LM variants' stage 2 run once
// each, the bidirectional row made from the forward and backward classifiers.
TEST(BenchSmokeTest, AblationsDriver) {
#ifndef ULMFIT_BENCH_DATA
  GTEST_SKIP() << "the benchmarks are not built (ULMFIT_BUILD_BENCH=OFF)";
#else
  const fs::path dir = TempDir("ablations");
  WriteTinySetup(dir, "fwd", false);
  WriteTinySetup(dir, "bwd", true);
  for (const char* run : {"fwd", "bwd"}) {
    ASSERT_EQ(RunCli({"--config", (dir / (std::string(run) + ".yaml")).string(), "--stage",
                      "pretrain"},
                     dir / "out.txt", dir / "err.txt"), 0) << Read(dir / "err.txt");
  }
  const fs::path log = dir / "driver.log";
  ASSERT_EQ(RunScript({std::string(ULMFIT_SOURCE_DIR) + "/bench/ablations.sh",
                       (dir / "fwd.yaml").string(), "--seeds", "1", "--backward-lm",
                       (dir / "bwd").string(), "--work", (dir / "work").string(), "--out",
                       (dir / "results").string(), "--set", "pretrain.data.train=", "--set",
                       "finetune.pretrained=" + (dir / "fwd").string()},
                      log),
            0) << Read(log);
  const std::string csv = Read(dir / "results" / "results.csv");
  const std::vector<std::string> rows = Lines(csv);
  ASSERT_EQ(rows.size(), 9u) << csv;
  for (const std::string& variant :
       {"ulmfit", "no-pretraining", "no-lm-finetuning", "lm-ft-no-discr-no-sched",
        "clf-all-at-once", "clf-last-layer-only", "backward", "bidirectional"}) {
    EXPECT_NE(csv.find("," + variant + ",all,160,1,"), std::string::npos) << variant << csv;
  }
  // Stage 2 once per LM variant; the classifier variants reuse the full recipe's LM.
  for (const char* lm : {"lm-ulmfit", "lm-no-pretraining", "lm-no-lm-finetuning",
                         "lm-lm-ft-no-discr-no-sched", "lm-backward"}) {
    EXPECT_TRUE(fs::exists(dir / "work" / lm / "finetune" / "lm.pt")) << lm;
  }
  EXPECT_FALSE(fs::exists(dir / "work" / "lm-clf-all-at-once"));
  EXPECT_NE(Read(dir / "results" / "chart.svg").find("<rect x="), std::string::npos);
  fs::remove_all(dir);
#endif
}

}  // namespace
}  // namespace ulmfit_test
