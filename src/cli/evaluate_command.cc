// `ulmfit evaluate --model DIR --data FILE`: metrics on labelled data, as one JSON line.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "data/labeled_data.h"
#include "fmt/format.h"
#include "util/files.h"
#include "util/json.h"

namespace ulmfit::cli {

int EvaluateCommand(const std::vector<std::string>& args) {
  std::vector<std::string> models;
  std::string data, output, device = "auto";
  int batch_size = 0;  // 0: the model's classifier.batch_size
  const FlagTable table{
      "ulmfit evaluate",
      R"(Scores labelled data (in the format of the model's task.train) and prints the metrics as
one JSON line; with several --model, each model's own error rate too.
)",
      {ModelFlag(&models),
       StringFlag("--data", "FILE", "the labelled data", &data).Required(),
       StringFlag("--output", "FILE", "also write the metrics to this file", &output),
       DeviceFlag(&device),
       BatchSizeFlag(&batch_size).Default("the model's classifier.batch_size")}};
  if (const std::optional<int> exit = ParseCommandLine(table, args)) return *exit;

  const auto classifier = LoadClassifier(models, device);
  if (!classifier.ok()) return Fail(classifier.status());
  const auto labeled = ReadLabeledData(data, classifier->config().task);
  if (!labeled.ok()) return Fail(labeled.status());
  std::vector<ClassificationMetrics> members;
  const auto eval = classifier->Evaluate(
      *labeled, batch_size > 0 ? batch_size : classifier->config().classifier.batch_size,
      &members);
  if (!eval.ok()) return Fail(eval.status());
  const auto& m = eval->metrics;
  JsonLine line;
  line.Add("data", data).Add("count", m.count).Add("loss", m.loss)
      .Add("accuracy", m.accuracy).Add("error_rate", m.error_rate).Add("macro_f1", m.macro_f1);
  if (members.size() > 1) {
    // Each member's own error rate, in --model order, beside the ensemble's.
    for (size_t i = 0; i < members.size(); ++i) {
      line.Add(fmt::format("model{}", i + 1), models[i])
          .Add(fmt::format("model{}_error_rate", i + 1), members[i].error_rate);
    }
  }
  const std::string json = line.str();
  std::printf("%s\n", json.c_str());
  if (!output.empty()) {
    if (absl::Status s = WriteFileAtomic(output, json + "\n"); !s.ok()) return Fail(s);
  }
  return kExitOk;
}

}  // namespace ulmfit::cli
