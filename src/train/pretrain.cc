// Stage 1: language-model pretraining on a general-domain corpus.
#include <filesystem>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "data/corpus.h"
#include "data/token_cache.h"
#include "dist/world.h"
#include "model/weights.h"
#include "text/rules.h"
#include "text/tokenizer.h"
#include "text/tokenizer_file.h"
#include "train/stages.h"
#include "train/training_loop.h"
#include "util/device.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/random.h"
#include "util/seed_streams.h"

namespace ulmfit {
namespace fs = std::filesystem;

void LogTokenizerSize(const std::string& stage, const Tokenizer& tokenizer, int asked) {
  if (tokenizer.vocab_size() >= asked) return;
  LogInfo(fmt::format("{}: the tokenizer has {} pieces: the text gave fewer than "
                      "text.vocab_size ({})", stage, tokenizer.vocab_size(), asked));
}

namespace {

// Splits off a seeded `fraction` of the documents for validation.
void HoldOut(std::vector<std::string>* train, std::vector<std::string>* valid, double fraction,
             uint64_t seed) {
  std::vector<size_t> order(train->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  Shuffle(&order, rng);
  const size_t n_valid = std::max<size_t>(1, static_cast<size_t>(train->size() * fraction));
  std::vector<bool> is_valid(train->size(), false);
  for (size_t i = 0; i < n_valid && i < order.size(); ++i) is_valid[order[i]] = true;
  std::vector<std::string> kept;
  for (size_t i = 0; i < train->size(); ++i) {
    (is_valid[i] ? *valid : kept).push_back(std::move((*train)[i]));
  }
  *train = std::move(kept);
}

// The general corpus as token ids, and the tokenizer that made them (text.spm_model, the one
// a resumed run of the same settings already trained, or one trained now).
struct PretrainingText {
  Tokenizer tokenizer;
  TokenizedCorpus train;
  TokenizedCorpus valid;
};

// The tokenizer an unfinished run of this stage trained, to continue with. Its start was
// recorded with these settings (StartStage); this catches a run directory of an older ulmfit,
// which recorded none.
absl::StatusOr<Tokenizer> ResumedTokenizer(const Config& config, const std::string& path) {
  ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load(path));
  // SentencePiece may stop short of text.vocab_size on a small corpus, never above it (a word
  // vocabulary is padded to a multiple of 8).
  if (tokenizer.kind() != config.text.tokenizer ||
      (tokenizer.kind() == TokenizerKind::kSentencePiece &&
       tokenizer.vocab_size() > config.text.vocab_size)) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: the tokenizer of the run being resumed ({} of {} entries) does not fit text.tokenizer "
        "{} and text.vocab_size {}; revert those settings, or delete {} and {} to start the stage "
        "over", path, std::string(EnumName(tokenizer.kind())), tokenizer.vocab_size(),
        std::string(EnumName(config.text.tokenizer)), config.text.vocab_size,
        fs::path(path).parent_path().string(),
        (fs::path(config.run.output_dir) / "pretrain").string()));
  }
  return tokenizer;
}

absl::StatusOr<Tokenizer> PretrainingTokenizer(const Config& config, bool continuing,
                                               const std::vector<std::string>& train_docs,
                                               const std::string& cache_dir) {
  const fs::path run_dir(config.run.output_dir);
  const bool words = config.text.tokenizer == TokenizerKind::kWords;
  const std::string tokenizer_path =
      (run_dir / "tokenizer" / (words ? kWordVocabularyFile : kSentencePieceFile)).string();
  RETURN_IF_ERROR(EnsureWritableDir((run_dir / "tokenizer").string(), "run.output_dir"));
  const RuleOptions rules{config.text.rules, config.text.lowercase};
  if (words) {
    if (continuing && fs::exists(tokenizer_path)) return ResumedTokenizer(config, tokenizer_path);
    LogInfo(fmt::format("pretrain: building a word vocabulary of at most {} words (fastai v1 "
                        "rules, words seen at least twice)", config.text.vocab_size));
    return BuildWordTokenizer(train_docs, rules, config.text.vocab_size, kWordMinFrequency,
                              tokenizer_path, config.text.threads);
  }
  if (!config.text.spm_model.empty()) {
    ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load(config.text.spm_model));
    RETURN_IF_ERROR(CopyFileAtomic(config.text.spm_model, tokenizer_path));
    return tokenizer;
  }
  if (continuing && fs::exists(tokenizer_path)) return ResumedTokenizer(config, tokenizer_path);
  LogInfo(fmt::format("pretrain: training a {}-piece SentencePiece {} model",
                      config.text.vocab_size, config.text.model_type));
  ASSIGN_OR_RETURN(Tokenizer tokenizer,
                   TrainTokenizerCached(train_docs, rules, config.text, cache_dir, tokenizer_path,
                                        config.run.seed, config.text.threads));
  LogTokenizerSize("pretrain", tokenizer, config.text.vocab_size);
  return tokenizer;
}

absl::StatusOr<PretrainingText> ReadPretrainingText(const Config& config, bool continuing) {
  const LmDataConfig& data = config.pretrain.data;
  ASSIGN_OR_RETURN(std::vector<std::string> train_docs,
                   ReadDocuments(data.train, data.format, data.max_documents));
  std::vector<std::string> valid_docs;
  if (!data.valid.empty()) {
    ASSIGN_OR_RETURN(valid_docs, ReadDocuments(data.valid, data.format, 0));
  } else if (train_docs.size() >= 2) {
    HoldOut(&train_docs, &valid_docs, data.valid_fraction,
            StreamSeed(config.run.seed, SeedStream::kPretrainHoldout));
  }
  LogInfo(fmt::format("pretrain: {} training and {} validation documents", train_docs.size(),
                      valid_docs.size()));

  const RuleOptions rules{config.text.rules, config.text.lowercase};
  const std::string cache_dir = DefaultCacheDir(config.text);
  RETURN_IF_ERROR(EnsureWritableDir(cache_dir, "text.cache_dir"));
  ASSIGN_OR_RETURN(Tokenizer tokenizer,
                   PretrainingTokenizer(config, continuing, train_docs, cache_dir));
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
  return PretrainingText{std::move(tokenizer), std::move(train_ids), std::move(valid_ids)};
}

}  // namespace

absl::StatusOr<StageResult> RunPretrain(const Config& config, bool resume) {
  const fs::path run_dir(config.run.output_dir);
  const fs::path stage_dir = run_dir / "pretrain";
  const std::string final_weights = (stage_dir / "lm.pt").string();
  bool done = false;
  bool continuing = false;  // an unfinished run of these settings is resumed
  // In a data-parallel run rank 0 decides first (a stale stage directory is set aside then).
  RETURN_IF_ERROR(LeaderFirst("checking the pretraining stage", [&]() -> absl::Status {
    RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
    ASSIGN_OR_RETURN(done, StageAlreadyDone(config, "pretrain"));
    RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
    if (done) return absl::OkStatus();
    ASSIGN_OR_RETURN(continuing, StartStage(config, "pretrain", resume));
    return absl::OkStatus();
  }));
  if (done) return StageResult{StageOutcome::kSkipped};
  const std::string checkpoint_dir = (stage_dir / "checkpoint").string();
  if (!resume && CheckpointExists(checkpoint_dir)) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: an unfinished pretraining run is here; continue it with --resume, or choose "
        "another run.output_dir", checkpoint_dir));
  }
  ASSIGN_OR_RETURN(const torch::Device device, TrainingDevice(config.run.device));
  const uint64_t seed = StreamSeed(config.run.seed, SeedStream::kPretrain);
  torch::manual_seed(RankSeed(seed, WorldRank()));  // each rank its own dropout masks
  const PretrainConfig& pre = config.pretrain;
  ASSIGN_OR_RETURN(const int64_t batch_size,
                   JobBatchSize(pre.batch_size, "pretrain.batch_size", config.run));
  std::optional<PretrainingText> text;
  RETURN_IF_ERROR(LeaderFirst("preparing the pretraining text", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(text, ReadPretrainingText(config, continuing));
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(CheckSameOnAllRanks(text->tokenizer.SerializedModel(), "tokenizer"));

  const LmBatcherOptions train_options =
      LmTrainBatcherOptions(pre, batch_size, config.model.backwards, seed);
  LmBatcher train_batcher(&text->train.ids, &text->train.offsets, train_options);
  LmBatcherOptions valid_options = train_options;
  valid_options.variable_bptt = false;
  valid_options.shuffle = false;
  LmBatcher valid_batcher(&text->valid.ids, &text->valid.offsets, valid_options);
  const bool has_valid = text->valid.ids.size() > static_cast<size_t>(batch_size);
  if (has_valid) valid_batcher.StartEpoch(0);

  LmTrainingJob job = LmJobFromConfig(pre, config.run, device, resume);
  job.stage = "pretrain";
  job.stage_dir = stage_dir.string();
  job.metrics_path = (run_dir / "metrics.jsonl").string();
  job.model = LanguageModel(
      LanguageModelOptions::FromConfig(config.model, text->tokenizer.vocab_size(), kPadId));
  job.train = &train_batcher;
  job.valid = has_valid ? &valid_batcher : nullptr;
  ASSIGN_OR_RETURN(StageResult result, TrainLanguageModel(job));
  if (result.outcome == StageOutcome::kCompleted && IsLeaderProcess()) {
    RETURN_IF_ERROR(SaveModuleWeights(*job.model, final_weights));
    RETURN_IF_ERROR(MarkStageDone(config, "pretrain", final_weights));
    LogInfo(fmt::format("pretrain: done; language model saved to {}", final_weights));
  }
  return result;
}

}  // namespace ulmfit
