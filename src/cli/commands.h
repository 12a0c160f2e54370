// The ulmfit subcommands and what they share.
//
// Each command is one function in its own *_command.cc: it declares a FlagTable for its flags,
// calls ParseCommandLine, and runs the library. main.cc maps command names to these functions.
// A new command is a table, a function, and a row in main.cc's command list.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/flags.h"
#include "infer/classifier.h"

namespace ulmfit::cli {

// Exit codes (README "Exit codes"); a run stopped by signal N exits with 128 + N.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // runtime error: a file, the data, a checkpoint
constexpr int kExitUsage = 2;  // usage or configuration error

// Each takes the words after the command name and returns the exit code.
int RunCommand(const std::vector<std::string>& args);          // run_command.cc
int ActiveLearnCommand(const std::vector<std::string>& args);  // run_command.cc
int LabelCommand(const std::vector<std::string>& args);        // label_command.cc
int PredictCommand(const std::vector<std::string>& args);      // predict_command.cc
int EvaluateCommand(const std::vector<std::string>& args);     // evaluate_command.cc
int SuggestCommand(const std::vector<std::string>& args);      // suggest_command.cc
int LmEvalCommand(const std::vector<std::string>& args);       // lm_eval_command.cc
int ImportFastaiCommand(const std::vector<std::string>& args);  // fastai_commands.cc
int ExportFastaiCommand(const std::vector<std::string>& args);  // fastai_commands.cc

// Parses a command's flags. Returns the exit code to stop with (kExitOk after printing the
// command's --help to stdout, kExitUsage after printing the error to stderr), or nullopt when
// the command should go on.
std::optional<int> ParseCommandLine(const FlagTable& table, const std::vector<std::string>& args);

// "ulmfit predict: <message>" and where to find the flags, on stderr; returns kExitUsage.
int UsageError(const FlagTable& table, const std::string& message);

// "ulmfit: <message>" on stderr; returns kExitError.
int Fail(const absl::Status& status);

// Flags several commands share, so they read the same in every --help.
Flag ConfigFlag(std::string* path);                  // --config FILE, required
Flag SetFlag(std::vector<std::string>* overrides);   // --set KEY=VALUE, repeatable
Flag ModelFlag(std::vector<std::string>* models);    // --model DIR, required, repeatable
Flag DeviceFlag(std::string* device);                // --device auto|cpu|cuda[:N]
Flag BatchSizeFlag(int* batch_size);                 // --batch-size N >= 1

// Sets the thread count and loads the --model directories (each a run directory or its model/
// folder) onto `device`, for predict, evaluate and suggest.
absl::StatusOr<ClassifierEnsemble> LoadClassifier(const std::vector<std::string>& models,
                                                  const std::string& device);

}  // namespace ulmfit::cli
