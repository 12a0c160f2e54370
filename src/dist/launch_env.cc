#include "dist/launch_env.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ulmfit {
namespace {

using GetEnv = std::function<const char*(const char*)>;

// Why these variables were read, for the end of an error message: a stray WORLD_SIZE in a
// shell profile is a likelier cause than a broken launcher.
constexpr const char* kTorchrunWhy =
    " (read as torchrun's launch environment because WORLD_SIZE is set)";
constexpr const char* kSlurmWhy =
    " (read as srun's launch environment because SLURM_PROCID and SLURM_NTASKS are set)";

// Reads launch variables; the first error sticks, so one function can read them all and check
// once.
class EnvReader {
 public:
  EnvReader(const GetEnv& getenv, const char* why) : getenv_(getenv), why_(why) {}

  const char* Raw(const char* name) const { return getenv_(name); }
  bool IsSet(const char* name) const { return getenv_(name) != nullptr; }

  // A non-negative integer, or `fallback` when unset.
  int Int(const char* name, int fallback) {
    const char* value = getenv_(name);
    if (value == nullptr) return fallback;
    int parsed = 0;
    if (!absl::SimpleAtoi(value, &parsed)) {
      Error(absl::StrCat(name, "='", value, "' is not an integer"));
      return fallback;
    }
    if (parsed < 0) Error(absl::StrCat(name, "=", parsed, " is negative"));
    return parsed;
  }

  // The leading count of a SLURM tasks-per-node value: "4" or "4(x2)" -> 4; "2(x3),1" -> 2
  // (the first nodes' count).
  std::optional<int> LeadingCount(const char* name) {
    const char* value = getenv_(name);
    if (value == nullptr) return std::nullopt;
    const std::string text = value;
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
      ++digits;
    }
    int parsed = 0;
    if (digits == 0 || !absl::SimpleAtoi(text.substr(0, digits), &parsed)) {
      Error(absl::StrCat(name, "='", text, "' does not start with a task count"));
      return std::nullopt;
    }
    return parsed;
  }

  void Error(const std::string& message) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(message + why_);
  }

  const absl::Status& status() const { return status_; }

 private:
  const GetEnv& getenv_;
  const char* why_;
  absl::Status status_;
};

// The checks every launcher's values share. `*_name` are the variables the values came from.
void CheckRanks(const LaunchEnvironment& env, const char* rank_name, const char* world_name,
                const char* local_rank_name, const char* local_world_name, EnvReader* reader) {
  if (env.world_size < 1) {
    reader->Error(absl::StrCat(world_name, "=", env.world_size, " must be at least 1"));
  } else if (env.rank >= env.world_size) {
    reader->Error(absl::StrCat(rank_name, "=", env.rank, " is not below ", world_name, "=",
                               env.world_size, " (ranks run from 0 to ", env.world_size - 1,
                               ")"));
  }
  if (env.local_rank >= env.local_world_size) {
    reader->Error(absl::StrCat(local_rank_name, "=", env.local_rank, " is not below ",
                               local_world_name, "=", env.local_world_size));
  }
}

void CheckPort(int port, const char* name, EnvReader* reader) {
  if (port < 1 || port > 65535) {
    reader->Error(absl::StrCat(name, "=", port, " is not a TCP port (1-65535)"));
  }
}

absl::StatusOr<LaunchEnvironment> ReadTorchrun(const GetEnv& getenv) {
  EnvReader reader(getenv, kTorchrunWhy);
  LaunchEnvironment env;
  env.launcher = "torchrun";
  env.world_size = reader.Int("WORLD_SIZE", 1);
  env.rank = reader.Int("RANK", 0);
  env.local_rank = reader.Int("LOCAL_RANK", env.rank);
  env.local_world_size = reader.Int("LOCAL_WORLD_SIZE", env.world_size);
  if (const char* addr = reader.Raw("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    env.master_addr = addr;
  }
  env.master_port = reader.Int("MASTER_PORT", env.master_port);
  if (const char* agent = reader.Raw("TORCHELASTIC_USE_AGENT_STORE")) {
    const std::string value = agent;
    env.agent_store = value == "True" || value == "true" || value == "1";
  }
  env.restart_count = reader.Int("TORCHELASTIC_RESTART_COUNT", 0);
  if (!reader.status().ok()) return reader.status();  // a bad number says so, not its fallout
  CheckRanks(env, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", &reader);
  CheckPort(env.master_port, "MASTER_PORT", &reader);
  if (!reader.status().ok()) return reader.status();
  return env;
}

absl::StatusOr<LaunchEnvironment> ReadSlurm(const GetEnv& getenv) {
  EnvReader reader(getenv, kSlurmWhy);
  LaunchEnvironment env;
  env.launcher = "slurm";
  env.rank = reader.Int("SLURM_PROCID", 0);
  env.world_size = reader.Int("SLURM_NTASKS", 1);
  env.local_rank = reader.Int("SLURM_LOCALID", 0);
  const char* local_world_name = "SLURM_NTASKS_PER_NODE";
  std::optional<int> local_world = reader.LeadingCount(local_world_name);
  if (!local_world && !reader.IsSet(local_world_name)) {
    local_world_name = "SLURM_TASKS_PER_NODE";
    local_world = reader.LeadingCount(local_world_name);
  }
  if (!local_world && !reader.IsSet(local_world_name)) local_world_name = "SLURM_NTASKS";
  env.local_world_size = local_world.value_or(env.world_size);

  if (const char* addr = reader.Raw("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    env.master_addr = addr;
  } else {
    const char* nodelist = reader.Raw("SLURM_JOB_NODELIST");
    if (nodelist == nullptr) nodelist = reader.Raw("SLURM_NODELIST");
    const std::string host = nodelist != nullptr ? FirstSlurmHost(nodelist) : "";
    if (!host.empty()) env.master_addr = host;
  }

  if (reader.IsSet("MASTER_PORT")) {
    env.master_port = reader.Int("MASTER_PORT", env.master_port);
    if (reader.status().ok()) CheckPort(env.master_port, "MASTER_PORT", &reader);
  } else if (const char* job_id = reader.Raw("SLURM_JOB_ID")) {
    // Lightning's rule: every task of the job derives the same port, and jobs sharing a node
    // most likely differ in it.
    const std::string id = job_id;
    const std::string last4 = id.size() > 4 ? id.substr(id.size() - 4) : id;
    int suffix = 0;
    if (last4.empty() || last4.find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(last4, &suffix)) {
      reader.Error(absl::StrCat("SLURM_JOB_ID='", id,
                                "' does not end in digits to derive MASTER_PORT from; set "
                                "MASTER_PORT"));
    } else {
      env.master_port = 15000 + suffix;
    }
  }
  if (!reader.status().ok()) return reader.status();
  CheckRanks(env, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", local_world_name, &reader);
  if (!reader.status().ok()) return reader.status();
  return env;
}

}  // namespace

absl::StatusOr<LaunchEnvironment> ReadLaunchEnvironment(const GetEnv& getenv) {
  if (getenv("WORLD_SIZE") != nullptr) return ReadTorchrun(getenv);
  if (getenv("SLURM_PROCID") != nullptr && getenv("SLURM_NTASKS") != nullptr) {
    return ReadSlurm(getenv);
  }
  return LaunchEnvironment{};
}

absl::StatusOr<LaunchEnvironment> ReadLaunchEnvironment() {
  return ReadLaunchEnvironment([](const char* name) -> const char* { return std::getenv(name); });
}

std::string FirstSlurmHost(const std::string& nodelist) {
  // The first entry: up to the first comma outside brackets ("a[1-2],b" -> "a[1-2]").
  std::string entry;
  int depth = 0;
  for (const char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']' && depth > 0) --depth;
    if (c == ',' && depth == 0) break;
    entry += c;
  }
  // Each bracketed range list becomes its first number, zero padding kept as written:
  // "node[05-09,12]" -> "node05", "gpu[3,7]-ib" -> "gpu3-ib".
  std::string host;
  for (size_t i = 0; i < entry.size(); ++i) {
    if (entry[i] != '[') {
      host += entry[i];
      continue;
    }
    const size_t close = entry.find(']', i);
    const std::string ranges =
        entry.substr(i + 1, close == std::string::npos ? std::string::npos : close - i - 1);
    host += ranges.substr(0, ranges.find_first_of(",-"));
    if (close == std::string::npos) break;
    i = close;
  }
  return host;
}

}  // namespace ulmfit
