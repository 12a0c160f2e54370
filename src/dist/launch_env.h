// Where this process sits in a multi-process job, read from the launcher's environment:
// torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), else SLURM's (srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the first host
// of SLURM_JOB_NODELIST), else a single process. `ulmfit --nproc N` sets torchrun's variables
// for its workers (cli/local_launcher.h).
#pragma once

#include <functional>
#include <string>

#include "util/status.h"

namespace ulmfit {

struct LaunchEnvironment {
  int rank = 0;
  int local_rank = 0;  // picks the GPU on a multi-GPU node
  int world_size = 1;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // torchrun with TORCHELASTIC_USE_AGENT_STORE=True: its agent already serves the TCPStore, so
  // every rank connects as a client under the key prefix /worker/attempt_<restart_count>.
  bool agent_store = false;
  int restart_count = 0;
  std::string launcher = "single";  // "torchrun" (or ulmfit --nproc), "slurm", "single"

  bool distributed() const { return world_size > 1; }
};

// `getenv` returns null for an unset variable (tests pass their own). Errors name the variable
// and its bad value (not a number, RANK >= WORLD_SIZE, ...).
absl::StatusOr<LaunchEnvironment> ReadLaunchEnvironment(
    const std::function<const char*(const char*)>& getenv);
absl::StatusOr<LaunchEnvironment> ReadLaunchEnvironment();  // the process's own environment

// The first host of a SLURM node list: "node[05-09,12],gpu3" -> "node05"; "a,b" -> "a".
std::string FirstSlurmHost(const std::string& nodelist);

}  // namespace ulmfit
