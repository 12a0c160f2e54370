// `ulmfit --nproc N`: a small torchrun for one machine. It starts N copies of this program, each
// with torchrun's variables (RANK=i, LOCAL_RANK=i, WORLD_SIZE=N, LOCAL_WORLD_SIZE=N,
// MASTER_ADDR=127.0.0.1, MASTER_PORT=a free port), which dist/launch_env.h reads; forwards
// SIGINT/SIGTERM to them, so each saves a checkpoint; and waits for all of them.
#pragma once

#include <string>
#include <vector>

namespace ulmfit::cli {

struct LaunchOptions {
  // What each worker executes; tests run /bin/sh instead of ulmfit.
  std::string program = "/proc/self/exe";
  // Once a worker has failed, how long the others may take to notice (a collective times out)
  // before they are killed with SIGKILL.
  double grace_seconds = 30;
};

// Runs `nproc` workers `options.program worker_args...` (worker_args without argv[0]) and waits
// for them all. Each worker gets its own process group, so a Ctrl-C in the terminal reaches the
// launcher only, which forwards it once; they also get SIGTERM if the launcher dies.
// Returns 0 when every worker exited 0, else the first failing worker's status (its exit code,
// or 128 + N when killed by signal N); each failure is reported on stderr, one line per worker.
// Returns kExitError (1) when it cannot start them (no free port, fork failed).
int LaunchLocalWorkers(int nproc, const std::vector<std::string>& worker_args,
                       const LaunchOptions& options);
// The same, running /proc/self/exe.
int LaunchLocalWorkers(int nproc, const std::vector<std::string>& worker_args,
                       double grace_seconds);

}  // namespace ulmfit::cli
