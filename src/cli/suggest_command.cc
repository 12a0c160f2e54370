// `ulmfit suggest --model DIR --pool FILE --k N`: the pool's texts most worth labelling next.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "active/strategies.h"
#include "active/suggest.h"
#include "cli/commands.h"
#include "cli/text_io.h"
#include "fmt/format.h"
#include "util/files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/status.h"

namespace ulmfit::cli {
namespace {

struct SuggestFlags {
  std::vector<std::string> models;
  std::string pool, format = "csv", device = "auto", strategy = "margin", output;
  int text_column = TextLines::kWholeLine, id_column = TextLines::kWholeLine;
  SuggestOptions options;  // k, seed, batch size and candidates come from flags
};

FlagTable SuggestTable(SuggestFlags* f) {
  return {
      "ulmfit suggest",
      R"(Scores every text of the pool and writes the N most useful to label next, best first, with
score, predicted label and probabilities: CSV (rank,id,score,label,p_<class>...,text) or JSON
lines. The pool streams through in chunks, so its size does not matter. See
docs/active_learning.md.
)",
      {ModelFlag(&f->models),
       StringFlag("--pool", "FILE", "the unlabelled texts, one per line", &f->pool).Required(),
       IntFlag("--k", "N", "how many texts to suggest", &f->options.k, 1).Required(),
       StringFlag("--strategy", "S",
                  "least_confidence, margin, entropy, random, diverse (the most uncertain "
                  "text of each cluster of similar texts), bald (MC dropout disagreement), "
                  "badge (large, diverse gradients) or kmeans (the most typical text of each "
                  "cluster; no classifier needed)",
                  &f->strategy),
       StringFlag("--format", "", "output format", &f->format).Choices({"csv", "jsonl"}),
       StringFlag("--output", "FILE", "write the suggestions to this file, atomically",
                  &f->output)
           .Default("stdout"),
       IntFlag("--column", "N", "take the text from tab-separated column N, counted from 0",
               &f->text_column, 0)
           .Default("the whole line"),
       IntFlag("--id-column", "N", "take each text's id from tab-separated column N",
               &f->id_column, 0)
           .Default("the line number, from 1"),
       IntFlag("--seed", "N", "fixes random scores and the clustering", &f->options.seed, 0),
       IntFlag("--candidates", "N", "diverse: cluster the k * N most uncertain texts",
               &f->options.candidates_per_query, 1),
       IntFlag("--mc-passes", "N", "bald: stochastic dropout passes per text",
               &f->options.mc_passes, 1),
       DeviceFlag(&f->device), BatchSizeFlag(&f->options.batch_size)}};
}

// Streams the pool through `collector` in chunks, with a progress line on stderr.
absl::Status ScorePool(const SuggestFlags& flags, SuggestionCollector* collector) {
  TextLines lines(flags.pool);
  RETURN_IF_ERROR(lines.Open());
  ProgressLine progress;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> texts, ids;
  auto score_chunk = [&] {
    collector->Add(texts, ids);
    texts.clear();
    ids.clear();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double fraction = lines.fraction();
    const double rate = collector->seen() / std::max(seconds, 1e-9);
    progress.Update(
        fmt::format("suggest: {} texts scored{} {:.0f} texts/s{}", collector->seen(),
                    fraction >= 0 ? fmt::format(" ({:.0f}%)", 100 * fraction) : "", rate,
                    fraction > 0 ? " eta " + FormatDuration(seconds / fraction - seconds) : ""),
        !progress.is_tty());
  };
  std::string text, id;
  while (true) {
    ASSIGN_OR_RETURN(const bool more, lines.Next(flags.text_column, flags.id_column, &text, &id));
    if (!more) break;
    texts.push_back(std::move(text));
    ids.push_back(std::move(id));
    if (static_cast<int>(texts.size()) >= flags.options.batch_size * 16) score_chunk();
  }
  if (!texts.empty()) score_chunk();
  progress.Finish();
  if (collector->seen() == 0) {
    return absl::InvalidArgumentError(flags.pool + ": the pool has no texts");
  }
  return absl::OkStatus();
}

// The chosen texts as CSV (with a header) or JSON lines.
std::string FormatSuggestions(const std::vector<Suggestion>& chosen,
                              const std::vector<std::string>& names, const std::string& format) {
  std::string out;
  if (format == "csv") {
    out = "rank,id,score,label";
    for (const auto& name : names) out += ",p_" + CsvField(name);
    out += ",text\n";
  }
  for (size_t r = 0; r < chosen.size(); ++r) {
    const Suggestion& s = chosen[r];
    if (format == "csv") {
      out += fmt::format("{},{},{:.6f},{}", r + 1, CsvField(s.id), s.score,
                         CsvField(names[s.predicted]));
      for (float p : s.probs) out += fmt::format(",{:.6f}", p);
      out += "," + CsvField(s.text) + "\n";
    } else {
      out += fmt::format("{{\"rank\": {}, \"id\": {}, \"score\": {:.6f}, \"label\": {}, "
                         "\"probs\": {}, \"text\": {}}}\n",
                         r + 1, JsonQuote(s.id), s.score, JsonQuote(names[s.predicted]),
                         ProbsJson(names, s.probs), JsonQuote(s.text));
    }
  }
  return out;
}

}  // namespace

int SuggestCommand(const std::vector<std::string>& args) {
  SuggestFlags flags;
  const FlagTable table = SuggestTable(&flags);
  if (const std::optional<int> exit = ParseCommandLine(table, args)) return *exit;
  const absl::StatusOr<Strategy> strategy = ParseStrategy(flags.strategy);
  if (!strategy.ok()) {
    return UsageError(table, "--strategy: " + std::string(strategy.status().message()));
  }
  flags.options.strategy = *strategy;

  const auto classifier = LoadClassifier(flags.models, flags.device);
  if (!classifier.ok()) return Fail(classifier.status());
  // Only the best candidates are kept as the pool streams through.
  SuggestionCollector collector(*classifier, flags.options);
  if (absl::Status scored = ScorePool(flags, &collector); !scored.ok()) return Fail(scored);
  const std::vector<Suggestion> chosen = collector.Finish();
  const std::string out = FormatSuggestions(chosen, classifier->labels().names(), flags.format);
  LogInfo(fmt::format("suggest: {} of {} texts chosen by {}", chosen.size(), collector.seen(),
                      flags.strategy));
  if (flags.output.empty()) {
    std::fputs(out.c_str(), stdout);
    return kExitOk;
  }
  if (absl::Status s = WriteFileAtomic(flags.output, out); !s.ok()) return Fail(s);
  return kExitOk;
}

}  // namespace ulmfit::cli
