// The C++ half of the experiment drivers in bench/ (bench/sample_efficiency.sh,
// bench/ablations.sh): the splits every method of an experiment shares, and the report
// (Markdown table and SVG chart) made from the collected results.csv.
//
//   bench_data prepare --config FILE [--set KEY=VALUE ...] --sizes 100,300,all --seeds 1,2,3
//                      --out DIR
//     Writes DIR/test.tsv (task.test, sampled to task.max_test_examples with run.seed),
//     DIR/train-SIZE-SEED.tsv (a stratified, seeded sample of SIZE examples of task.train;
//     "all" = every example) as label<TAB>text, and DIR/info.sh, which the shell drivers
//     source: the pretrained model's architecture and tokenizer, for the from-scratch runs.
//   bench_data report --results results.csv --out DIR --title TITLE
//     Writes DIR/results.md (mean, spread and seeds per method and size) and DIR/chart.svg:
//     test error against labels (log scale, one line per method, band = min..max over seeds),
//     or, where every run has the same size (ablations), one bar per method.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <absl/strings/numbers.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <fmt/format.h>

#include "config/config_loader.h"
#include "data/labeled_data.h"
#include "text/tokenizer_file.h"
#include "train/stages.h"
#include "util/files.h"
#include "util/svg_chart.h"

namespace ulmfit {
namespace {
namespace fs = std::filesystem;

int Fail(const std::string& message) {
  std::fprintf(stderr, "bench_data: %s\n", message.c_str());
  return 1;
}

// One line, as the drivers' TSV reader expects: tabs and line breaks become spaces.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

absl::Status WriteTsv(const LabeledData& data, const std::string& path) {
  std::string out;
  for (int64_t i = 0; i < data.size(); ++i) {
    out += OneLine(data.labels[i]) + "\t" + OneLine(data.texts[i]) + "\n";
  }
  return WriteFileAtomic(path, out);
}

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    items.emplace_back(item);
  }
  return items;
}

int Prepare(const std::map<std::string, std::string>& flags,
            const std::vector<std::string>& overrides) {
  for (const char* required : {"config", "sizes", "seeds", "out"}) {
    if (!flags.count(required)) return Fail(fmt::format("prepare needs --{}", required));
  }
  const absl::StatusOr<Config> config = LoadConfig(flags.at("config"), overrides);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  const std::string out = flags.at("out");
  if (absl::Status s = EnsureWritableDir(out, "--out"); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  absl::StatusOr<LabeledData> train = ReadLabeledData(config->task.train, config->task);
  if (!train.ok()) return Fail(std::string(train.status().message()));
  if (config->task.test.empty()) return Fail("task.test is empty: the experiment needs a test set");
  absl::StatusOr<LabeledData> test = ReadLabeledData(config->task.test, config->task);
  if (!test.ok()) return Fail(std::string(test.status().message()));
  if (config->task.max_test_examples > 0) {
    SampleExamples(&*test, config->task.max_test_examples, config->run.seed);
  }
  if (absl::Status s = WriteTsv(*test, (fs::path(out) / "test.tsv").string()); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  for (const std::string& size : Split(flags.at("sizes"))) {
    int64_t n = 0;
    if (size != "all" && (!absl::SimpleAtoi(size, &n) || n <= 0)) {
      return Fail(fmt::format("--sizes: '{}' is neither a positive number nor 'all'", size));
    }
    if (n > train->size()) {
      return Fail(fmt::format("--sizes: {} is more than the {} examples of {}", n,
                              train->size(), config->task.train));
    }
    for (const std::string& seed_text : Split(flags.at("seeds"))) {
      uint64_t seed = 0;
      if (!absl::SimpleAtoi(seed_text, &seed)) {
        return Fail(fmt::format("--seeds: '{}' is not a non-negative integer", seed_text));
      }
      LabeledData sample = *train;
      if (n > 0) SampleExamples(&sample, n, seed);
      const std::string path =
          (fs::path(out) / fmt::format("train-{}-{}.tsv", size, seed_text)).string();
      if (absl::Status s = WriteTsv(sample, path); !s.ok()) return Fail(std::string(s.message()));
    }
  }
  // What the from-scratch runs share with the pretrained ones: architecture and tokenizer.
  const absl::StatusOr<ModelConfig> model = PretrainedModelConfig(*config);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  const std::string pretrained_dir = config->finetune.pretrained.empty()
                                         ? config->run.output_dir
                                         : config->finetune.pretrained;
  const std::string tokenizer = config->text.spm_model.empty()
                                    ? TokenizerFileIn((fs::path(pretrained_dir) / "tokenizer").string())
                                    : config->text.spm_model;
  // The classifier's phases, for the ablations that train all groups at once or only the top.
  const absl::StatusOr<std::vector<UnfreezePhase>> phases = ParsePhases(config->classifier);
  if (!phases.ok()) return Fail(std::string(phases.status().message()));
  int epochs = 0;
  for (const UnfreezePhase& phase : *phases) epochs += phase.epochs;
  const std::string info = fmt::format(
      "# written by bench_data prepare\n"
      "train_examples={}\ntest_examples={}\n"
      "model_flags=(--set model.emb_size={} --set model.hidden_size={} "
      "--set model.num_layers={})\n"
      "pretrained_tokenizer='{}'\n"
      "classifier_epochs={}\nclassifier_first_lr={:g}\nclassifier_last_lr={:g}\n",
      train->size(), test->size(), model->emb_size, model->hidden_size, model->num_layers,
      tokenizer, epochs, phases->front().lr, phases->back().lr);
  if (absl::Status s = WriteFileAtomic((fs::path(out) / "info.sh").string(), info); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::printf("bench_data: %lld training and %lld test examples; splits in %s\n",
              static_cast<long long>(train->size()), static_cast<long long>(test->size()),
              out.c_str());
  return 0;
}

// results.csv as the drivers write it: a header row, then comma-separated fields without
// quotes (the drivers keep commas out of every field).
struct ResultRow {
  std::map<std::string, std::string> fields;
  double Number(const std::string& key) const {
    auto it = fields.find(key);
    return it == fields.end() ? NAN : std::atof(it->second.c_str());
  }
  std::string Text(const std::string& key) const {
    auto it = fields.find(key);
    return it == fields.end() ? "" : it->second;
  }
};

absl::StatusOr<std::vector<ResultRow>> ReadResults(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(fmt::format("{}: cannot read the results", path));
  std::string line;
  std::vector<std::string> header;
  std::vector<ResultRow> rows;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (header.empty()) {
      header = cells;
      continue;
    }
    if (cells.size() != header.size()) {
      return absl::InvalidArgumentError(fmt::format("{}:{}: {} fields, the header has {}", path,
                                                    line_no, cells.size(), header.size()));
    }
    ResultRow row;
    for (size_t i = 0; i < cells.size(); ++i) row.fields[header[i]] = cells[i];
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return absl::InvalidArgumentError(fmt::format("{}: no results yet", path));
  return rows;
}

struct Summary {
  double mean = 0, std = 0, min = 0, max = 0, labels = 0, wall = 0;
  int n = 0;
};

Summary Summarize(const std::vector<const ResultRow*>& rows) {
  Summary s;
  s.n = static_cast<int>(rows.size());
  s.min = INFINITY;
  s.max = -INFINITY;
  for (const ResultRow* r : rows) {
    const double e = r->Number("test_error");
    s.mean += e / s.n;
    s.labels += r->Number("labels") / s.n;
    s.wall += r->Number("wall_s") / s.n;
    s.min = std::min(s.min, e);
    s.max = std::max(s.max, e);
  }
  if (s.n > 1) {
    double sq = 0;
    for (const ResultRow* r : rows) sq += std::pow(r->Number("test_error") - s.mean, 2);
    s.std = std::sqrt(sq / (s.n - 1));
  }
  return s;
}

int Report(const std::map<std::string, std::string>& flags) {
  for (const char* required : {"results", "out", "title"}) {
    if (!flags.count(required)) return Fail(fmt::format("report needs --{}", required));
  }
  absl::StatusOr<std::vector<ResultRow>> rows = ReadResults(flags.at("results"));
  if (!rows.ok()) return Fail(std::string(rows.status().message()));
  // Methods and sizes in the order they first appear; sizes sorted by labels used.
  std::vector<std::string> methods, sizes;
  std::map<std::pair<std::string, std::string>, std::vector<const ResultRow*>> cells;
  std::map<std::string, double> size_labels;
  std::set<std::string> commits, hardware;
  double total_wall = 0;
  for (const ResultRow& r : *rows) {
    const std::string method = r.Text("method"), size = r.Text("size");
    if (std::find(methods.begin(), methods.end(), method) == methods.end()) {
      methods.push_back(method);
    }
    if (!size_labels.count(size)) sizes.push_back(size);
    size_labels[size] = std::max(size_labels[size], r.Number("labels"));
    cells[{method, size}].push_back(&r);
    commits.insert(r.Text("commit"));
    hardware.insert(r.Text("hardware"));
    total_wall += r.Number("wall_s");
  }
  std::stable_sort(sizes.begin(), sizes.end(), [&](const std::string& a, const std::string& b) {
    return size_labels[a] < size_labels[b];
  });

  const std::string title = flags.at("title");
  std::string md = fmt::format("# {}\n\n", title);
  md += "Test error in percent: mean ± sample standard deviation over seeds (number of seeds). "
        "Made by `bench_data report` from results.csv, which holds every run with its seed, "
        "settings, commit, hardware and wall time.\n\n";
  md += "| method |";
  for (const std::string& size : sizes) {  // "all (5452)": how many "all" was
    const std::string labels = fmt::format("{:.0f}", size_labels[size]);
    md += size == labels ? " " + size + " |" : fmt::format(" {} ({}) |", size, labels);
  }
  md += "\n|---|";
  for (size_t i = 0; i < sizes.size(); ++i) md += "---|";
  md += "\n";
  LineChart chart;
  chart.title = title;
  chart.x_label = "labelled training examples";
  chart.y_label = "test error";
  chart.log_x = true;
  chart.y_percent = true;
  for (const std::string& method : methods) {
    md += "| " + method + " |";
    ChartSeries series;
    series.name = method;
    for (const std::string& size : sizes) {
      auto it = cells.find({method, size});
      if (it == cells.end()) {
        md += " |";
        continue;
      }
      const Summary s = Summarize(it->second);
      md += s.n > 1 ? fmt::format(" {:.1f} ± {:.1f} ({}) |", 100 * s.mean, 100 * s.std, s.n)
                    : fmt::format(" {:.1f} (1) |", 100 * s.mean);
      series.points.push_back({s.labels, s.mean, s.min, s.max});
    }
    md += "\n";
    chart.series.push_back(std::move(series));
  }
  md += "\nMean wall time per run in seconds (training and testing; the shared LM fine-tuning "
        "is not included):\n\n| method |";
  for (const std::string& size : sizes) md += " " + size + " |";
  md += "\n|---|";
  for (size_t i = 0; i < sizes.size(); ++i) md += "---|";
  md += "\n";
  for (const std::string& method : methods) {
    md += "| " + method + " |";
    for (const std::string& size : sizes) {
      auto it = cells.find({method, size});
      md += it == cells.end() ? " |" : fmt::format(" {:.0f} |", Summarize(it->second).wall);
    }
    md += "\n";
  }
  md += fmt::format("\n{} runs, {:.1f} hours in all. Commit: {}. Hardware: {}.\n", rows->size(),
                    total_wall / 3600,
                    absl::StrJoin(commits.begin(), commits.end(), ", "),
                    absl::StrJoin(hardware.begin(), hardware.end(), "; "));
  // One size (ablations): a bar per method; several: error against labels.
  std::string svg = RenderSvg(chart);
  if (sizes.size() == 1) {
    BarChart bars;
    bars.title = title;
    bars.value_label = fmt::format("test error ({} labelled examples; whiskers: min..max over seeds)",
                                   size_labels[sizes[0]]);
    bars.percent = true;
    for (const ChartSeries& series : chart.series) {
      for (const ChartPoint& p : series.points) {
        bars.bars.push_back({series.name, p.y, p.low, p.high});
      }
    }
    svg = RenderBarSvg(bars);
  }
  const std::string out = flags.at("out");
  if (absl::Status s = EnsureWritableDir(out, "--out"); !s.ok()) return Fail(std::string(s.message()));
  for (const auto& [name, text] :
       {std::pair<std::string, std::string>{"results.md", md}, {"chart.svg", svg}}) {
    if (absl::Status s = WriteFileAtomic((fs::path(out) / name).string(), text); !s.ok()) {
      return Fail(std::string(s.message()));
    }
  }
  std::printf("bench_data: %s and %s written\n", (fs::path(out) / "results.md").c_str(),
              (fs::path(out) / "chart.svg").c_str());
  return 0;
}

int Main(int argc, char** argv) {
  const std::string usage =
      "usage: bench_data prepare --config FILE [--set KEY=VALUE ...] --sizes LIST --seeds LIST "
      "--out DIR\n       bench_data report --results CSV --out DIR --title TITLE";
  if (argc < 2) return Fail(usage);
  const std::string command = argv[1];
  std::map<std::string, std::string> flags;
  std::vector<std::string> overrides;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || i + 1 >= argc) return Fail(fmt::format("{}\n{}", arg, usage));
    if (arg == "--set") {
      overrides.push_back(argv[++i]);
    } else {
      flags[arg.substr(2)] = argv[++i];
    }
  }
  if (command == "prepare") return Prepare(flags, overrides);
  if (command == "report") return Report(flags);
  return Fail(usage);
}

}  // namespace
}  // namespace ulmfit

int main(int argc, char** argv) { return ulmfit::Main(argc, argv); }
