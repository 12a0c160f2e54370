// ulmfit command line: picks the subcommand and turns uncaught exceptions into exit code 1.
// Each command's flags and body live in its own src/cli/*_command.cc (see cli/commands.h).
//
// Exit codes: 0 done, 1 runtime error, 2 usage or configuration error, 128+N stopped by signal N
// (a checkpoint was saved; continue with --resume).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "dist/world.h"
#include "util/cpu_env.h"

namespace {

using ulmfit::cli::kExitOk;
using ulmfit::cli::kExitUsage;

struct Command {
  const char* name;     // as typed after "ulmfit"
  const char* summary;  // its line in `ulmfit --help`
  int (*run)(const std::vector<std::string>& args);  // the words after the name -> exit code
};

// In the order `ulmfit --help` lists them.
constexpr Command kCommands[] = {
    {"run", "train: the stages a YAML file describes (the default: ulmfit --config FILE)",
     ulmfit::cli::RunCommand},
    {"predict", "label texts with a trained classifier", ulmfit::cli::PredictCommand},
    {"evaluate", "a trained classifier's metrics on labelled data", ulmfit::cli::EvaluateCommand},
    {"suggest", "the unlabelled texts most worth labelling next", ulmfit::cli::SuggestCommand},
    {"label", "label texts in the terminal, retraining as answers come in",
     ulmfit::cli::LabelCommand},
    {"active-learn", "simulate active learning on a labelled data set",
     ulmfit::cli::ActiveLearnCommand},
    {"lm-eval", "a language model's loss, perplexity and accuracy on a text",
     ulmfit::cli::LmEvalCommand},
    {"import-fastai", "a fastai AWD-LSTM language model as a run's stage 1",
     ulmfit::cli::ImportFastaiCommand},
    {"export-fastai", "a run's language model or encoder as a fastai state dict",
     ulmfit::cli::ExportFastaiCommand},
};

const Command* FindCommand(const std::string& name) {
  for (const Command& command : kCommands) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

std::string Overview() {
  std::string text =
      "usage: ulmfit --config FILE [options]\n"
      "       ulmfit COMMAND [flags]\n\n"
      "ULMFiT text classification: pretrain a language model, fine-tune it on a task's text,\n"
      "train a classifier on it, and use the classifier.\n\ncommands:\n";
  for (const Command& command : kCommands) {
    text += fmt::format("  {:<15}{}\n", command.name, command.summary);
  }
  text += fmt::format("  {:<15}{}\n", "help COMMAND", "the same as ulmfit COMMAND --help");
  return text +
         "\n'ulmfit COMMAND --help' lists a command's flags; docs/config.md the YAML keys.\n"
         "Exit codes: 0 done, 1 runtime error, 2 usage or configuration error, 128+N stopped by\n"
         "signal N (a checkpoint was saved; continue with --resume).\n";
}

int UnknownCommand(const std::string& name) {
  std::vector<std::string> names;
  for (const Command& command : kCommands) names.push_back(command.name);
  const std::string best = ulmfit::cli::ClosestName(name, names);
  const std::string hint = best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
  std::fprintf(stderr, "ulmfit: unknown command '%s'%s\n'ulmfit --help' lists the commands.\n",
               name.c_str(), hint.c_str());
  return kExitUsage;
}

// `ulmfit help [COMMAND]`.
int Help(const std::vector<std::string>& args) {
  if (args.empty() || args[0][0] == '-') {
    std::fputs(Overview().c_str(), stdout);
    return kExitOk;
  }
  const Command* command = FindCommand(args[0]);
  return command != nullptr ? command->run({"--help"}) : UnknownCommand(args[0]);
}

int Dispatch(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fprintf(stderr, "ulmfit: give a command or --config FILE\n\n%s", Overview().c_str());
    return kExitUsage;
  }
  const std::string& first = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (first == "-h" || first == "--help" || first == "help") return Help(rest);
  // `ulmfit --config FILE ...` is `ulmfit run --config FILE ...`.
  if (first[0] == '-') return ulmfit::cli::RunCommand(args);
  if (const Command* command = FindCommand(first)) return command->run(rest);
  return UnknownCommand(first);
}

}  // namespace

int main(int argc, char** argv) {
  ulmfit::EnsureFastCpuEnvironment(argc, argv);
  try {
    return Dispatch(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const ulmfit::DistributedError& e) {
    // A peer died or timed out: the process group's teardown could wait on it, so leave now.
    std::fprintf(stderr, "ulmfit: %s\n", e.what());
    std::fflush(stderr);
    std::_Exit(ulmfit::cli::kExitError);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "ulmfit: internal error: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ulmfit: internal error: %s\n", e.what());
  }
  return ulmfit::cli::kExitError;
}
