// Stage 1: language-model pretraining on a general-domain corpus.
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "absl/strings/strip.h"
#include "config/config_loader.h"
#include "data/corpus.h"
#include "data/token_cache.h"
#include "text/rules.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/stages.h"
#include "util/files.h"
#include "util/progress.h"

namespace ulmfit {
namespace fs = std::filesystem;

std::string StageSettings(const Config& config, const std::string& stage) {
  Config kept = config;
  const Config defaults;
  kept.source_path.clear();
  kept.key_locations.clear();
  kept.run = defaults.run;
  kept.run.seed = config.run.seed;
  kept.text.cache_dir.clear();
  kept.text.threads = 0;
  kept.active = defaults.active;
  if (stage == "pretrain") {
    kept.task = defaults.task;
    kept.finetune = defaults.finetune;
  }
  if (stage != "classify") kept.classifier = defaults.classifier;
  return ConfigToYaml(kept);
}

namespace {

std::string SettingsPath(const std::string& output) {
  return (fs::path(output).parent_path() / "stage_settings.yaml").string();
}

// The first line where two YAML dumps differ, for the message.
std::string FirstDifference(const std::string& before, const std::string& now) {
  std::istringstream a(before), b(now);
  std::string line_a, line_b, section;
  while (true) {
    const bool more_a = static_cast<bool>(std::getline(a, line_a));
    const bool more_b = static_cast<bool>(std::getline(b, line_b));
    if (!more_a && !more_b) return "";
    if (!more_a || !more_b || line_a != line_b) {
      return fmt::format("under '{}': '{}' is now '{}'", section,
                         std::string(absl::StripAsciiWhitespace(line_a)),
                         std::string(absl::StripAsciiWhitespace(line_b)));
    }
    if (!line_a.empty() && line_a[0] != ' ') section = line_a;
  }
}

}  // namespace

bool StageAlreadyDone(const Config& config, const std::string& stage, const std::string& output,
                      const std::vector<std::string>& stage_dirs) {
  if (!fs::exists(output)) return false;
  const absl::StatusOr<std::string> before = ReadFile(SettingsPath(output));
  const std::string now = StageSettings(config, stage);
  if (before.ok() && *before != now) {
    LogInfo(fmt::format("{}: the settings changed since {} was made ({}); training this stage "
                        "again", stage, output, FirstDifference(*before, now)));
    for (const std::string& dir : stage_dirs) RemoveTree(dir);
    return false;
  }
  LogInfo(fmt::format("{}: {} exists; stage already complete, skipping (delete it to train "
                      "again)", stage, output));
  return true;
}

absl::Status MarkStageDone(const Config& config, const std::string& stage,
                           const std::string& output) {
  return WriteFileAtomic(SettingsPath(output), StageSettings(config, stage));
}

std::string DefaultCacheDir(const TextConfig& text) {
  if (!text.cache_dir.empty()) return text.cache_dir;
  if (const char* env = std::getenv("ULMFIT_CACHE_DIR"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return (fs::path(xdg) / "ulmfit").string();
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return (fs::path(home) / ".cache" / "ulmfit").string();
  }
  return ".ulmfit_cache";
}

namespace {

// Splits off a seeded `fraction` of the documents for validation.
void HoldOut(std::vector<std::string>* train, std::vector<std::string>* valid, double fraction,
             uint64_t seed) {
  std::vector<size_t> order(train->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed ^ 0x76616c6964ULL);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  const size_t n_valid = std::max<size_t>(1, static_cast<size_t>(train->size() * fraction));
  std::vector<bool> is_valid(train->size(), false);
  for (size_t i = 0; i < n_valid && i < order.size(); ++i) is_valid[order[i]] = true;
  std::vector<std::string> kept;
  for (size_t i = 0; i < train->size(); ++i) {
    (is_valid[i] ? *valid : kept).push_back(std::move((*train)[i]));
  }
  *train = std::move(kept);
}

}  // namespace

absl::StatusOr<StageResult> RunPretrain(const Config& config, bool resume) {
  const fs::path run_dir(config.run.output_dir);
  const fs::path stage_dir = run_dir / "pretrain";
  const std::string final_weights = (stage_dir / "lm.pt").string();
  RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
  if (StageAlreadyDone(config, "pretrain", final_weights, {stage_dir.string()})) {
    return StageResult{StageOutcome::kSkipped};
  }
  RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
  const std::string checkpoint_dir = (stage_dir / "checkpoint").string();
  if (!resume && CheckpointExists(checkpoint_dir)) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: an unfinished pretraining run is here; continue it with --resume, or choose "
        "another run.output_dir", checkpoint_dir));
  }
  ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice(config.run.device));
  torch::manual_seed(config.run.seed);

  // Text: read, tokenizer, ids (cached across runs).
  const PretrainConfig& pre = config.pretrain;
  ASSIGN_OR_RETURN(std::vector<std::string> train_docs,
                   ReadDocuments(pre.data.train, pre.data.format, pre.data.max_documents));
  std::vector<std::string> valid_docs;
  if (!pre.data.valid.empty()) {
    ASSIGN_OR_RETURN(valid_docs, ReadDocuments(pre.data.valid, pre.data.format, 0));
  } else if (train_docs.size() >= 2) {
    HoldOut(&train_docs, &valid_docs, pre.data.valid_fraction, config.run.seed);
  }
  LogInfo(fmt::format("pretrain: {} training and {} validation documents", train_docs.size(),
                      valid_docs.size()));

  const RuleOptions rules{config.text.rules, config.text.lowercase};
  const std::string cache_dir = DefaultCacheDir(config.text);
  RETURN_IF_ERROR(EnsureWritableDir(cache_dir, "text.cache_dir"));
  const std::string tokenizer_path = (run_dir / "tokenizer" / "spm.model").string();
  RETURN_IF_ERROR(EnsureWritableDir((run_dir / "tokenizer").string(), "run.output_dir"));
  absl::StatusOr<Tokenizer> tokenizer_or = absl::UnknownError("unset");
  if (!config.text.spm_model.empty()) {
    tokenizer_or = Tokenizer::Load(config.text.spm_model);
    if (tokenizer_or.ok()) fs::copy_file(config.text.spm_model, tokenizer_path,
                                         fs::copy_options::overwrite_existing);
  } else if (resume && fs::exists(tokenizer_path)) {
    tokenizer_or = Tokenizer::Load(tokenizer_path);
  } else {
    LogInfo(fmt::format("pretrain: training a {}-piece SentencePiece {} model",
                        config.text.vocab_size, config.text.model_type));
    tokenizer_or = TrainTokenizerCached(train_docs, rules, config.text, cache_dir,
                                        tokenizer_path, config.run.seed, config.text.threads);
  }
  RETURN_IF_ERROR(tokenizer_or.status());
  const Tokenizer& tokenizer = *tokenizer_or;

  bool cached = false;
  ASSIGN_OR_RETURN(TokenizedCorpus train_ids, TokenizeCorpus(train_docs, tokenizer, rules,
                                                             cache_dir, config.text.threads,
                                                             &cached));
  LogInfo(fmt::format("pretrain: {} training tokens{}", train_ids.ids.size(),
                      cached ? " (from cache)" : ""));
  TokenizedCorpus valid_ids;
  if (!valid_docs.empty()) {
    ASSIGN_OR_RETURN(valid_ids, TokenizeCorpus(valid_docs, tokenizer, rules, cache_dir,
                                               config.text.threads, &cached));
  }
  train_docs.clear();
  valid_docs.clear();

  LmBatcherOptions train_options;
  train_options.batch_size = pre.batch_size;
  train_options.bptt = pre.bptt;
  train_options.variable_bptt = pre.variable_bptt;
  train_options.backwards = config.model.backwards;
  train_options.shuffle = true;
  train_options.seed = config.run.seed;
  LmBatcher train_batcher(&train_ids.ids, &train_ids.offsets, train_options);

  LmBatcherOptions valid_options = train_options;
  valid_options.variable_bptt = false;
  valid_options.shuffle = false;
  LmBatcher valid_batcher(&valid_ids.ids, &valid_ids.offsets, valid_options);
  const bool has_valid = valid_ids.ids.size() > static_cast<size_t>(pre.batch_size);
  if (has_valid) valid_batcher.StartEpoch(0);

  LmTrainingJob job;
  job.stage = "pretrain";
  job.stage_dir = stage_dir.string();
  job.metrics_path = (run_dir / "metrics.jsonl").string();
  job.model = LanguageModel(LanguageModelOptions::FromConfig(config.model, tokenizer.vocab_size(),
                                                       kPadId));
  job.train = &train_batcher;
  job.valid = has_valid ? &valid_batcher : nullptr;
  job.epochs = pre.epochs;
  job.lr = pre.lr;
  job.schedule = pre.schedule;
  job.optimizer = pre.optimizer;
  job.ar_alpha = pre.ar_alpha;
  job.tar_beta = pre.tar_beta;
  job.bptt = pre.bptt;
  job.scale_lr_with_seq_len = pre.variable_bptt;
  job.mixed_precision = pre.mixed_precision;
  job.max_steps_per_epoch = pre.max_steps;
  job.resume = resume;
  job.checkpoint_minutes = config.run.checkpoint_minutes;
  job.log_every = config.run.log_every;
  job.device = device;

  ASSIGN_OR_RETURN(StageResult result, TrainLanguageModel(job));
  if (result.outcome == StageOutcome::kCompleted) {
    RETURN_IF_ERROR(SaveModuleWeights(*job.model, final_weights));
    RETURN_IF_ERROR(MarkStageDone(config, "pretrain", final_weights));
    LogInfo(fmt::format("pretrain: done; language model saved to {}", final_weights));
  }
  return result;
}

}  // namespace ulmfit
