// `ulmfit predict --model DIR`: the label and class probabilities of each input text.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/text_io.h"
#include "fmt/format.h"
#include "util/json.h"

namespace ulmfit::cli {

int PredictCommand(const std::vector<std::string>& args) {
  std::vector<std::string> models;
  std::string input = "-", format = "jsonl", device = "auto";
  int column = TextLines::kWholeLine, batch_size = 64;
  const FlagTable table{
      "ulmfit predict",
      R"(Reads texts (one per line) and writes the label and class probabilities of each, in input
order, as JSON lines (default) or CSV.
)",
      {ModelFlag(&models),
       StringFlag("--input", "FILE", "the texts, one per line; - reads stdin", &input),
       StringFlag("--format", "", "output format", &format).Choices({"jsonl", "csv"}),
       IntFlag("--column", "N", "take the text from tab-separated column N, counted from 0",
               &column, 0)
           .Default("the whole line"),
       DeviceFlag(&device), BatchSizeFlag(&batch_size)}};
  if (const std::optional<int> exit = ParseCommandLine(table, args)) return *exit;

  const auto classifier = LoadClassifier(models, device);
  if (!classifier.ok()) return Fail(classifier.status());
  TextLines lines(input);
  if (absl::Status opened = lines.Open(); !opened.ok()) return Fail(opened);
  const auto& names = classifier->labels().names();
  if (format == "csv") {
    std::string header = "label";
    for (const auto& name : names) header += ",p_" + name;
    std::printf("%s\n", header.c_str());
  }
  // Batches of texts stream through: memory stays flat for large inputs.
  std::vector<std::string> texts;
  auto flush = [&] {
    const ClassifierEvaluation out = classifier->Predict(texts, batch_size);
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string& label = names[out.predicted[i]];
      if (format == "csv") {
        std::string line = label;
        for (float p : out.probs[i]) line += fmt::format(",{:.6f}", p);
        std::printf("%s\n", line.c_str());
      } else {
        std::printf("{\"label\": %s, \"probs\": %s}\n", JsonQuote(label).c_str(),
                    ProbsJson(names, out.probs[i]).c_str());
      }
    }
    std::fflush(stdout);
    texts.clear();
  };
  std::string text;
  while (true) {
    const absl::StatusOr<bool> more = lines.Next(column, TextLines::kWholeLine, &text, nullptr);
    if (!more.ok()) return Fail(more.status());
    if (!*more) break;
    texts.push_back(std::move(text));
    if (static_cast<int>(texts.size()) >= batch_size * 16) flush();
  }
  if (!texts.empty()) flush();
  return kExitOk;
}

}  // namespace ulmfit::cli
