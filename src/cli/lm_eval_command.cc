// `ulmfit lm-eval --model DIR --data FILE`: how well a run's language model predicts a text,
// as one JSON line; how a user sees whether a pretrained model suits their text.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "data/corpus.h"
#include "train/run_language_model.h"
#include "util/cpu_env.h"
#include "util/device.h"
#include "util/files.h"
#include "util/json.h"

namespace ulmfit::cli {

int LmEvalCommand(const std::vector<std::string>& args) {
  std::string model, data, output, device = "auto";
  int batch_size = 16;
  int bptt = 70;
  const FlagTable table{
      "ulmfit lm-eval",
      R"(Prints a run's language model (stage 2's if it finished, else stage 1's) loss, perplexity
and next-token accuracy on a text: one document per line, or a folder of text files.
)",
      {StringFlag("--model", "DIR", "a run directory with pretrain/lm.pt or finetune/lm.pt",
                  &model).Required(),
       StringFlag("--data", "FILE", "the text (gzipped files too)", &data).Required(),
       StringFlag("--output", "FILE", "also write the result to this file", &output),
       DeviceFlag(&device),
       BatchSizeFlag(&batch_size).Default("16"),
       IntFlag("--bptt", "N", "tokens per step of each stream", &bptt, 2).Default("70")}};
  if (const std::optional<int> exit = ParseCommandLine(table, args)) return *exit;

  ConfigureThreads(0);
  const absl::StatusOr<torch::Device> torch_device = ResolveDevice(device);
  if (!torch_device.ok()) return Fail(torch_device.status());
  absl::StatusOr<RunLanguageModel> run = LoadRunLanguageModel(model, *torch_device);
  if (!run.ok()) return Fail(run.status());
  const auto documents = ReadDocuments(data, CorpusFormat::kAuto, 0);
  if (!documents.ok()) return Fail(documents.status());
  const absl::StatusOr<LmEvaluation> eval =
      EvaluateOnDocuments(*run, *documents, batch_size, bptt, *torch_device);
  if (!eval.ok()) return Fail(absl::InvalidArgumentError(data + ": " + std::string(eval.status().message())));
  const std::string json = JsonLine()
                               .Add("model", run->weights).Add("data", data)
                               .Add("documents", static_cast<int64_t>(documents->size()))
                               .Add("tokens", eval->tokens).Add("loss", eval->loss)
                               .Add("perplexity", eval->perplexity).Add("accuracy", eval->accuracy)
                               .str();
  std::printf("%s\n", json.c_str());
  if (!output.empty()) {
    if (absl::Status s = WriteFileAtomic(output, json + "\n"); !s.ok()) return Fail(s);
  }
  return kExitOk;
}

}  // namespace ulmfit::cli
