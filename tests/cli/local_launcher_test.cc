// Tests of `ulmfit --nproc N` (cli/local_launcher.h): LaunchLocalWorkers running small /bin/sh
// workers (their variables, the first failure's status, SIGKILL after the grace period, SIGTERM
// forwarding), and the ulmfit binary's --nproc errors.
#include "cli/local_launcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace ulmfit::cli {
namespace {
namespace fs = std::filesystem;
using ulmfit_test::Read;
using ulmfit_test::RunResult;
using ulmfit_test::RunUlmfit;
using ulmfit_test::TempDir;

fs::path TestDir() {
  return TempDir(std::string("launcher_") +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

// Runs `script` in /bin/sh as each of `nproc` workers; stderr (the launcher's and the
// workers') comes back in `*err`.
int LaunchScript(int nproc, const std::string& script, double grace_seconds,
                 std::string* err = nullptr) {
  LaunchOptions options;
  options.program = "/bin/sh";
  options.grace_seconds = grace_seconds;
  ::testing::internal::CaptureStderr();
  const int code = LaunchLocalWorkers(nproc, {"-c", script}, options);
  const std::string text = ::testing::internal::GetCapturedStderr();
  if (err != nullptr) *err = text;
  return code;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Whether `pid` is a live process (not gone, not a zombie).
bool Alive(pid_t pid) {
  std::istringstream stat(Read(fs::path("/proc") / std::to_string(pid) / "stat"));
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) return false;
  return state != "Z" && state != "X";
}

TEST(LocalLauncherTest, WorkersSeeTorchrunVariables) {
  const fs::path dir = TestDir();
  // The launcher replaces a stale rank and hides srun's, so a worker never reads SLURM.
  ::setenv("RANK", "7", 1);
  ::setenv("SLURM_PROCID", "3", 1);
  std::string err;
  const int code = LaunchScript(
      3,
      "echo \"$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT "
      "${SLURM_PROCID-unset}\" > " +
          (dir / "rank_").string() + "$RANK",
      10, &err);
  ::unsetenv("RANK");
  ::unsetenv("SLURM_PROCID");
  ASSERT_EQ(code, 0) << err;
  std::set<std::string> ports;
  for (int rank = 0; rank < 3; ++rank) {
    std::istringstream line(Read(dir / ("rank_" + std::to_string(rank))));
    int r = -1, local_rank = -1, world = -1, local_world = -1, port = -1;
    std::string addr, slurm;
    ASSERT_TRUE(line >> r >> local_rank >> world >> local_world >> addr >> port >> slurm)
        << "rank " << rank << ": " << line.str();
    EXPECT_EQ(r, rank);
    EXPECT_EQ(local_rank, rank);
    EXPECT_EQ(world, 3);
    EXPECT_EQ(local_world, 3);
    EXPECT_EQ(addr, "127.0.0.1");
    EXPECT_GE(port, 1);
    EXPECT_LE(port, 65535);
    EXPECT_EQ(slurm, "unset");
    ports.insert(std::to_string(port));
  }
  EXPECT_EQ(ports.size(), 1u);  // one port for the whole world
  EXPECT_NE(err.find("starting 3 workers"), std::string::npos) << err;
}

TEST(LocalLauncherTest, ReturnsTheFirstFailingWorkersStatus) {
  std::string err;
  // Rank 1 fails at once, rank 0 later with another status: the first failure decides.
  const int code = LaunchScript(
      3, "case $RANK in 0) sleep 0.3; exit 5;; 1) exit 3;; esac; exit 0", 10, &err);
  EXPECT_EQ(code, 3) << err;
  EXPECT_NE(err.find("ulmfit: worker rank 1 (pid "), std::string::npos) << err;
  EXPECT_NE(err.find(") exited with status 3"), std::string::npos) << err;
  EXPECT_NE(err.find("worker rank 0 (pid "), std::string::npos) << err;
  EXPECT_NE(err.find(") exited with status 5"), std::string::npos) << err;
  EXPECT_EQ(err.find("worker rank 2"), std::string::npos) << err;  // it succeeded

  EXPECT_EQ(LaunchScript(2, "exit 0", 10), 0);
  // A worker killed by a signal counts as 128 + N.
  EXPECT_EQ(LaunchScript(2, "[ $RANK = 1 ] && kill -9 $$; exit 0", 10, &err), 137) << err;
  EXPECT_NE(err.find("worker rank 1 (pid "), std::string::npos) << err;
  EXPECT_NE(err.find(") was killed by signal 9"), std::string::npos) << err;
}

TEST(LocalLauncherTest, KillsTheOthersAfterTheGracePeriod) {
  const fs::path dir = TestDir();
  const auto start = std::chrono::steady_clock::now();
  std::string err;
  // Rank 0 hangs (as if in a collective that waits for rank 1) in a child of its shell; rank 1
  // fails.
  const int code = LaunchScript(2,
                                "if [ $RANK = 0 ]; then sleep 60 & echo $! > " +
                                    (dir / "sleep.pid").string() + "; wait; fi; exit 4",
                                1.0, &err);
  const double seconds = SecondsSince(start);
  EXPECT_EQ(code, 4) << err;
  EXPECT_GE(seconds, 0.9);
  EXPECT_LT(seconds, 10);
  EXPECT_NE(err.find("worker rank 0 (pid "), std::string::npos) << err;
  EXPECT_NE(err.find("still running 1s after rank 1 failed; killing it (SIGKILL)"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find("was killed by signal 9"), std::string::npos) << err;  // said once
  // The whole process group went, the hanging grandchild too.
  const pid_t sleeper = std::stoi(Read(dir / "sleep.pid"));
  for (int i = 0; i < 100 && Alive(sleeper); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(Alive(sleeper));
}

TEST(LocalLauncherTest, ForwardsSigtermToTheWorkers) {
  const fs::path dir = TestDir();
  const std::string script = "trap 'echo $RANK > " + (dir / "term_").string() +
                             "$RANK; exit 143' TERM; : > " + (dir / "ready_").string() +
                             "$RANK; while :; do sleep 0.05; done";
  // The launcher runs in a child, so the test can signal it like a user would.
  const pid_t launcher = ::fork();
  if (launcher == 0) {
    LaunchOptions options;
    options.program = "/bin/sh";
    options.grace_seconds = 10;
    ::_exit(LaunchLocalWorkers(2, {"-c", script}, options));
  }
  ASSERT_GT(launcher, 0);
  const auto start = std::chrono::steady_clock::now();
  while (!(fs::exists(dir / "ready_0") && fs::exists(dir / "ready_1")) &&
         SecondsSince(start) < 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(dir / "ready_0") && fs::exists(dir / "ready_1"));
  ::kill(launcher, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(launcher, &status, 0), launcher);
  ASSERT_TRUE(WIFEXITED(status)) << "launcher killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 143);
  EXPECT_EQ(Read(dir / "term_0"), "0\n");
  EXPECT_EQ(Read(dir / "term_1"), "1\n");
  EXPECT_LT(SecondsSince(start), 10);
}

TEST(LocalLauncherTest, AProgramThatCannotRunExits127) {
  LaunchOptions options;
  options.program = "/nonexistent/ulmfit";
  options.grace_seconds = 1;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(LaunchLocalWorkers(2, {}, options), 127);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("ulmfit: cannot execute /nonexistent/ulmfit"), std::string::npos) << err;
}

// The ulmfit binary: --nproc's errors come once, from the launcher, before any worker starts.
TEST(LocalLauncherCliTest, NprocErrors) {
  const fs::path dir = TestDir();
  const RunResult missing = RunUlmfit(
      {"--config", (dir / "missing.yaml").string(), "--nproc", "2"}, dir / "missing.log");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("missing.yaml"), std::string::npos) << missing.output;
  EXPECT_EQ(ulmfit_test::Lines(missing.output).size(), 1u) << missing.output;
  EXPECT_EQ(missing.output.find("starting"), std::string::npos) << missing.output;

  const RunResult zero =
      RunUlmfit({"--config", (dir / "missing.yaml").string(), "--nproc", "0"}, dir / "zero.log");
  EXPECT_EQ(zero.exit_code, 2) << zero.output;
  EXPECT_NE(zero.output.find("--nproc needs an integer >= 1, got '0'"), std::string::npos)
      << zero.output;

  // Inside torchrun (or another --nproc), --nproc is refused.
  ulmfit_test::WriteTinySetup(dir, "run", /*backwards=*/false);
  ::setenv("WORLD_SIZE", "2", 1);
  const RunResult nested = RunUlmfit(
      {"--config", (dir / "run.yaml").string(), "--nproc=2"}, dir / "nested.log");
  ::unsetenv("WORLD_SIZE");
  EXPECT_EQ(nested.exit_code, 2) << nested.output;
  EXPECT_NE(nested.output.find("--nproc cannot be used inside torchrun/srun (WORLD_SIZE is set); "
                               "drop --nproc"),
            std::string::npos)
      << nested.output;
  EXPECT_FALSE(fs::exists(dir / "run"));  // nothing written
}

TEST(LocalLauncherCliTest, WorkersRunTheCommandWithoutNproc) {
  // Each worker fails on an output directory it cannot create: status 1 from the run itself (a
  // worker that saw --nproc again would stop at the WORLD_SIZE usage error, status 2).
  const fs::path dir = TestDir();
  ulmfit_test::WriteTinySetup(dir, "run", /*backwards=*/false);
  std::ofstream(dir / "file") << "not a directory\n";
  const RunResult run =
      RunUlmfit({"--config", (dir / "run.yaml").string(), "--nproc", "2", "--set",
                 "run.output_dir=" + (dir / "file" / "run").string()},
                dir / "run.log");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("starting 2 workers"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("worker rank 0 (pid "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("worker rank 1 (pid "), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("WORLD_SIZE is set"), std::string::npos) << run.output;
  size_t errors = 0;
  for (size_t at = run.output.find("cannot create"); at != std::string::npos;
       at = run.output.find("cannot create", at + 1)) {
    ++errors;
  }
  EXPECT_EQ(errors, 2u) << run.output;  // one per worker
}

}  // namespace
}  // namespace ulmfit::cli
