// Unit tests of dist/launch_env.h: torchrun's and srun's variables, their defaults, which
// launcher wins, the errors a user meets (each naming the variable), and SLURM node lists.
#include "dist/launch_env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace ulmfit {
namespace {

using Env = std::map<std::string, std::string>;

absl::StatusOr<LaunchEnvironment> Read(const Env& env) {
  return ReadLaunchEnvironment([&env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

// The error message of reading `env`, or "" when it read.
std::string Error(const Env& env) {
  const absl::StatusOr<LaunchEnvironment> result = Read(env);
  if (result.ok()) return "";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(result.status().message());
}

TEST(LaunchEnvTest, NoLauncherIsOneProcess) {
  const absl::StatusOr<LaunchEnvironment> env = Read({{"HOME", "/root"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, "single");
  EXPECT_EQ(env->rank, 0);
  EXPECT_EQ(env->world_size, 1);
  EXPECT_FALSE(env->distributed());
}

TEST(LaunchEnvTest, TorchrunVariables) {
  const absl::StatusOr<LaunchEnvironment> env =
      Read({{"RANK", "5"}, {"LOCAL_RANK", "1"}, {"WORLD_SIZE", "8"}, {"LOCAL_WORLD_SIZE", "4"},
            {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"},
            {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, "torchrun");
  EXPECT_EQ(env->rank, 5);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->world_size, 8);
  EXPECT_EQ(env->local_world_size, 4);
  EXPECT_EQ(env->master_addr, "node7");
  EXPECT_EQ(env->master_port, 1234);
  EXPECT_TRUE(env->agent_store);
  EXPECT_EQ(env->restart_count, 2);
  EXPECT_TRUE(env->distributed());
}

TEST(LaunchEnvTest, TorchrunDefaults) {
  const absl::StatusOr<LaunchEnvironment> env = Read({{"RANK", "2"}, {"WORLD_SIZE", "3"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->local_rank, 2);        // = RANK
  EXPECT_EQ(env->local_world_size, 3);  // = WORLD_SIZE
  EXPECT_EQ(env->master_addr, "127.0.0.1");
  EXPECT_EQ(env->master_port, 29500);
  EXPECT_FALSE(env->agent_store);
  EXPECT_EQ(env->restart_count, 0);
}

TEST(LaunchEnvTest, AgentStoreSpellings) {
  for (const char* yes : {"True", "true", "1"}) {
    const auto env = Read({{"WORLD_SIZE", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", yes}});
    ASSERT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(env->agent_store) << yes;
  }
  for (const char* no : {"False", "0", ""}) {
    const auto env = Read({{"WORLD_SIZE", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", no}});
    ASSERT_TRUE(env.ok()) << env.status();
    EXPECT_FALSE(env->agent_store) << no;
  }
}

TEST(LaunchEnvTest, WorldSizeOneIsASingleProcess) {
  const absl::StatusOr<LaunchEnvironment> env = Read({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, "torchrun");
  EXPECT_FALSE(env->distributed());
}

TEST(LaunchEnvTest, SlurmVariables) {
  const absl::StatusOr<LaunchEnvironment> env =
      Read({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "2"},
            {"SLURM_NTASKS_PER_NODE", "4"}, {"SLURM_TASKS_PER_NODE", "3(x2)"},
            {"SLURM_JOB_NODELIST", "gpu[07-08]"}, {"SLURM_NODELIST", "other1"},
            {"SLURM_JOB_ID", "1234567"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, "slurm");
  EXPECT_EQ(env->rank, 6);
  EXPECT_EQ(env->world_size, 8);
  EXPECT_EQ(env->local_rank, 2);
  EXPECT_EQ(env->local_world_size, 4);  // SLURM_NTASKS_PER_NODE before SLURM_TASKS_PER_NODE
  EXPECT_EQ(env->master_addr, "gpu07");
  EXPECT_EQ(env->master_port, 15000 + 4567);
  EXPECT_FALSE(env->agent_store);
}

TEST(LaunchEnvTest, SlurmFallbacks) {
  // SLURM_TASKS_PER_NODE's leading count; SLURM_NODELIST; no job id: torchrun's default port.
  auto env = Read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "6"},
                   {"SLURM_TASKS_PER_NODE", "2(x3)"}, {"SLURM_NODELIST", "cn[3,5],cn9"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->local_rank, 0);
  EXPECT_EQ(env->local_world_size, 2);
  EXPECT_EQ(env->master_addr, "cn3");
  EXPECT_EQ(env->master_port, 29500);

  // No tasks-per-node at all: every task on one node; no node list: the loopback.
  env = Read({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "3"}, {"SLURM_JOB_ID", "42"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->local_world_size, 3);
  EXPECT_EQ(env->master_addr, "127.0.0.1");
  EXPECT_EQ(env->master_port, 15042);
}

TEST(LaunchEnvTest, SlurmMasterOverrides) {
  const absl::StatusOr<LaunchEnvironment> env =
      Read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n[1-2]"},
            {"SLURM_JOB_ID", "99999"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "4000"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->master_addr, "10.0.0.1");
  EXPECT_EQ(env->master_port, 4000);
}

TEST(LaunchEnvTest, SlurmNeedsBothProcidAndNtasks) {
  const absl::StatusOr<LaunchEnvironment> env = Read({{"SLURM_PROCID", "0"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, "single");
}

TEST(LaunchEnvTest, TorchrunWinsOverSlurm) {
  // torchrun started inside an srun step: its variables describe the workers.
  const absl::StatusOr<LaunchEnvironment> env =
      Read({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"},
            {"SLURM_JOB_NODELIST", "node1"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, "torchrun");
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 2);
  EXPECT_EQ(env->master_addr, "127.0.0.1");
}

TEST(LaunchEnvTest, ErrorsNameTheVariableAndValue) {
  // Each error says which variable, its value, what is wrong, and which launcher's they are.
  const std::string not_int = Error({{"WORLD_SIZE", "2"}, {"RANK", "one"}});
  EXPECT_NE(not_int.find("RANK='one' is not an integer"), std::string::npos) << not_int;
  EXPECT_NE(not_int.find("WORLD_SIZE is set"), std::string::npos) << not_int;
  EXPECT_EQ(not_int.find('\n'), std::string::npos) << not_int;

  EXPECT_NE(Error({{"WORLD_SIZE", "2x"}}).find("WORLD_SIZE='2x' is not an integer"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", ""}}).find("WORLD_SIZE='' is not an integer"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", "2"}, {"LOCAL_RANK", "-1"}}).find("LOCAL_RANK=-1 is negative"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", "0"}}).find("WORLD_SIZE=0 must be at least 1"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", "4"}, {"RANK", "4"}}).find("RANK=4 is not below WORLD_SIZE=4"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "2"},
                   {"LOCAL_WORLD_SIZE", "2"}})
                .find("LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", "2"}, {"MASTER_PORT", "0"}})
                .find("MASTER_PORT=0 is not a TCP port (1-65535)"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", "2"}, {"MASTER_PORT", "65536"}}).find("MASTER_PORT=65536"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", "2"}, {"MASTER_PORT", "http"}})
                .find("MASTER_PORT='http' is not an integer"),
            std::string::npos);
  EXPECT_NE(Error({{"WORLD_SIZE", "2"}, {"TORCHELASTIC_RESTART_COUNT", "x"}})
                .find("TORCHELASTIC_RESTART_COUNT='x'"),
            std::string::npos);
}

TEST(LaunchEnvTest, SlurmErrorsNameTheVariable) {
  const std::string rank = Error({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "2"}});
  EXPECT_NE(rank.find("SLURM_PROCID=2 is not below SLURM_NTASKS=2"), std::string::npos) << rank;
  EXPECT_NE(rank.find("SLURM_PROCID and SLURM_NTASKS are set"), std::string::npos) << rank;
  EXPECT_NE(Error({{"SLURM_PROCID", "x"}, {"SLURM_NTASKS", "2"}})
                .find("SLURM_PROCID='x' is not an integer"),
            std::string::npos);
  EXPECT_NE(Error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "0"}})
                .find("SLURM_NTASKS=0 must be at least 1"),
            std::string::npos);
  EXPECT_NE(Error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "2"},
                   {"SLURM_NTASKS_PER_NODE", "2"}})
                .find("SLURM_LOCALID=2 is not below SLURM_NTASKS_PER_NODE=2"),
            std::string::npos);
  EXPECT_NE(Error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"},
                   {"SLURM_TASKS_PER_NODE", "(x2)"}})
                .find("SLURM_TASKS_PER_NODE='(x2)' does not start with a task count"),
            std::string::npos);
  EXPECT_NE(Error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"MASTER_PORT", "99999"}})
                .find("MASTER_PORT=99999 is not a TCP port"),
            std::string::npos);
  EXPECT_NE(Error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_ID", "12ab"}})
                .find("SLURM_JOB_ID='12ab'"),
            std::string::npos);
}

TEST(LaunchEnvTest, FirstSlurmHost) {
  EXPECT_EQ(FirstSlurmHost("host1"), "host1");
  EXPECT_EQ(FirstSlurmHost("host1,host2"), "host1");
  EXPECT_EQ(FirstSlurmHost("node[05-09,12]"), "node05");
  EXPECT_EQ(FirstSlurmHost("node[05-09,12],gpu3"), "node05");
  EXPECT_EQ(FirstSlurmHost("gpu[3,7]-ib"), "gpu3-ib");
  EXPECT_EQ(FirstSlurmHost("a[1-2],b"), "a1");
  EXPECT_EQ(FirstSlurmHost("rack[2-3]-n[001-004]"), "rack2-n001");
  EXPECT_EQ(FirstSlurmHost("node[007]"), "node007");
  EXPECT_EQ(FirstSlurmHost(""), "");
}

}  // namespace
}  // namespace ulmfit
