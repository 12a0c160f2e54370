#include "active/label_session.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "active/strategies.h"
#include "active/suggest.h"
#include "data/corpus.h"
#include "infer/classifier.h"
#include "train/lm_trainer.h"
#include "train/stages.h"
#include "util/device.h"
#include "util/dir_lock.h"
#include "util/files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/seed_streams.h"
#include "util/signals.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

// Keys for labels: 1-9, then letters other than the command keys s, u and q.
const std::string kLabelKeys = "123456789abcdefghijklmnoprtvwxyz";

// Puts a terminal in raw mode (no line buffering, no echo) and restores it on destruction.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::isatty(fd_) && ::tcgetattr(fd_, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      active_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
    }
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// The next key, or -1 at the end of input or when a stop signal arrives. Polls so that Ctrl-C
// (SIGINT, recorded by the stop handler) ends the wait.
int ReadKey(int fd) {
  while (StopSignal() == 0) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, 200);
    if (ready < 0 && errno != EINTR) return -1;
    if (ready <= 0) continue;
    char c = 0;
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 1) return static_cast<unsigned char>(c);
    if (n == 0 || (n < 0 && errno != EINTR)) return -1;
  }
  return -1;
}

std::string OneLine(std::string text) {
  std::replace_if(text.begin(), text.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return text;
}

// Appends `line` to `path` and forces it to disk; returns the file's size before.
absl::StatusOr<off_t> AppendDurably(const std::string& path, const std::string& line) {
  // Read-write: the last byte is read back to see whether the file ends in a newline.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return absl::PermissionDeniedError(path + ": cannot open for appending");
  const off_t before = ::lseek(fd, 0, SEEK_END);
  std::string data = line;
  // A file that does not end in a newline (edited by hand) gets one first.
  if (before > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, before - 1) == 1 && last != '\n') data = "\n" + data;
  }
  const bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return absl::DataLossError(path + ": cannot append (disk full?)");
  return before;
}

absl::Status TruncateDurably(const std::string& path, off_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  const bool ok = fd >= 0 && ::ftruncate(fd, size) == 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  return ok ? absl::OkStatus() : absl::DataLossError(path + ": cannot undo the last answer");
}

// What the labelled file already has: label<TAB>text lines.
struct LabelledFile {
  std::set<std::string> texts;
  std::vector<std::string> labels_in_order;  // distinct, first-seen order
  int64_t count = 0;
};

absl::StatusOr<LabelledFile> ReadLabelledFile(const std::string& path) {
  LabelledFile file;
  std::ifstream in(path);
  if (!in) return file;  // created on the first answer
  int64_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      return absl::InvalidArgumentError(fmt::format(
          "{}:{}: not a label<TAB>text line; ulmfit label appends to a TSV file whose first "
          "column is the label and second the text", path, line_number));
    }
    const std::string label = line.substr(0, tab);
    if (std::find(file.labels_in_order.begin(), file.labels_in_order.end(), label) ==
        file.labels_in_order.end()) {
      file.labels_in_order.push_back(label);
    }
    file.texts.insert(line.substr(tab + 1, line.find('\t', tab + 1) - tab - 1));
    ++file.count;
  }
  return file;
}

std::set<int64_t> ReadSkipped(const std::string& path) {
  std::set<int64_t> skipped;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    int64_t value = 0;
    if (absl::SimpleAtoi(line, &value)) skipped.insert(value);
  }
  return skipped;
}

// The validation accuracy of a classifier run's best epoch (from metrics.jsonl), or -1 when there
// is none (too few labels to hold any out: the validation loss is then 0).
double BestValidAccuracy(const fs::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  double best = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"event\": \"epoch\"") == std::string::npos) continue;
    const std::optional<double> accuracy = JsonNumberField(line, "valid_acc");
    const std::optional<double> loss = JsonNumberField(line, "valid_loss");
    if (accuracy && loss && *loss > 0) best = std::max(best, *accuracy);
  }
  return best;
}

// The state of one `ulmfit label` session and its steps: what is labelled and skipped, the
// queue of texts to show, the newest classifier, and the answers that can be undone.
class LabelSession {
 public:
  LabelSession(const Config& config, std::vector<std::string> pool, LabelledFile labelled,
               std::vector<std::string> labels, Strategy strategy, torch::Device device,
               std::FILE* out)
      : config_(config), active_(config.active), pool_(std::move(pool)),
        labelled_(std::move(labelled)), labels_(std::move(labels)), strategy_(strategy),
        device_(device), out_(out),
        label_dir_(fs::path(config.run.output_dir) / "label"),
        skipped_path_((label_dir_ / "skipped.txt").string()),
        skipped_(ReadSkipped(skipped_path_)) {
    // The newest classifier: the last retraining here, else the run's stage 3, else none (then
    // texts come in a seeded random order until the first retraining).
    while (fs::exists(RoundDir(retrain_round_ + 1) / "model")) ++retrain_round_;
    if (retrain_round_ > 0) valid_accuracy_ = BestValidAccuracy(RoundDir(retrain_round_));
  }

  // Shows texts and takes answers until the pool is done or the user quits; the exit code.
  absl::StatusOr<int> Run(int in_fd);

 private:
  struct Answer {
    Suggestion shown;
    bool skip = false;
    off_t size_before = 0;  // task.train's size before the answer was appended
  };

  fs::path RoundDir(int round) const { return label_dir_ / fmt::format("round-{:03d}", round); }
  std::string ModelDir() const;
  // The next texts to show, most useful first; ids are 0-based pool line indices.
  absl::Status Refill();
  void RefillInRandomOrder(std::vector<std::string> texts, std::vector<std::string> ids);
  // Retrains the classifier on task.train (stage 2 first if no fine-tuned LM exists yet).
  absl::Status Retrain();
  void Show(const Suggestion& current) const;
  absl::Status Skip(const Suggestion& current);
  absl::Status Undo();
  absl::Status Label(const Suggestion& current, size_t label);

  const Config& config_;
  const ActiveConfig& active_;
  const std::vector<std::string> pool_;
  LabelledFile labelled_;
  const std::vector<std::string> labels_;
  const Strategy strategy_;
  Strategy shown_strategy_ = Strategy::kRandom;  // the one that chose the current queue
  const torch::Device device_;
  std::FILE* out_;
  const fs::path label_dir_;
  const std::string skipped_path_;
  std::set<int64_t> skipped_;
  int retrain_round_ = 0;
  double valid_accuracy_ = -1;
  std::deque<Suggestion> queue_;
  bool model_knows_labels_ = false;
  std::vector<Answer> undo_;
  int64_t since_retrain_ = 0;
};

std::string LabelSession::ModelDir() const {
  if (retrain_round_ > 0) return (RoundDir(retrain_round_) / "model").string();
  const fs::path stage3 = fs::path(config_.run.output_dir) / "model";
  return fs::exists(stage3 / kClassifierWeightsFile) ? stage3.string() : "";
}

void LabelSession::RefillInRandomOrder(std::vector<std::string> texts,
                                       std::vector<std::string> ids) {
  std::mt19937_64 rng(
      LabelQueueSeed(config_.run.seed, static_cast<uint64_t>(labelled_.count)));
  for (size_t i = 0; i < texts.size() && queue_.size() < static_cast<size_t>(active_.query_size);
       ++i) {
    const size_t j = i + rng() % (texts.size() - i);
    std::swap(texts[i], texts[j]);
    std::swap(ids[i], ids[j]);
    Suggestion s;
    s.id = ids[i];
    s.text = texts[i];
    s.score = -1;
    queue_.push_back(std::move(s));
  }
}

absl::Status LabelSession::Refill() {
  queue_.clear();
  std::vector<std::string> texts, ids;
  for (size_t i = 0; i < pool_.size(); ++i) {
    if (skipped_.count(static_cast<int64_t>(i)) || labelled_.texts.count(OneLine(pool_[i]))) {
      continue;
    }
    texts.push_back(pool_[i]);
    ids.push_back(std::to_string(i));
  }
  if (texts.empty()) return absl::OkStatus();
  const std::string dir = ModelDir();
  // Too few labels for a classifier worth asking (or none yet): the cold start chooses, by the
  // fine-tuned LM's view of the texts where stage 2 has run.
  const bool cold = dir.empty() || labelled_.count < active_.cold_start_labels;
  Strategy strategy = strategy_;
  if (cold && strategy != Strategy::kKMeans) strategy = active_.cold_start;
  const fs::path lm_run(LanguageModelRun(config_));
  std::optional<ClassifierEnsemble> model;
  if (strategy == Strategy::kKMeans && cold) {
    const absl::StatusOr<FineTunedModel> lm = FindFineTunedModel(config_, lm_run.string());
    if (lm.ok()) {
      ASSIGN_OR_RETURN(Classifier encoder,
                       Classifier::WithEncoderOf(lm->config, lm->tokenizer, lm->weights,
                                                 LabelSet::FromLabels(labels_), device_));
      model.emplace(std::vector<Classifier>{std::move(encoder)});
    }
  } else if (!dir.empty() && strategy != Strategy::kRandom) {
    ASSIGN_OR_RETURN(ClassifierEnsemble loaded, ClassifierEnsemble::Load({dir}, device_));
    model.emplace(std::move(loaded));
  }
  if (!model) {
    RefillInRandomOrder(std::move(texts), std::move(ids));
    return absl::OkStatus();
  }
  // A model trained on other labels (say, before a label was added) still ranks uncertainty,
  // but its predicted label is not shown; an LM's untrained head guesses nothing.
  model_knows_labels_ = !cold && model->labels().names() == labels_;
  shown_strategy_ = strategy;
  SuggestOptions options;
  options.strategy = strategy;
  options.mc_passes = active_.mc_passes;
  options.balanced = labelled_.count < active_.balanced_below;
  options.k = active_.query_size;
  options.candidates_per_query = active_.candidates_per_query;
  options.seed = LabelQueueSeed(config_.run.seed, static_cast<uint64_t>(labelled_.count));
  options.batch_size = config_.classifier.batch_size;
  SuggestionCollector collector(*model, options);
  collector.Add(texts, ids);
  for (Suggestion& s : collector.Finish()) queue_.push_back(std::move(s));
  return absl::OkStatus();
}

absl::Status LabelSession::Retrain() {
  fmt::print(out_, "\nretraining the classifier on {} labels ...\n", labelled_.count);
  std::fflush(out_);
  Config round_config = config_;
  if (!fs::exists(fs::path(LanguageModelRun(config_)) / "finetune" / "lm.pt")) {
    // Stage 2 once, on the pool's text (and the labelled texts), before the first retraining.
    if (round_config.task.unlabeled.empty()) round_config.task.unlabeled = active_.pool;
    round_config.task.test.clear();
    ASSIGN_OR_RETURN(const StageResult tuned, RunFinetune(round_config, false));
    if (tuned.outcome == StageOutcome::kInterrupted) return absl::CancelledError("stopped");
  }
  const fs::path round_dir = RoundDir(retrain_round_ + 1);
  RemoveTree(round_dir.string());
  round_config.run.output_dir = round_dir.string();
  round_config.task.format = TaskFormat::kTsv;
  round_config.task.header = HeaderMode::kNo;
  round_config.task.label_column = "0";
  round_config.task.text_columns = {"1"};
  round_config.task.valid.clear();
  round_config.task.test.clear();
  ASSIGN_OR_RETURN(const StageResult trained,
                   RunClassifyFrom(round_config, false, LanguageModelRun(config_)));
  if (trained.outcome == StageOutcome::kInterrupted) return absl::CancelledError("stopped");
  RemoveTree((round_dir / "classifier").string());  // checkpoints; model/ is what is used
  ++retrain_round_;
  // Too few labels to hold any out: no validation (its loss would be 0).
  valid_accuracy_ =
      trained.best_valid && trained.best_valid->loss > 0 ? trained.best_valid->accuracy : -1;
  if (valid_accuracy_ >= 0) {
    fmt::print(out_, "retrained on {} labels: validation accuracy {:.3f}\n", labelled_.count,
               valid_accuracy_);
  } else {
    fmt::print(out_, "retrained on {} labels (too few to hold out a validation split)\n",
               labelled_.count);
  }
  return Refill();
}

void LabelSession::Show(const Suggestion& current) const {
  std::string status = fmt::format("{} labelled, {} since retraining (every {})",
                                   labelled_.count, since_retrain_, active_.retrain_every);
  if (valid_accuracy_ >= 0) status += fmt::format(", validation accuracy {:.3f}", valid_accuracy_);
  std::string hint;
  if (current.score >= 0) {
    hint = fmt::format("{} score {:.3f}", StrategyName(shown_strategy_), current.score);
    if (model_knows_labels_) {
      hint += fmt::format(", model says {} ({:.0f}%)", labels_[current.predicted],
                          100 * current.probs[current.predicted]);
    }
  } else {
    hint = "random order (no classifier yet)";
  }
  std::string legend;
  for (size_t i = 0; i < labels_.size(); ++i) {
    legend += fmt::format(" {} {} ", kLabelKeys[i], labels_[i]);
  }
  legend += "  s skip  u undo  q quit";
  fmt::print(out_, "\n--- [{}] {}\n{}\n\n  {}\n\n{}\n> ", current.id, status, hint,
             current.text, legend);
  std::fflush(out_);
}

absl::Status LabelSession::Skip(const Suggestion& current) {
  int64_t index = 0;
  (void)absl::SimpleAtoi(current.id, &index);
  RETURN_IF_ERROR(AppendDurably(skipped_path_, current.id + "\n").status());
  skipped_.insert(index);
  undo_.push_back({current, true, 0});
  queue_.pop_front();
  return absl::OkStatus();
}

absl::Status LabelSession::Undo() {
  if (undo_.empty()) return absl::OkStatus();
  const Answer last = undo_.back();
  undo_.pop_back();
  int64_t index = 0;
  (void)absl::SimpleAtoi(last.shown.id, &index);
  if (last.skip) {
    skipped_.erase(index);
    std::string rest;
    for (int64_t s : skipped_) rest += std::to_string(s) + "\n";
    RETURN_IF_ERROR(WriteFileAtomic(skipped_path_, rest));
  } else {
    RETURN_IF_ERROR(TruncateDurably(config_.task.train, last.size_before));
    labelled_.texts.erase(OneLine(last.shown.text));
    --labelled_.count;
    since_retrain_ = std::max<int64_t>(0, since_retrain_ - 1);
  }
  queue_.push_front(last.shown);
  fmt::print(out_, "(undone)\n");
  return absl::OkStatus();
}

absl::Status LabelSession::Label(const Suggestion& current, size_t label) {
  const std::string text = OneLine(current.text);
  ASSIGN_OR_RETURN(const off_t before,
                   AppendDurably(config_.task.train, labels_[label] + "\t" + text + "\n"));
  labelled_.texts.insert(text);
  ++labelled_.count;
  ++since_retrain_;
  undo_.push_back({current, false, before});
  queue_.pop_front();
  if (since_retrain_ < active_.retrain_every) return absl::OkStatus();
  const absl::Status retrained = Retrain();
  if (absl::IsCancelled(retrained)) return retrained;
  if (!retrained.ok()) {
    fmt::print(out_, "retraining failed: {}\n(labelling goes on with the old order)\n",
               std::string(retrained.message()));
  }
  since_retrain_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<int> LabelSession::Run(int in_fd) {
  RETURN_IF_ERROR(EnsureWritableDir(label_dir_.string(), "run.output_dir"));
  // Retraining writes stage 2 and the rounds into the run directory: one process at a time.
  RETURN_IF_ERROR(LockRunDirectory(config_.run.output_dir));
  RETURN_IF_ERROR(Refill());
  RawTerminal raw(in_fd);
  while (true) {
    if (queue_.empty()) {
      fmt::print(out_, "\nnothing left to label in {} ({} labelled).\n", active_.pool,
                 labelled_.count);
      return 0;
    }
    const Suggestion current = queue_.front();
    Show(current);
    const int key = ReadKey(in_fd);
    if (key < 0 || key == 'q' || key == 4 /* Ctrl-D */) {
      fmt::print(out_, "\n{} labelled; answers are in {}\n", labelled_.count, config_.task.train);
      std::fflush(out_);
      const int signal = StopSignal();
      return signal != 0 ? 128 + signal : 0;
    }
    const size_t label_key = kLabelKeys.find(static_cast<char>(key));
    if (key == 's') {
      RETURN_IF_ERROR(Skip(current));
    } else if (key == 'u') {
      RETURN_IF_ERROR(Undo());
    } else if (label_key != std::string::npos && label_key < labels_.size()) {
      const absl::Status labelled = Label(current, label_key);
      if (absl::IsCancelled(labelled)) return 128 + StopSignal();
      RETURN_IF_ERROR(labelled);
    }
    if (queue_.empty()) RETURN_IF_ERROR(Refill());
  }
}

}  // namespace

absl::StatusOr<int> RunLabelSession(const Config& config, int in_fd, std::FILE* out) {
  const ActiveConfig& active = config.active;
  const std::string& labelled_path = config.task.train;
  if (labelled_path.empty() || active.pool.empty()) {
    return absl::InvalidArgumentError(
        "ulmfit label needs task.train (the TSV file answers are appended to; it may not exist "
        "yet) and active.pool (the unlabelled texts, one per line)");
  }
  if (fs::is_directory(labelled_path)) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: task.train is a folder; ulmfit label appends label<TAB>text lines to a file",
        labelled_path));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> pool, ReadDocuments(active.pool, CorpusFormat::kLines));
  ASSIGN_OR_RETURN(LabelledFile labelled, ReadLabelledFile(labelled_path));
  std::vector<std::string> labels = active.labels;
  if (labels.empty()) labels = labelled.labels_in_order;
  if (labels.size() < 2) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: has {} label(s); set active.labels to the label names, e.g. --set "
        "active.labels=pos,neg", labelled_path, labels.size()));
  }
  if (labels.size() > kLabelKeys.size()) {
    return absl::InvalidArgumentError(fmt::format(
        "active.labels: {} labels, but ulmfit label has keys for at most {}", labels.size(),
        kLabelKeys.size()));
  }
  ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice(config.run.device));
  const Strategy strategy = active.strategy;
  LabelSession session(config, std::move(pool), std::move(labelled), std::move(labels),
                       strategy, device, out);
  return session.Run(in_fd);
}

}  // namespace ulmfit
