// Stage 2: fine-tuning the pretrained language model on the target task's text, with
// discriminative learning rates and an optional first phase that trains only the embedding
// and decoder (fastai's frozen epoch).
#include <cmath>
#include <filesystem>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "config/config_loader.h"
#include "data/token_cache.h"
#include "dist/world.h"
#include "model/weights.h"
#include "text/rules.h"
#include "text/tokenizer.h"
#include "text/tokenizer_file.h"
#include "train/fastai_runs.h"
#include "train/stages.h"
#include "train/training_loop.h"
#include "data/task_data.h"
#include "util/device.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/random.h"
#include "util/seed_streams.h"

namespace ulmfit {
namespace fs = std::filesystem;

std::vector<double> LmGroupLrMultipliers(Discriminative discriminative, double lr_factor,
                                         int num_layers) {
  // Groups: rnn0 .. rnn{n-1}, then embedding + decoder (the top, at the full lr).
  const int groups = num_layers + 1;
  std::vector<double> mult(groups, 1.0);
  if (discriminative == Discriminative::kFactor) {
    mult = DiscriminativeMultipliers(groups, lr_factor);
  } else if (discriminative == Discriminative::kScripts && num_layers == 3) {
    mult = {1.0 / 6, 1.0 / 3, 1.0, 1.0 / 2};  // fastai's imdb_scripts/finetune_lm.py
  }
  return mult;
}

absl::Status CopyMatchedLanguageModel(const std::string& weights_path, const Tokenizer& from,
                                      const Tokenizer& to, const ModelConfig& model,
                                      LanguageModel& target) {
  LanguageModel source(LanguageModelOptions::FromConfig(model, from.vocab_size(), kPadId));
  RETURN_IF_ERROR(LoadModuleWeights(*source, weights_path));
  torch::NoGradGuard no_grad;
  auto source_params = source->named_parameters();
  int64_t matched = 0;
  for (auto& item : target->named_parameters()) {
    const torch::Tensor& old_value = source_params[item.key()];
    torch::Tensor& value = item.value();
    if (old_value.sizes() == value.sizes()) {
      value.copy_(old_value);
      continue;
    }
    // Vocabulary-indexed: the embedding (V, emb) and the decoder bias (V). Pieces the old model
    // knows keep their rows; new pieces start from the mean row (fastai match_embeds).
    const torch::Tensor mean = old_value.mean(0);
    matched = 0;
    for (int id = 0; id < to.vocab_size(); ++id) {
      const int old_id = from.PieceToId(to.IdToPiece(id));
      if (old_id >= 0) {
        value[id].copy_(old_value[old_id]);
        ++matched;
      } else {
        value[id].copy_(mean);
      }
    }
  }
  LogInfo(fmt::format("finetune: {} of {} pieces found in the pretrained vocabulary; the others "
                      "start from the mean embedding", matched, to.vocab_size()));
  return absl::OkStatus();
}

namespace {

// The pretrained run this stage starts from, and its model settings. Paths are empty for
// `finetune.pretrained: none`.
struct PretrainedSource {
  std::string dir;
  std::string weights;
  std::string tokenizer;
  ModelConfig model;
};

// finetune.pretrained naming a fastai weights file: the run directory it is imported into
// (<output_dir>/pretrained), imported now unless an earlier import of the same file is there.
absl::StatusOr<std::string> ImportedPretrainedRun(const Config& config) {
  const std::string dir = (fs::path(config.run.output_dir) / "pretrained").string();
  const std::string weights = fs::absolute(config.finetune.pretrained).string();
  const absl::StatusOr<Config> earlier = LoadConfig((fs::path(dir) / "resolved.yaml").string());
  if (earlier.ok() && earlier->pretrain.data.train == weights &&
      fs::exists(fs::path(dir) / "pretrain" / "lm.pt")) {
    return dir;
  }
  FastaiImportOptions options;
  options.weights = config.finetune.pretrained;
  options.vocab = config.finetune.pretrained_vocab;
  options.output_dir = dir;
  options.backwards = config.model.backwards;
  RETURN_IF_ERROR(ImportFastaiRun(options));
  return dir;
}

absl::StatusOr<PretrainedSource> FindPretrained(const Config& config) {
  PretrainedSource source;
  source.model = config.model;
  if (config.finetune.pretrained == kNoPretraining) return source;  // no files: random init
  if (!config.finetune.pretrained_vocab.empty()) {
    ASSIGN_OR_RETURN(source.dir, ImportedPretrainedRun(config));
  } else {
    source.dir = config.finetune.pretrained.empty() ? config.run.output_dir
                                                    : config.finetune.pretrained;
  }
  source.weights = (fs::path(source.dir) / "pretrain" / "lm.pt").string();
  source.tokenizer = TokenizerFileIn((fs::path(source.dir) / "tokenizer").string());
  if (!fs::exists(source.weights)) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: no pretrained language model; run stage 1 first (ulmfit --config FILE --stage "
        "pretrain) or set finetune.pretrained to a run directory that has pretrain/lm.pt",
        source.weights));
  }
  if (!config.finetune.pretrained.empty()) {
    // Another run: its architecture is whatever that run used.
    const std::string resolved = (fs::path(source.dir) / "resolved.yaml").string();
    ASSIGN_OR_RETURN(Config other, LoadConfig(resolved));
    source.model = other.model;
    RETURN_IF_ERROR(CheckSameDirection(other, config, resolved, "finetune.pretrained"));
  }
  return source;
}

}  // namespace

absl::Status CheckSameDirection(const Config& other, const Config& config,
                                const std::string& where, const std::string& key) {
  if (other.model.backwards == config.model.backwards) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format(
      "{}: that run's language model reads text {}, but this config has model.backwards: {}; "
      "set model.backwards to match or point {} at a {} run",
      where, other.model.backwards ? "backwards" : "forwards",
      config.model.backwards ? "true" : "false", key,
      config.model.backwards ? "backward" : "forward"));
}

absl::StatusOr<ModelConfig> PretrainedModelConfig(const Config& config) {
  ASSIGN_OR_RETURN(const PretrainedSource source, FindPretrained(config));
  return source.model;
}

namespace {

// The task's text as LM training and validation ids, and the tokenizer that made them.
struct FineTuningText {
  Tokenizer tokenizer;
  TokenizedCorpus train;
  TokenizedCorpus valid;
};

// All of the task's text, labels unused (paper section 3.2), shuffled, 10% held out.
absl::StatusOr<std::pair<std::vector<std::string>, std::vector<std::string>>> TaskText(
    const Config& config) {
  ASSIGN_OR_RETURN(TaskData task, LoadTaskData(config.task, config.run.seed, true));
  std::vector<std::string> docs = std::move(task.unlabeled);
  for (auto* split : {&task.train, &task.valid}) {
    docs.insert(docs.end(), split->texts.begin(), split->texts.end());
  }
  if (config.finetune.use_test_text) {
    docs.insert(docs.end(), task.test.texts.begin(), task.test.texts.end());
  }
  std::mt19937_64 rng(StreamSeed(config.run.seed, SeedStream::kFinetuneHoldout));
  Shuffle(&docs, rng);
  const size_t n_valid = std::max<size_t>(1, docs.size() / 10);
  std::vector<std::string> valid_docs(docs.end() - n_valid, docs.end());
  docs.resize(docs.size() - n_valid);
  return std::make_pair(std::move(docs), std::move(valid_docs));
}

// Tokenizer: the pretrained one, unless the config names its own (then vocabularies differ and
// the embedding rows are matched by piece). Without pretraining, one trained on this text.
absl::StatusOr<FineTuningText> ReadFineTuningText(const Config& config,
                                                  const std::string& pretrained_tokenizer) {
  ASSIGN_OR_RETURN(auto split, TaskText(config));
  const auto& [docs, valid_docs] = split;
  const RuleOptions rules{config.text.rules, config.text.lowercase};
  const std::string cache_dir = DefaultCacheDir(config.text);
  RETURN_IF_ERROR(EnsureWritableDir(cache_dir, "text.cache_dir"));
  const fs::path run_dir(config.run.output_dir);
  RETURN_IF_ERROR(EnsureWritableDir((run_dir / "tokenizer").string(), "run.output_dir"));
  std::string tokenizer_source =
      config.text.spm_model.empty() ? pretrained_tokenizer : config.text.spm_model;
  std::optional<Tokenizer> source;
  if (!tokenizer_source.empty()) {
    ASSIGN_OR_RETURN(Tokenizer loaded, Tokenizer::Load(tokenizer_source));
    source = std::move(loaded);
  }
  // A word vocabulary (imported from fastai, or text.tokenizer: words without pretraining) is
  // built anew from the task's text, as fastai does; StartingLanguageModel then matches rows.
  const bool words = source ? source->kind() == TokenizerKind::kWords
                            : config.text.tokenizer == TokenizerKind::kWords;
  const std::string tokenizer_path =
      (run_dir / "tokenizer" / (words ? kWordVocabularyFile : kSentencePieceFile)).string();
  if (words) {
    const int max_vocab =
        source ? std::max(config.text.vocab_size, source->vocab_size()) : config.text.vocab_size;
    LogInfo(fmt::format("finetune: building the task's word vocabulary (at most {} words seen "
                        "at least twice)", max_vocab));
    RETURN_IF_ERROR(BuildWordTokenizer(docs, rules, max_vocab, kWordMinFrequency, tokenizer_path,
                                       config.text.threads)
                        .status());
    tokenizer_source = tokenizer_path;
  } else if (tokenizer_source.empty()) {
    LogInfo(fmt::format("finetune: no pretraining; training a {}-piece SentencePiece model on "
                        "the task's text", config.text.vocab_size));
    ASSIGN_OR_RETURN(const Tokenizer trained,
                     TrainTokenizerCached(docs, rules, config.text, cache_dir, tokenizer_path,
                                          config.run.seed, config.text.threads));
    LogTokenizerSize("finetune", trained, config.text.vocab_size);
    tokenizer_source = tokenizer_path;
  }
  if (fs::absolute(tokenizer_source) != fs::absolute(tokenizer_path)) {
    RETURN_IF_ERROR(CopyFileAtomic(tokenizer_source, tokenizer_path));
  }
  ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load(tokenizer_path));
  ASSIGN_OR_RETURN(TokenizedCorpus train, TokenizeCorpus(docs, tokenizer, rules, cache_dir,
                                                         config.text.threads));
  ASSIGN_OR_RETURN(TokenizedCorpus valid, TokenizeCorpus(valid_docs, tokenizer, rules,
                                                         cache_dir, config.text.threads));
  LogInfo(fmt::format("finetune: {} training and {} validation tokens", train.ids.size(),
                      valid.ids.size()));
  return FineTuningText{std::move(tokenizer), std::move(train), std::move(valid)};
}

// The language model stage 2 starts from: the pretrained weights (rows matched by piece when
// the vocabularies differ), or random ones for finetune.pretrained: none.
absl::StatusOr<LanguageModel> StartingLanguageModel(const Config& config,
                                                    const PretrainedSource& source,
                                                    const Tokenizer& tokenizer) {
  ModelConfig model_config = source.model;
  model_config.dropout = config.model.dropout;
  model_config.drop_mult = config.finetune.drop_mult;
  LanguageModel model(
      LanguageModelOptions::FromConfig(model_config, tokenizer.vocab_size(), kPadId));
  if (source.weights.empty()) {
    // No pretrained run to copy the architecture from: the model section applies, whose
    // defaults are the full-size model (slow on a CPU), so say which one this is.
    LogInfo(fmt::format(
        "finetune: finetune.pretrained is none: the language model starts from random weights, "
        "with the model section's architecture ({}/{}/{}: model.emb_size/hidden_size/"
        "num_layers)",
        model_config.emb_size, model_config.hidden_size, model_config.num_layers));
    return model;
  }
  ASSIGN_OR_RETURN(const Tokenizer pretrained_tokenizer, Tokenizer::Load(source.tokenizer));
  if (pretrained_tokenizer.SerializedModel() == tokenizer.SerializedModel()) {
    RETURN_IF_ERROR(LoadModuleWeights(*model, source.weights));
  } else {
    RETURN_IF_ERROR(CopyMatchedLanguageModel(source.weights, pretrained_tokenizer, tokenizer,
                                             source.model, model));
  }
  return model;
}

// fastai's frozen epochs: only the embedding and decoder learn, at finetune.frozen_lr. Their
// result is kept in <stage_dir>/frozen/lm.pt, so a resumed stage does not repeat them.
absl::StatusOr<StageResult> TrainFrozenEpochs(const Config& config, const fs::path& stage_dir,
                                              int num_groups, LmTrainingJob& job) {
  const fs::path frozen_dir = stage_dir / "frozen";
  const std::string frozen_weights = (frozen_dir / "lm.pt").string();
  if (fs::exists(frozen_weights)) {
    RETURN_IF_ERROR(LoadModuleWeights(*job.model, frozen_weights));
    return StageResult{};
  }
  RETURN_IF_ERROR(EnsureWritableDir(frozen_dir.string(), "run.output_dir"));
  job.stage = "finetune_frozen";
  job.stage_dir = frozen_dir.string();
  job.epochs = config.finetune.frozen_epochs;
  job.lr = config.finetune.frozen_lr;
  job.group_lr_mult.assign(num_groups, 0.0);
  job.group_lr_mult.back() = 1.0;  // embedding + decoder only
  ASSIGN_OR_RETURN(const StageResult result, TrainLanguageModel(job));
  if (result.outcome == StageOutcome::kCompleted && IsLeaderProcess()) {
    RETURN_IF_ERROR(SaveModuleWeights(*job.model, frozen_weights));
  }
  return result;
}

}  // namespace

absl::StatusOr<StageResult> RunFinetune(const Config& config, bool resume) {
  const fs::path run_dir(config.run.output_dir);
  const fs::path stage_dir = run_dir / "finetune";
  const std::string final_weights = (stage_dir / "lm.pt").string();
  bool done = false;
  // In a data-parallel run rank 0 decides first (a stale stage directory is set aside then).
  RETURN_IF_ERROR(LeaderFirst("checking the fine-tuning stage", [&]() -> absl::Status {
    RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
    ASSIGN_OR_RETURN(done, StageAlreadyDone(config, "finetune"));
    RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
    return done ? absl::OkStatus() : StartStage(config, "finetune", resume).status();
  }));
  if (done) return StageResult{StageOutcome::kSkipped};
  ASSIGN_OR_RETURN(const torch::Device device, TrainingDevice(config.run.device));
  const uint64_t seed = StreamSeed(config.run.seed, SeedStream::kFinetune);
  const FinetuneConfig& ft = config.finetune;
  ASSIGN_OR_RETURN(const int64_t batch_size,
                   JobBatchSize(ft.batch_size, "finetune.batch_size", config.run));
  // Rank 0 imports a fastai model, builds the tokenizer and the token caches; the others then
  // read them.
  std::optional<PretrainedSource> source;
  std::optional<FineTuningText> text;
  RETURN_IF_ERROR(LeaderFirst("preparing the fine-tuning text", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(source, FindPretrained(config));
    ASSIGN_OR_RETURN(text, ReadFineTuningText(config, source->tokenizer));
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(CheckSameOnAllRanks(text->tokenizer.SerializedModel(), "tokenizer"));
  // Seeded after a fastai import, which builds models of its own: each rank its own masks.
  torch::manual_seed(RankSeed(seed, WorldRank()));
  ASSIGN_OR_RETURN(LanguageModel model, StartingLanguageModel(config, *source, text->tokenizer));

  LmBatcher train_batcher(&text->train.ids, &text->train.offsets,
                          LmTrainBatcherOptions(ft, batch_size, config.model.backwards, seed));
  LmBatcherOptions valid_options =
      LmTrainBatcherOptions(ft, batch_size, config.model.backwards, seed);
  valid_options.variable_bptt = false;
  valid_options.shuffle = false;
  // Rows of at least 8 tokens; a whole number of them per process.
  const int64_t processes = WorldSize();
  valid_options.batch_size =
      std::max<int64_t>(1, std::min<int64_t>(batch_size, static_cast<int64_t>(
                                                              text->valid.ids.size()) / 8) /
                               processes) * processes;
  LmBatcher valid_batcher(&text->valid.ids, &text->valid.offsets, valid_options);
  valid_batcher.StartEpoch(0);

  LmTrainingJob job = LmJobFromConfig(ft, config.run, device, resume);
  job.metrics_path = (run_dir / "metrics.jsonl").string();
  job.model = model;
  job.train = &train_batcher;
  job.valid = valid_batcher.num_batches() > 0 ? &valid_batcher : nullptr;

  StageResult result;
  // The frozen epochs fit new embeddings to a pretrained encoder. Over random LSTMs they protect
  // nothing, and the classifier learned less from the result (TREC-6, 1,000 labels, CPU config,
  // 3 seeds: 65.9% test error with a frozen epoch, 55.0% without; docs/results.md, Ablations).
  if (ft.frozen_epochs > 0 && source->weights.empty()) {
    LogInfo("finetune: finetune.frozen_epochs skipped: with finetune.pretrained: none there is "
            "no pretrained encoder to freeze");
  } else if (ft.frozen_epochs > 0) {
    ASSIGN_OR_RETURN(result,
                     TrainFrozenEpochs(config, stage_dir, source->model.num_layers + 1, job));
    if (result.outcome != StageOutcome::kCompleted) return result;
  }
  if (ft.epochs > 0) {
    job.stage = "finetune";
    job.stage_dir = stage_dir.string();
    job.epochs = ft.epochs;
    job.lr = ft.lr;
    job.group_lr_mult =
        LmGroupLrMultipliers(ft.discriminative, ft.lr_factor, source->model.num_layers);
    ASSIGN_OR_RETURN(result, TrainLanguageModel(job));
    if (result.outcome != StageOutcome::kCompleted) return result;
  }
  if (IsLeaderProcess()) {
    RETURN_IF_ERROR(SaveModuleWeights(*model, final_weights));
    RETURN_IF_ERROR(MarkStageDone(config, "finetune", final_weights));
    LogInfo(fmt::format("finetune: done; fine-tuned language model saved to {}",
                        final_weights));
  }
  return result;
}

}  // namespace ulmfit
