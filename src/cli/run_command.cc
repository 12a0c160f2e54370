// `ulmfit run --config FILE` (or just `ulmfit --config FILE`): the stages a YAML file describes.
// `ulmfit active-learn --config FILE`: stages 1 and 2, then the active-learning simulation.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "active/simulation.h"
#include "cli/commands.h"
#include "cli/local_launcher.h"
#include "absl/strings/str_join.h"
#include "config/config_loader.h"
#include "dist/launch_env.h"
#include "dist/world.h"
#include "fmt/format.h"
#include "train/stages.h"
#include "util/cpu_env.h"
#include "util/device.h"
#include "util/dir_lock.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/signals.h"

namespace ulmfit::cli {
namespace {

struct RunFlags {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string stage;  // empty: every stage the file describes
  bool resume = false;
  bool print_config = false;
  int nproc = 0;  // 0 or 1: train in this process
};

constexpr const char* kRunAbout =
    R"(Runs the ULMFiT pipeline described by a YAML file (see docs/config.md): stage 1 pretrains a
language model (pretrain.data), stage 2 fine-tunes it on the task's text and stage 3 trains the
classifier (task.*). Stages whose outputs exist are skipped, so the same command continues a
pipeline. 'ulmfit --config FILE' is the same command.
)";

constexpr const char* kActiveLearnAbout =
    R"(A simulation on a labelled task.train whose labels are hidden until "queried": stages 1-2 as
usual, then rounds of training a classifier and adding the active.query_size texts each strategy
picks; test error per round in <output_dir>/active/ (results.csv, .md, .svg). See
docs/active_learning.md.
)";

FlagTable RunTable(std::string command, std::string about, RunFlags* flags) {
  return {std::move(command),
          std::move(about),
          {ConfigFlag(&flags->config_path), SetFlag(&flags->overrides),
           StringFlag("--stage", "", "run only this stage", &flags->stage)
               .Choices({"pretrain", "finetune", "classify"}),
           SwitchFlag("--resume", "continue an interrupted run from its last checkpoint",
                      &flags->resume),
           SwitchFlag("--print-config", "print the resolved configuration and exit",
                      &flags->print_config),
           IntFlag("--nproc", "N",
                   "start N local worker processes that train together (data-parallel, Gloo on "
                   "CPU / NCCL on CUDA; docs/distributed.md)",
                   &flags->nproc, 1)
               .Default("1")}};
}

// Whether `stage` runs: the one --stage names, or else each stage the config describes.
bool StageRuns(const std::string& stage, const RunFlags& flags, const Config& config) {
  if (!flags.stage.empty()) return flags.stage == stage;
  // finetune.pretrained: none means no stage 1, even where the file describes one;
  // classifier.language_model means neither stage 1 nor 2 (another run did them).
  const bool other_lm = !config.classifier.language_model.empty();
  if (stage == "pretrain") {
    return !config.pretrain.data.train.empty() && config.finetune.pretrained != kNoPretraining &&
           !other_lm;
  }
  return !config.task.train.empty() && !(other_lm && stage == "finetune");
}

// The exit code for a stage's result: kExitOk to go on, 128 + N when stopped by signal N.
int ExitCode(const absl::StatusOr<StageResult>& result) {
  if (!result.ok()) return Fail(result.status());
  if (result->outcome == StageOutcome::kInterrupted) return 128 + result->signal;
  return kExitOk;
}

// Joins the job's process group and makes it current; the other ranks stay quiet.
absl::Status JoinWorld(const LaunchEnvironment& launch, const RunConfig& run) {
  ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice(run.device));
  World::Options options;
  options.backend = run.distributed_backend;
  options.timeout_s = run.distributed_timeout_s;
  options.device = device;
  ASSIGN_OR_RETURN(std::unique_ptr<World> world, World::Join(launch, options));
  if (!world->leader()) SetQuietLogs(true);
  SetCurrentWorld(std::move(world));
  return absl::OkStatus();
}

int RunStages(const RunFlags& flags, const Config& config, bool active_learn) {
  using StageFn = absl::StatusOr<StageResult> (*)(const Config&, bool);
  const std::pair<const char*, StageFn> stages[] = {
      {"pretrain", RunPretrain}, {"finetune", RunFinetune}, {"classify", RunClassify}};
  if (!active_learn && StageRuns("classify", flags, config)) {
    if (const absl::Status labels = CheckTestLabels(config); !labels.ok()) return Fail(labels);
  }
  for (const auto& [name, run] : stages) {
    if (active_learn && std::string(name) == "classify") continue;
    if (!StageRuns(name, flags, config)) continue;
    if (const int code = ExitCode(run(config, flags.resume)); code != kExitOk) return code;
  }
  if (active_learn) return ExitCode(RunActiveLearningSimulation(config));
  return kExitOk;
}

// Locks the run directory for this run (rank 0 of a data-parallel job: the others share it),
// then asks each stage that will run whether it can start (CheckStageCanStart), so that a run
// refused there has changed nothing, resolved.yaml included.
absl::Status LockAndCheckStages(const RunFlags& flags, const Config& config, bool active_learn) {
  RETURN_IF_ERROR(LeaderFirst("locking the run directory", [&] {
    return IsLeaderProcess() ? LockRunDirectory(config.run.output_dir) : absl::OkStatus();
  }));
  for (const char* name : kStageNames) {
    if ((active_learn && std::string(name) == "classify") || !StageRuns(name, flags, config)) {
      continue;
    }
    RETURN_IF_ERROR(CheckStageCanStart(config, name, flags.resume));
  }
  return absl::OkStatus();
}

// The workers' command line: the same command and flags without --nproc.
std::vector<std::string> WorkerArgs(const std::vector<std::string>& args, bool active_learn) {
  std::vector<std::string> worker{active_learn ? "active-learn" : "run"};
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    worker.push_back(args[i]);
  }
  return worker;
}

int Run(const FlagTable& table, const std::vector<std::string>& args, const RunFlags& flags,
        bool active_learn) {
  if (const std::optional<int> exit = ParseCommandLine(table, args)) return *exit;
  const absl::StatusOr<Config> config = LoadConfig(flags.config_path, flags.overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "ulmfit: %s\n", std::string(config.status().message()).c_str());
    return kExitUsage;
  }
  const std::string resolved = ConfigToYaml(*config);
  if (flags.print_config) {
    std::fputs(resolved.c_str(), stdout);
    return kExitOk;
  }
  // Here, after the config loaded (a bad one fails once, not in every worker; --print-config
  // prints once) and before anything is written.
  if (flags.nproc > 1) {
    if (std::getenv("WORLD_SIZE") != nullptr) {
      return UsageError(table,
                        "--nproc cannot be used inside torchrun/srun (WORLD_SIZE is set); drop "
                        "--nproc");
    }
    if (active_learn) {
      return UsageError(table, "active-learn runs in one process; drop --nproc");
    }
    // The others stop on their own within the timeout once one fails; past that, they hang.
    return LaunchLocalWorkers(flags.nproc, WorkerArgs(args, active_learn),
                              config->run.distributed_timeout_s + 30);
  }

  // Started by torchrun, srun or --nproc: join the other processes first.
  const absl::StatusOr<LaunchEnvironment> launch = ReadLaunchEnvironment();
  if (!launch.ok()) return Fail(launch.status());
  if (launch->distributed()) {
    if (active_learn) {
      return Fail(absl::InvalidArgumentError(
          "active-learn runs in one process; start it without torchrun, srun or --nproc"));
    }
    if (absl::Status s = JoinWorld(*launch, config->run); !s.ok()) return Fail(s);
  }
  int threads = config->run.threads;
  if (threads == 0 && launch->local_world_size > 1) {
    // The node's cores shared among its processes, instead of each taking them all.
    threads = std::max(1, PhysicalCoreCount() / launch->local_world_size);
  }
  ConfigureThreads(threads);
  LogInfo(fmt::format("ulmfit: {}", DescribeComputeEnvironment()));
  if (const World* world = CurrentWorld()) {
    LogInfo(fmt::format("ulmfit: process {} of {} ({}, {}; rank 0 writes the run's files and "
                        "this log)", world->rank(), world->size(), launch->launcher,
                        world->backend_name()));
  }
  // One line here (the full listing buried every error under it); every key is in the file.
  std::vector<std::string> stages;
  for (const char* stage : {"pretrain", "finetune", "classify"}) {
    if (StageRuns(stage, flags, *config) && !(active_learn && std::string(stage) == "classify")) {
      stages.push_back(stage);
    }
  }
  LogInfo(fmt::format("ulmfit: {} (preset {}): {} into {}; every setting in {}",
                      flags.config_path, EnumName(config->preset),
                      stages.empty() ? std::string("no stage to run")
                                     : "stages " + absl::StrJoin(stages, ", "),
                      config->run.output_dir,
                      (std::filesystem::path(config->run.output_dir) / "resolved.yaml").string()));
  if (absl::Status s = EnsureWritableDir(config->run.output_dir, "run.output_dir"); !s.ok()) {
    return Fail(s);
  }
  // Before anything is written.
  if (absl::Status s = LockAndCheckStages(flags, *config, active_learn); !s.ok()) return Fail(s);
  if (IsLeaderProcess()) {
    const std::string resolved_path =
        (std::filesystem::path(config->run.output_dir) / "resolved.yaml").string();
    if (absl::Status s = WriteFileAtomic(resolved_path, resolved); !s.ok()) return Fail(s);
  }

  InstallStopSignalHandlers();
  const int code = RunStages(flags, *config, active_learn);
  if (CurrentWorld() != nullptr) {
    // Tearing the process group down may wait on peers that already failed; every file is
    // written and closed by now, so leave at once.
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(code);
  }
  return code;
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  RunFlags flags;
  return Run(RunTable("ulmfit run", kRunAbout, &flags), args, flags, /*active_learn=*/false);
}

int ActiveLearnCommand(const std::vector<std::string>& args) {
  RunFlags flags;
  return Run(RunTable("ulmfit active-learn", kActiveLearnAbout, &flags), args, flags,
             /*active_learn=*/true);
}

}  // namespace ulmfit::cli
