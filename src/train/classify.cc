// Stage 3: the classifier. The fine-tuned encoder plus a concat-pooling head, trained by the
// classifier loop (train/clas_trainer.h); the kept epoch is exported as a self-contained model
// directory and scored on the test set.
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "config/config_loader.h"
#include "data/clas_batcher.h"
#include "data/task_data.h"
#include "data/token_cache.h"
#include "dist/world.h"
#include "infer/classifier.h"
#include "model/classifier.h"
#include "model/weights.h"
#include "text/rules.h"
#include "text/tokenizer_file.h"
#include "train/clas_trainer.h"
#include "train/precise_bn.h"
#include "train/stage_records.h"
#include "train/stages.h"
#include "util/device.h"
#include "util/files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/seed_streams.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

std::string MetricsJson(const ClassificationMetrics& m) {
  return JsonLine()
      .Add("loss", m.loss).Add("accuracy", m.accuracy).Add("error_rate", m.error_rate)
      .Add("macro_f1", m.macro_f1).Add("count", m.count)
      .str();
}

}  // namespace

absl::StatusOr<FineTunedModel> FindFineTunedModel(const Config& config,
                                                  const std::string& lm_run_dir) {
  FineTunedModel found;
  found.weights = (fs::path(lm_run_dir) / "finetune" / "lm.pt").string();
  found.tokenizer = TokenizerFileIn((fs::path(lm_run_dir) / "tokenizer").string());
  if (!fs::exists(found.weights)) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: no fine-tuned language model; run stage 2 first (--stage finetune)",
        found.weights));
  }
  found.config = config;
  if (!config.classifier.language_model.empty()) {
    // Another run's LM: its architecture and text rules, not this file's.
    const std::string resolved = (fs::path(lm_run_dir) / "resolved.yaml").string();
    absl::StatusOr<Config> other = LoadConfig(resolved);
    if (!other.ok()) {
      return absl::FailedPreconditionError(fmt::format(
          "classifier.language_model: {} is not a finished ulmfit run ({}); name a run "
          "directory whose stage 2 wrote finetune/lm.pt",
          lm_run_dir, std::string(other.status().message())));
    }
    RETURN_IF_ERROR(CheckSameDirection(*other, config, resolved, "classifier.language_model"));
    found.config = *other;
  }
  found.config.run.output_dir = lm_run_dir;
  ASSIGN_OR_RETURN(found.model, PretrainedModelConfig(found.config));
  return found;
}

namespace {

// The task's labelled splits as label ids and token ids.
struct ClassifierData {
  TaskData task;
  LabelSet labels;
  std::vector<int64_t> train_labels;
  std::vector<int64_t> valid_labels;
  TokenizedCorpus train_ids;
  TokenizedCorpus valid_ids;
};

absl::StatusOr<ClassifierData> LoadClassifierData(const Config& config,
                                                  const Tokenizer& tokenizer,
                                                  const RuleOptions& rules) {
  ClassifierData data;
  ASSIGN_OR_RETURN(data.task, LoadTaskData(config.task, config.run.seed, false));
  ASSIGN_OR_RETURN(data.labels, LabelSet::FromTrainingData(data.task.train));
  ASSIGN_OR_RETURN(data.train_labels, LabelIds(data.task.train, data.labels));
  ASSIGN_OR_RETURN(data.valid_labels, LabelIds(data.task.valid, data.labels));
  const std::string cache_dir = DefaultCacheDir(config.text);
  RETURN_IF_ERROR(EnsureWritableDir(cache_dir, "text.cache_dir"));
  ASSIGN_OR_RETURN(data.train_ids, TokenizeCorpus(data.task.train.texts, tokenizer, rules,
                                                  cache_dir, config.text.threads));
  ASSIGN_OR_RETURN(data.valid_ids, TokenizeCorpus(data.task.valid.texts, tokenizer, rules,
                                                  cache_dir, config.text.threads));
  return data;
}

// BPT3C runs the encoder over every text to its end (only the last max_len tokens get
// gradients), so one huge text (a 5 MB log pasted into a cell) can make an epoch take minutes.
void WarnAboutVeryLongTexts(const TokenizedCorpus& docs, const ClassifierConfig& clas) {
  const int64_t limit = 20 * static_cast<int64_t>(clas.max_len);
  int64_t count = 0;
  int64_t longest = 0;
  for (int64_t d = 0; d < docs.num_docs(); ++d) {
    const int64_t length = docs.offsets[d + 1] - docs.offsets[d];
    if (length > limit) ++count;
    longest = std::max(longest, length);
  }
  if (count == 0) return;
  LogInfo(fmt::format(
      "classify: warning: {} training text{} longer than {} tokens (the longest: {}); the "
      "classifier reads every text to its end and back-propagates through its last "
      "classifier.max_len ({}) tokens, so such texts slow every epoch; max_len applies to the "
      "classifier only. Trim them in task.train if epochs are slow",
      count, count == 1 ? " is" : "s are", limit, longest, clas.max_len));
}

// Writes <run>/model: the resolved config (with the LM's architecture), the tokenizer, the
// labels and the weights.
absl::Status ExportModelDirectory(const Config& config, const FineTunedModel& lm,
                                  const LabelSet& labels, TextClassifier& model,
                                  const fs::path& model_dir) {
  RETURN_IF_ERROR(EnsureWritableDir(model_dir.string(), "run.output_dir"));
  Config exported_config = config;
  exported_config.model = lm.model;
  RETURN_IF_ERROR(
      WriteFileAtomic((model_dir / "config.yaml").string(), ConfigToYaml(exported_config)));
  // The tokenizer under its own name (spm.model or words.vocab), the only one in the folder.
  for (const char* name : {kSentencePieceFile, kWordVocabularyFile}) fs::remove(model_dir / name);
  RETURN_IF_ERROR(CopyFileAtomic(
      lm.tokenizer, (model_dir / fs::path(lm.tokenizer).filename()).string()));
  ASSIGN_OR_RETURN(const std::string tokenizer_bytes, ReadFile(lm.tokenizer));
  RETURN_IF_ERROR(WriteFileAtomic((model_dir / kTokenizerHashFile).string(),
                                  TokenizerHashLine(tokenizer_bytes)));
  RETURN_IF_ERROR(labels.Save((model_dir / "labels.txt").string()));
  return SaveModuleWeights(*model, (model_dir / kClassifierWeightsFile).string());
}

// Scores the exported model on the test set and writes test_metrics.json, the confusion matrix
// and a metrics.jsonl line.
absl::StatusOr<ClassificationMetrics> ScoreTestSet(const Config& config, const TaskData& task,
                                                   const LabelSet& labels,
                                                   const fs::path& model_dir,
                                                   const torch::Device& device) {
  const fs::path run_dir(config.run.output_dir);
  ASSIGN_OR_RETURN(const Classifier classifier, Classifier::Load(model_dir.string(), device));
  ClassifierEvaluation test;
  if (World* world = CurrentWorld()) {
    // Each rank scores every size-th batch of the one-process batching: BPT3C's pooled window
    // depends on a batch's longest text, so other batches would score long texts differently.
    ASSIGN_OR_RETURN(const ClassifierEvaluation own,
                     classifier.Evaluate(task.test, config.classifier.batch_size,
                                         world->rank(), world->size()));
    test = CombineRankEvaluations(*world, own, static_cast<int64_t>(task.test.texts.size()),
                                  labels.size());
    if (!world->leader()) return test.metrics;  // rank 0 writes
  } else {
    ASSIGN_OR_RETURN(test, classifier.Evaluate(task.test, config.classifier.batch_size));
  }
  const ClassificationMetrics& m = test.metrics;
  RETURN_IF_ERROR(
      WriteFileAtomic((run_dir / "test_metrics.json").string(), MetricsJson(m) + "\n"));
  RETURN_IF_ERROR(WriteFileAtomic((run_dir / "confusion_matrix.csv").string(),
                                  ConfusionMatrixCsv(m, labels.names())));
  RETURN_IF_ERROR(AppendLine(
      (run_dir / "metrics.jsonl").string(),
      JsonLine()
          .Add("stage", "classify").Add("event", "test").Add("test_loss", m.loss)
          .Add("test_acc", m.accuracy).Add("test_error", m.error_rate)
          .Add("test_macro_f1", m.macro_f1).Add("count", m.count)
          .str()));
  LogInfo(fmt::format("classify: test error {:.2f}% (accuracy {:.4f}, macro-F1 {:.4f}) on {} "
                      "examples; confusion matrix in {}",
                      100 * m.error_rate, m.accuracy, m.macro_f1, m.count,
                      (run_dir / "confusion_matrix.csv").string()));
  return m;
}

}  // namespace

std::string LanguageModelRun(const Config& config) {
  return config.classifier.language_model.empty() ? config.run.output_dir
                                                  : config.classifier.language_model;
}

absl::Status CheckTestLabels(const Config& config) {
  if (config.task.train.empty() || config.task.test.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const TaskData task, LoadTaskData(config.task, config.run.seed, false));
  ASSIGN_OR_RETURN(const LabelSet labels, LabelSet::FromTrainingData(task.train));
  return LabelIds(task.test, labels).status();
}

absl::StatusOr<StageResult> RunClassify(const Config& config, bool resume) {
  return RunClassifyFrom(config, resume, LanguageModelRun(config));
}

absl::StatusOr<StageResult> RunClassifyFrom(const Config& config, bool resume,
                                            const std::string& lm_run_dir) {
  const fs::path run_dir(config.run.output_dir);
  const fs::path stage_dir = run_dir / "classifier";
  const fs::path model_dir = run_dir / "model";
  const std::string exported = (model_dir / kClassifierWeightsFile).string();
  bool done = false;
  // In a data-parallel run rank 0 decides first (a stale stage directory is set aside then).
  RETURN_IF_ERROR(LeaderFirst("checking the classifier stage", [&]() -> absl::Status {
    RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
    ASSIGN_OR_RETURN(done, StageAlreadyDone(config, "classify"));
    RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
    return done ? absl::OkStatus() : StartStage(config, "classify", resume).status();
  }));
  if (done) return StageResult{StageOutcome::kSkipped};
  ASSIGN_OR_RETURN(const FineTunedModel lm, FindFineTunedModel(config, lm_run_dir));
  ASSIGN_OR_RETURN(const std::vector<UnfreezePhase> phases, ParsePhases(config.classifier));
  ASSIGN_OR_RETURN(const torch::Device device, TrainingDevice(config.run.device));
  // Each rank its own dropout masks.
  torch::manual_seed(RankSeed(StreamSeed(config.run.seed, SeedStream::kClassify), WorldRank()));

  ASSIGN_OR_RETURN(const Tokenizer tokenizer, Tokenizer::Load(lm.tokenizer));
  const RuleOptions rules{lm.config.text.rules, lm.config.text.lowercase};
  const ClassifierConfig& clas = config.classifier;
  ASSIGN_OR_RETURN(const int64_t batch_size,
                   JobBatchSize(clas.batch_size, "classifier.batch_size", config.run));
  // Rank 0 fills the token caches; the others then read them.
  std::optional<ClassifierData> loaded;
  RETURN_IF_ERROR(LeaderFirst("preparing the classifier's data", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(loaded, LoadClassifierData(config, tokenizer, rules));
    return absl::OkStatus();
  }));
  ClassifierData& data = *loaded;
  // Before training, not after it.
  RETURN_IF_ERROR(LabelIds(data.task.test, data.labels).status());
  WarnAboutVeryLongTexts(data.train_ids, config.classifier);

  TextClassifier model(ClassifierOptions::FromConfig(lm.model, clas, tokenizer.vocab_size(),
                                                     data.labels.size(), kPadId));
  {
    LanguageModel encoder_source(
        LanguageModelOptions::FromConfig(lm.model, tokenizer.vocab_size(), kPadId));
    RETURN_IF_ERROR(LoadModuleWeights(*encoder_source, lm.weights));
    model->LoadEncoderFrom(encoder_source);
  }
  model->to(device);

  ClasBatcher train_batcher(&data.train_ids, &data.train_labels, batch_size, clas.bptt,
                            /*shuffle=*/true, config.model.backwards,
                            StreamSeed(config.run.seed, SeedStream::kClassify));
  if (WorldSize() > 1) train_batcher.SetShard(WorldRank(), WorldSize());
  ClasBatcher valid_batcher(&data.valid_ids, &data.valid_labels, clas.batch_size, clas.bptt,
                            /*shuffle=*/false, config.model.backwards, 0);
  valid_batcher.StartEpoch(0);
  // The same fixed sample after every epoch, so a resumed run measures what an uninterrupted one
  // would have. Draws no random numbers: training is the same with or without it.
  const TokenizedCorpus bn_ids = SelectDocuments(
      data.train_ids,
      clas.precise_bn_docs > 0
          ? PreciseBatchNormSample(data.train_ids.num_docs(), clas.precise_bn_docs,
                                   StreamSeed(config.run.seed, SeedStream::kPreciseBnSample))
          : std::vector<int64_t>{});
  ClasBatcher bn_batcher(&bn_ids, nullptr, clas.batch_size, clas.bptt, /*shuffle=*/false,
                         config.model.backwards, 0);

  ClasTrainingJob job;
  job.stage_dir = stage_dir.string();
  job.metrics_path = (run_dir / "metrics.jsonl").string();
  job.model = model;
  job.train = &train_batcher;
  // task.valid_fraction 0: no validation data, the last epoch is kept.
  job.valid = data.valid_ids.num_docs() > 0 ? &valid_batcher : nullptr;
  job.batch_norm = &bn_batcher;
  job.num_classes = data.labels.size();
  job.phases = phases;
  job.config = clas;
  job.resume = resume;
  job.checkpoint_minutes = config.run.checkpoint_minutes;
  job.log_every = config.run.log_every;
  job.device = device;
  job.cpu_bf16 = config.run.cpu_bf16;
  job.world = CurrentWorld();
  ASSIGN_OR_RETURN(StageResult result, TrainClassifier(job));
  if (result.outcome != StageOutcome::kCompleted) return result;
  // Rank 0 exports (the others' weights are the same); then every rank scores its share of the
  // test set with the exported model.
  RETURN_IF_ERROR(LeaderFirst("exporting the model", [&]() -> absl::Status {
    if (!IsLeaderProcess()) return absl::OkStatus();
    RETURN_IF_ERROR(ExportModelDirectory(config, lm, data.labels, model, model_dir));
    RETURN_IF_ERROR(MarkStageDone(config, "classify", exported));
    const bool has_valid = job.valid != nullptr;
    LogInfo(fmt::format("classify: {} epoch {}{}; model exported to {}",
                        has_valid ? "best" : "last", result.best_epoch,
                        has_valid ? " by " + std::string(EnumName(clas.select_metric)) : "",
                        model_dir.string()));
    return absl::OkStatus();
  }));
  if (!data.task.test.texts.empty()) {
    ASSIGN_OR_RETURN(result.test,
                     ScoreTestSet(config, data.task, data.labels, model_dir, device));
  }
  return result;
}

}  // namespace ulmfit
