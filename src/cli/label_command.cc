// `ulmfit label --config FILE`: labelling in a terminal, retraining as answers come in.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "active/label_session.h"
#include "cli/commands.h"
#include "config/config_loader.h"
#include "util/cpu_env.h"
#include "util/signals.h"

namespace ulmfit::cli {

int LabelCommand(const std::vector<std::string>& args) {
  std::string config_path;
  std::vector<std::string> overrides;
  const FlagTable table{
      "ulmfit label",
      R"(Shows the texts of active.pool the model most wants labelled, one at a time; keys 1-9 pick
a label (active.labels), s skips, u undoes, q quits. Each answer is appended to task.train at
once; the classifier is retrained every active.retrain_every labels. See
docs/active_learning.md.
)",
      {ConfigFlag(&config_path), SetFlag(&overrides)}};
  if (const std::optional<int> exit = ParseCommandLine(table, args)) return *exit;
  const absl::StatusOr<Config> config = LoadConfig(config_path, overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "ulmfit: %s\n", std::string(config.status().message()).c_str());
    return kExitUsage;
  }
  ConfigureThreads(config->run.threads);
  InstallStopSignalHandlers();
  const absl::StatusOr<int> code = RunLabelSession(*config, STDIN_FILENO, stdout);
  if (!code.ok()) return Fail(code.status());
  return *code;
}

}  // namespace ulmfit::cli
