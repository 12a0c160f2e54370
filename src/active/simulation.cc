#include "active/simulation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "active/strategies.h"
#include "active/pool_learner.h"
#include "active/suggest.h"
#include "config/config_loader.h"
#include "data/labeled_data.h"
#include "infer/classifier.h"
#include "train/lm_trainer.h"
#include "util/cpu_env.h"
#include "util/device.h"
#include "util/files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/random.h"
#include "util/seed_streams.h"
#include "util/svg_chart.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

absl::StatusOr<std::vector<int64_t>> ReadIndices(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(path + ": cannot read");
  std::vector<int64_t> indices;
  for (std::string line; std::getline(in, line);) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(line, &value)) {
      return absl::DataLossError(fmt::format("{}: bad line '{}'; delete the round's folder and "
                                             "run again", path, line));
    }
    indices.push_back(value);
  }
  return indices;
}

std::string IndicesText(const std::vector<int64_t>& indices) {
  std::string out;
  for (int64_t i : indices) out += std::to_string(i) + "\n";
  return out;
}

std::string GitCommit() {
  std::FILE* pipe = ::popen("git rev-parse --short HEAD 2>/dev/null", "r");
  if (pipe == nullptr) return "unknown";
  char buf[64] = {0};
  const bool ok = std::fgets(buf, sizeof(buf), pipe) != nullptr;
  ::pclose(pipe);
  std::string commit = ok ? std::string(absl::StripAsciiWhitespace(buf)) : "";
  return commit.empty() ? "unknown" : commit;
}

constexpr const char* kCsvHeader =
    "strategy,seed,round,labels,test_error,test_macro_f1,train_seconds,query_seconds";

std::string CsvRow(const SimulationRow& r) {
  return fmt::format("{},{},{},{},{:.6f},{:.6f},{:.1f},{:.1f}", r.strategy, r.seed, r.round,
                     r.labels, r.test_error, r.test_macro_f1, r.train_seconds, r.query_seconds);
}

// Rows already in results.csv, by (strategy, seed, round): a rerun skips them.
std::map<std::tuple<std::string, uint64_t, int>, SimulationRow> ReadRows(const std::string& path) {
  std::map<std::tuple<std::string, uint64_t, int>, SimulationRow> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const std::vector<std::string> f = absl::StrSplit(line, ',');
    SimulationRow r;
    if (f.size() != 8 || !absl::SimpleAtoi(f[1], &r.seed) || !absl::SimpleAtoi(f[2], &r.round) ||
        !absl::SimpleAtoi(f[3], &r.labels) || !absl::SimpleAtod(f[4], &r.test_error) ||
        !absl::SimpleAtod(f[5], &r.test_macro_f1) || !absl::SimpleAtod(f[6], &r.train_seconds) ||
        !absl::SimpleAtod(f[7], &r.query_seconds)) {
      continue;  // a torn last line from an interrupted run
    }
    r.strategy = f[0];
    rows[{r.strategy, r.seed, r.round}] = r;
  }
  return rows;
}

}  // namespace

std::vector<int64_t> SeedSet(const std::vector<std::string>& labels, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(StreamSeed(seed, SeedStream::kActiveSeedSet));
  std::vector<int64_t> order(labels.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  Shuffle(&order, rng);
  std::set<std::string> covered;
  std::vector<int64_t> chosen, rest;
  for (int64_t i : order) {
    if (covered.insert(labels[i]).second && static_cast<int64_t>(chosen.size()) < n) {
      chosen.push_back(i);
    } else {
      rest.push_back(i);
    }
  }
  for (int64_t i : rest) {
    if (static_cast<int64_t>(chosen.size()) >= n) break;
    chosen.push_back(i);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

namespace {

// One simulation: a strategy from one seed set, round by round.
struct SimulationRun {
  const Config& config;
  PoolLearner& learner;
  Strategy strategy;
  std::string name;    // the strategy's name, in paths and rows
  uint64_t seed;
  fs::path dir;        // <output_dir>/active/<strategy>/seed-<seed>
};

// The uncertainty strategies need a classifier worth asking; below active.cold_start_labels
// labels they choose by active.cold_start instead. random and kmeans need none.
Strategy StrategyForRound(const ActiveConfig& active, Strategy strategy, size_t labelled) {
  const bool needs_classifier = strategy != Strategy::kRandom && strategy != Strategy::kKMeans;
  const bool cold = labelled == 0 || static_cast<int64_t>(labelled) < active.cold_start_labels;
  return needs_classifier && cold ? active.cold_start : strategy;
}

// The strategy picks the next active.query_size texts from the unlabelled rest of the pool
// with the round's classifier (null before the first label); they join `labelled` (sorted).
void QueryRound(const SimulationRun& run, int round, TextClassifier* model,
                std::vector<int64_t>* labelled) {
  const ActiveConfig& active = run.config.active;
  const std::set<int64_t> taken(labelled->begin(), labelled->end());
  std::vector<int64_t> candidates;
  for (int64_t i = 0; i < run.learner.pool_size(); ++i) {
    if (taken.count(i) == 0) candidates.push_back(i);
  }
  const Strategy used = StrategyForRound(active, run.strategy, labelled->size());
  const uint64_t seed = RoundSeed(run.seed, static_cast<uint64_t>(round));
  const CandidateViews views = run.learner.Views(used, model, candidates, seed);
  SelectOptions options;
  options.k = active.query_size;
  options.seed = seed;
  options.candidates_per_query = active.candidates_per_query;
  options.balanced = static_cast<int64_t>(labelled->size()) < active.balanced_below;
  for (int64_t position : SelectBatch(used, views, options)) {
    labelled->push_back(candidates.at(position));
  }
  std::sort(labelled->begin(), labelled->end());
}

// Runs (or continues) one simulation; its rows go to `csv_path` as they finish and to `rows`.
// A round with labels trains a classifier in memory (the same training seed for every strategy
// at a given seed and round, so strategies compare pairwise), tests it and queries the next
// texts; a round without (a cold start) only queries. Returns a kInterrupted result when a
// signal stopped a round, kCompleted otherwise.
absl::StatusOr<StageResult> RunSimulation(
    const SimulationRun& run, const std::vector<int64_t>& seed_set,
    const std::map<std::tuple<std::string, uint64_t, int>, SimulationRow>& done,
    const std::string& csv_path, std::vector<SimulationRow>* rows) {
  const ActiveConfig& active = run.config.active;
  std::vector<int64_t> labelled = seed_set;
  for (int round = 0; round <= active.rounds; ++round) {
    const fs::path round_dir = run.dir / fmt::format("round-{:02d}", round);
    const std::string next_indices_path =
        (run.dir / fmt::format("round-{:02d}", round + 1) / "labelled.txt").string();
    if (fs::exists(round_dir / "labelled.txt")) {
      ASSIGN_OR_RETURN(labelled, ReadIndices((round_dir / "labelled.txt").string()));
    } else {
      RETURN_IF_ERROR(EnsureWritableDir(round_dir.string(), "run.output_dir"));
      RETURN_IF_ERROR(
          WriteFileAtomic((round_dir / "labelled.txt").string(), IndicesText(labelled)));
    }
    const auto previous = done.find({run.name, run.seed, round});
    if (previous != done.end() && (round == active.rounds || fs::exists(next_indices_path))) {
      rows->push_back(previous->second);
      continue;  // finished before an interruption
    }
    std::optional<SimulationRow> row;
    PoolLearner::Trained trained;
    if (!labelled.empty()) {
      LogInfo(fmt::format("active-learn: {} seed {} round {}/{}: training on {} labels",
                          run.name, run.seed, round, active.rounds, labelled.size()));
      const auto train_start = Clock::now();
      const uint64_t train_seed =
          StreamSeed(RoundSeed(run.seed, static_cast<uint64_t>(round)), SeedStream::kClassify);
      const fs::path metrics = round_dir / "metrics.jsonl";
      std::error_code ec;
      fs::remove(metrics, ec);  // an interrupted round starts over
      ASSIGN_OR_RETURN(trained, run.learner.Train(labelled, train_seed,
                                                  (round_dir / "classifier").string(),
                                                  metrics.string()));
      if (trained.result.outcome == StageOutcome::kInterrupted) return trained.result;
      const ClassificationMetrics test = run.learner.Test(trained.model);
      row = SimulationRow{run.name, run.seed, round, static_cast<int64_t>(labelled.size()),
                          test.error_rate, test.macro_f1, SecondsSince(train_start), 0};
      RemoveTree((round_dir / "classifier").string());
    }
    const auto query_start = Clock::now();
    if (round < active.rounds) {
      QueryRound(run, round, trained.model ? &trained.model : nullptr, &labelled);
      std::error_code ec;
      fs::create_directories(fs::path(next_indices_path).parent_path(), ec);
      RETURN_IF_ERROR(WriteFileAtomic(next_indices_path, IndicesText(labelled)));
    }
    if (!row) continue;
    row->query_seconds = SecondsSince(query_start);
    RETURN_IF_ERROR(AppendLine(csv_path, CsvRow(*row)));
    LogInfo(fmt::format("active-learn: {} seed {} round {}: {} labels, test error {:.2f}% "
                        "(train {:.1f} s, query {:.1f} s)",
                        run.name, run.seed, round, row->labels, 100 * row->test_error,
                        row->train_seconds, row->query_seconds));
    rows->push_back(*row);
  }
  return StageResult{StageOutcome::kCompleted};
}

// results.md and error_vs_labels.svg, named after the data set's folder (data/trec/train.tsv.gz
// -> trec), else the file.
absl::Status WriteSimulationReports(const Config& config, const fs::path& sim_dir,
                                    const std::vector<SimulationRow>& rows,
                                    const std::string& csv_path) {
  const fs::path train_path(config.task.train);
  const std::string data_name = train_path.has_parent_path()
                                    ? train_path.parent_path().filename().string()
                                    : train_path.filename().string();
  const std::string title = fmt::format("Active learning on {} ({} labels per round)", data_name,
                                        config.active.query_size);
  RETURN_IF_ERROR(WriteFileAtomic((sim_dir / "results.md").string(), SimulationMarkdown(rows)));
  RETURN_IF_ERROR(
      WriteFileAtomic((sim_dir / "error_vs_labels.svg").string(), SimulationChart(rows, title)));
  LogInfo(fmt::format("active-learn: done; {} rows in {}, table {}, chart {}", rows.size(),
                      csv_path, (sim_dir / "results.md").string(),
                      (sim_dir / "error_vs_labels.svg").string()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StageResult> RunActiveLearningSimulation(const Config& config) {
  const ActiveConfig& active = config.active;
  if (config.task.test.empty()) {
    return absl::InvalidArgumentError(
        "active-learn measures test error per round: set task.test to a labelled test file");
  }
  const fs::path sim_dir = fs::path(config.run.output_dir) / "active";
  RETURN_IF_ERROR(EnsureWritableDir(sim_dir.string(), "run.output_dir"));

  // The pool: task.train (and task.valid, if given, stays out of it), labels hidden.
  ASSIGN_OR_RETURN(LabeledData pool, ReadLabeledData(config.task.train, config.task));
  if (active.max_pool > 0) SampleExamples(&pool, active.max_pool, config.run.seed);
  if (pool.size() < active.seed_examples + active.query_size) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: {} examples are too few for active.seed_examples ({}) plus one round of "
        "active.query_size ({})", config.task.train, pool.size(), active.seed_examples,
        active.query_size));
  }
  ASSIGN_OR_RETURN(LabeledData test, ReadLabeledData(config.task.test, config.task));
  const int64_t max_test =
      active.max_test_examples > 0 ? active.max_test_examples : config.task.max_test_examples;
  if (max_test > 0) SampleExamples(&test, max_test, config.run.seed);
  // Every label of the pool, known from the start (a user names them before labelling), so a
  // round whose labels miss a class still has a head for it.
  ASSIGN_OR_RETURN(const LabelSet labels, LabelSet::FromTrainingData(pool));
  const auto load_start = Clock::now();
  ASSIGN_OR_RETURN(std::unique_ptr<PoolLearner> learner,
                   PoolLearner::Load(config, LanguageModelRun(config), pool, test, labels));
  LogInfo(fmt::format("active-learn: the fine-tuned LM and {} + {} texts' token ids loaded in "
                      "{:.1f} s", pool.size(), test.size(), SecondsSince(load_start)));
  const std::vector<uint64_t>& seeds = active.seeds;
  const std::vector<Strategy>& strategies = active.strategies;
  // As the config wrote them before they were lists: "random,entropy", "1,2".
  const std::string strategies_text = absl::StrJoin(
      strategies, ",", [](std::string* out, Strategy s) { out->append(EnumName(s)); });
  const std::string seeds_text = absl::StrJoin(seeds, ",");

  const std::string csv_path = (sim_dir / "results.csv").string();
  const auto done = ReadRows(csv_path);
  if (!fs::exists(csv_path)) RETURN_IF_ERROR(WriteFileAtomic(csv_path, std::string(kCsvHeader) + "\n"));
  RETURN_IF_ERROR(WriteFileAtomic(
      (sim_dir / "meta.json").string(),
      JsonLine()
          .Add("commit", GitCommit()).Add("hardware", DescribeComputeEnvironment())
          .Add("train", config.task.train).Add("test", config.task.test)
          .Add("pool", pool.size()).Add("seed_examples", active.seed_examples)
          .Add("query_size", active.query_size).Add("rounds", active.rounds)
          .Add("strategies", strategies_text).Add("seeds", seeds_text)
          .Add("cold_start", EnumName(active.cold_start))
          .Add("cold_start_labels", active.cold_start_labels)
          .Add("balanced_below", active.balanced_below).Add("mc_passes", active.mc_passes)
          .Add("phase_epochs", absl::StrJoin(config.classifier.phase_epochs, ","))
          .str() + "\n"));
  LogInfo(fmt::format("active-learn: pool of {} texts, {} seed labels, {} rounds of {}, "
                      "strategies {}, seeds {}; results in {}",
                      pool.size(), active.seed_examples, active.rounds, active.query_size,
                      strategies_text, seeds_text, csv_path));

  std::vector<SimulationRow> rows;
  for (uint64_t seed : seeds) {
    const std::vector<int64_t> seed_set = active.seed_examples > 0
                                              ? SeedSet(pool.labels, active.seed_examples, seed)
                                              : std::vector<int64_t>{};
    for (Strategy strategy : strategies) {
      const std::string name(StrategyName(strategy));
      const SimulationRun run{config, *learner, strategy, name, seed,
                              sim_dir / name / fmt::format("seed-{}", seed)};
      ASSIGN_OR_RETURN(const StageResult result,
                       RunSimulation(run, seed_set, done, csv_path, &rows));
      if (result.outcome == StageOutcome::kInterrupted) return result;
    }
  }
  RETURN_IF_ERROR(WriteSimulationReports(config, sim_dir, rows, csv_path));
  return StageResult{StageOutcome::kCompleted};
}

namespace {

struct Summary {
  double mean = 0, min = 0, max = 0;
  int n = 0;
};

// (strategy in first-seen order) -> labels -> summary of test error over seeds.
std::vector<std::pair<std::string, std::map<int64_t, Summary>>> Summarize(
    const std::vector<SimulationRow>& rows) {
  std::vector<std::pair<std::string, std::map<int64_t, Summary>>> out;
  for (const SimulationRow& r : rows) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == r.strategy; });
    if (it == out.end()) {
      out.push_back({r.strategy, {}});
      it = out.end() - 1;
    }
    Summary& s = it->second[r.labels];
    s.min = s.n == 0 ? r.test_error : std::min(s.min, r.test_error);
    s.max = s.n == 0 ? r.test_error : std::max(s.max, r.test_error);
    s.mean = (s.mean * s.n + r.test_error) / (s.n + 1);
    ++s.n;
  }
  return out;
}

}  // namespace

std::string SimulationMarkdown(const std::vector<SimulationRow>& rows) {
  const auto summary = Summarize(rows);
  std::set<int64_t> label_counts;
  for (const SimulationRow& r : rows) label_counts.insert(r.labels);
  std::string out = "| labels |";
  for (const auto& [name, unused] : summary) out += " " + name + " |";
  out += "\n|---|";
  for (size_t i = 0; i < summary.size(); ++i) out += "---|";
  out += "\n";
  for (int64_t labels : label_counts) {
    out += fmt::format("| {} |", labels);
    for (const auto& [name, by_labels] : summary) {
      const auto it = by_labels.find(labels);
      out += it == by_labels.end()
                 ? " |"
                 : fmt::format(" {:.2f}% ({:.2f}-{:.2f}, n={}) |", 100 * it->second.mean,
                               100 * it->second.min, 100 * it->second.max, it->second.n);
    }
    out += "\n";
  }
  return out + "\nTest error: mean over seeds (min-max, number of seeds).\n\n" +
         SimulationSummary(rows);
}

std::string SimulationSummary(const std::vector<SimulationRow>& rows) {
  // (strategy, seed) -> labels -> error; strategies in first-seen order.
  std::vector<std::string> strategies;
  std::map<std::string, std::map<uint64_t, std::map<int64_t, double>>> curves;
  for (const SimulationRow& r : rows) {
    if (curves.count(r.strategy) == 0) strategies.push_back(r.strategy);
    curves[r.strategy][r.seed][r.labels] = r.test_error;
  }
  const auto area = [](const std::map<int64_t, double>& curve) {
    double sum = 0;
    for (const auto& [labels, error] : curve) sum += error;
    return curve.empty() ? 0.0 : sum / static_cast<double>(curve.size());
  };
  const auto mean_at = [&](const std::string& strategy, int64_t labels, int* n) {
    double sum = 0;
    *n = 0;
    for (const auto& [seed, curve] : curves[strategy]) {
      const auto it = curve.find(labels);
      if (it == curve.end()) continue;
      sum += it->second;
      ++*n;
    }
    return *n > 0 ? sum / *n : 0.0;
  };
  const bool has_random = curves.count("random") != 0;
  int64_t final_labels = 0;
  double random_final = 0;
  if (has_random) {
    for (const auto& [seed, curve] : curves["random"]) {
      if (!curve.empty()) final_labels = std::max(final_labels, curve.rbegin()->first);
    }
    int n = 0;
    random_final = mean_at("random", final_labels, &n);
  }
  std::string out =
      "| strategy | area under the curve (mean error over rounds) | vs random, same seed | "
      "seeds better than random | labels to reach random's final error |\n"
      "|---|---|---|---|---|\n";
  for (const std::string& strategy : strategies) {
    std::vector<double> areas, diffs;
    for (const auto& [seed, curve] : curves[strategy]) {
      areas.push_back(area(curve));
      if (has_random && curves["random"].count(seed)) {
        diffs.push_back(area(curve) - area(curves["random"][seed]));
      }
    }
    const auto mean_sd = [](const std::vector<double>& v) {
      double mean = 0, var = 0;
      for (double x : v) mean += x / static_cast<double>(v.size());
      for (double x : v) var += (x - mean) * (x - mean);
      return std::pair<double, double>{
          mean, v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0};
    };
    const auto [area_mean, area_sd] = mean_sd(areas);
    std::string versus = "", better = "", reach = "";
    if (has_random && !diffs.empty()) {
      const auto [diff_mean, diff_sd] = mean_sd(diffs);
      versus = fmt::format("{:+.2f} ± {:.2f} points", 100 * diff_mean, 100 * diff_sd);
      int wins = 0;
      for (double d : diffs) wins += d < 0 ? 1 : 0;
      better = fmt::format("{} of {}", wins, diffs.size());
      std::set<int64_t> counts;
      for (const auto& [seed, curve] : curves[strategy]) {
        for (const auto& [labels, error] : curve) counts.insert(labels);
      }
      reach = "not reached";
      for (int64_t labels : counts) {
        int n = 0;
        if (mean_at(strategy, labels, &n) <= random_final + 1e-12) {
          reach = fmt::format("{} ({:.0f}% of {})", labels,
                              100.0 * static_cast<double>(labels) / final_labels, final_labels);
          break;
        }
      }
    }
    out += fmt::format("| {} | {:.2f}% ± {:.2f} ({} seeds) | {} | {} | {} |\n", strategy,
                       100 * area_mean, 100 * area_sd, areas.size(), versus, better, reach);
  }
  return out + fmt::format(
                   "\nArea: each seed's mean test error over its rounds, then mean ± standard "
                   "deviation over seeds. vs random: the same seed's difference (negative = "
                   "fewer errors than random), mean ± standard deviation. Random's final error: "
                   "{:.2f}% at {} labels (mean over seeds).\n",
                   100 * random_final, final_labels);
}

std::string SimulationChart(const std::vector<SimulationRow>& rows, const std::string& title) {
  LineChart chart;
  chart.title = title;
  chart.x_label = "labelled examples";
  chart.y_label = "test error";
  chart.y_percent = true;
  for (const auto& [name, by_labels] : Summarize(rows)) {
    ChartSeries series{name, {}};
    for (const auto& [labels, s] : by_labels) {
      series.points.push_back({static_cast<double>(labels), s.mean, s.min, s.max});
    }
    chart.series.push_back(std::move(series));
  }
  return RenderSvg(chart);
}

}  // namespace ulmfit
