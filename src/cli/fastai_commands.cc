// `ulmfit import-fastai` and `ulmfit export-fastai`: fastai AWD-LSTM models in and out
// (src/train/fastai_runs.h, docs/fastai.md).
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "train/fastai_runs.h"
#include "util/progress.h"

namespace ulmfit::cli {

int ImportFastaiCommand(const std::vector<std::string>& args) {
  FastaiImportOptions options;
  const FlagTable table{
      "ulmfit import-fastai",
      R"(Turns a fastai AWD-LSTM language model (such as wt103-fwd's lstm_fwd.pth and
itos_wt103.pkl) into an ulmfit run directory whose stage 1 is done: point finetune.pretrained
at it. Only tensors and strings are read from the files; no code in them is ever run.
)",
      {StringFlag("--weights", "FILE.pth", "the state dict (torch.save, either format)",
                  &options.weights).Required(),
       StringFlag("--vocab", "FILE", "itos pickle (list of str) or one token per line",
                  &options.vocab).Required(),
       StringFlag("--output", "DIR", "the run directory to write", &options.output_dir)
           .Required(),
       SwitchFlag("--backwards", "the model reads text right to left (lstm_bwd.pth)",
                  &options.backwards)}};
  if (const std::optional<int> exit = ParseCommandLine(table, args)) return *exit;
  if (absl::Status imported = ImportFastaiRun(options); !imported.ok()) return Fail(imported);
  return kExitOk;
}

int ExportFastaiCommand(const std::vector<std::string>& args) {
  FastaiExportOptions options;
  const FlagTable table{
      "ulmfit export-fastai",
      R"(Writes a run's language model (stage 2's if it finished, else stage 1's), or with
--encoder its encoder alone (a classifier's too), as a fastai v2 state dict that torch.load
reads and fastai's load_state_dict / load_encoder accept, plus its vocabulary (itos pickle).
)",
      {StringFlag("--model", "DIR", "a run directory, or a classifier's model directory",
                  &options.model).Required(),
       StringFlag("--output", "FILE.pth", "the weights file to write", &options.output)
           .Required(),
       StringFlag("--vocab-output", "FILE", "the vocabulary pickle to write", &options.vocab_output)
           .Default("FILE_itos.pkl beside --output"),
       SwitchFlag("--encoder", "fastai's save_encoder layout: the encoder without the decoder",
                  &options.encoder_only)}};
  if (const std::optional<int> exit = ParseCommandLine(table, args)) return *exit;
  const absl::StatusOr<FastaiExportResult> result = ExportFastaiRun(options);
  if (!result.ok()) return Fail(result.status());
  LogInfo(fmt::format("export-fastai: {} -> {} and {} ({} tokens)", result->source,
                      result->weights, result->vocab, result->vocab_size));
  return kExitOk;
}

}  // namespace ulmfit::cli
