// Stage 3: the classifier. The fine-tuned encoder plus a concat-pooling head, trained with
// gradual unfreezing, discriminative learning rates and a schedule per phase; the best epoch by
// classifier.select_metric is kept and exported as a self-contained model directory.
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "config/config_loader.h"
#include "data/clas_batcher.h"
#include "data/token_cache.h"
#include "model/classifier.h"
#include "text/rules.h"
#include "train/autocast.h"
#include "train/checkpoint.h"
#include "train/classifier_eval.h"
#include "train/precise_bn.h"
#include "train/schedule.h"
#include "train/stages.h"
#include "train/task_data.h"
#include "util/files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/signals.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// Higher is better for every selectable metric (loss is negated).
double SelectionScore(const ClassificationMetrics& m, SelectMetric metric) {
  if (metric == SelectMetric::kLoss) return -m.loss;
  if (metric == SelectMetric::kMacroF1) return m.macro_f1;
  return m.accuracy;
}

std::string MetricsJson(const ClassificationMetrics& m) {
  return JsonLine()
      .Add("loss", m.loss).Add("accuracy", m.accuracy).Add("error_rate", m.error_rate)
      .Add("macro_f1", m.macro_f1).Add("count", m.count)
      .str();
}

}  // namespace

std::string LanguageModelRun(const Config& config) {
  return config.classifier.language_model.empty() ? config.run.output_dir
                                                  : config.classifier.language_model;
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
  RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
  if (StageAlreadyDone(config, "classify", exported, {stage_dir.string(), model_dir.string()})) {
    return StageResult{StageOutcome::kSkipped};
  }
  RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
  const std::string lm_weights = (fs::path(lm_run_dir) / "finetune" / "lm.pt").string();
  if (!fs::exists(lm_weights)) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: no fine-tuned language model; run stage 2 first (--stage finetune)", lm_weights));
  }
  Config lm_config = config;  // the run whose stage 1 (or finetune.pretrained) built the LM
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
    lm_config = *other;
  }
  lm_config.run.output_dir = lm_run_dir;
  ASSIGN_OR_RETURN(const ModelConfig model_config, PretrainedModelConfig(lm_config));
  ASSIGN_OR_RETURN(const std::vector<UnfreezePhase> phases, ParsePhases(config.classifier));
  ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice(config.run.device));
  torch::manual_seed(config.run.seed + 2);

  const std::string tokenizer_path =
      (fs::path(lm_run_dir) / "tokenizer" / "spm.model").string();
  ASSIGN_OR_RETURN(const Tokenizer tokenizer, Tokenizer::Load(tokenizer_path));
  ASSIGN_OR_RETURN(TaskData task, LoadTaskData(config.task, config.run.seed, false));
  ASSIGN_OR_RETURN(const LabelSet labels, LabelSet::FromTrainingData(task.train));
  ASSIGN_OR_RETURN(std::vector<int64_t> train_labels, LabelIds(task.train, labels));
  ASSIGN_OR_RETURN(std::vector<int64_t> valid_labels, LabelIds(task.valid, labels));

  const RuleOptions rules{lm_config.text.rules, lm_config.text.lowercase};
  const std::string cache_dir = DefaultCacheDir(config.text);
  RETURN_IF_ERROR(EnsureWritableDir(cache_dir, "text.cache_dir"));
  ASSIGN_OR_RETURN(TokenizedCorpus train_ids, TokenizeCorpus(task.train.texts, tokenizer, rules,
                                                             cache_dir, config.text.threads));
  ASSIGN_OR_RETURN(TokenizedCorpus valid_ids, TokenizeCorpus(task.valid.texts, tokenizer, rules,
                                                             cache_dir, config.text.threads));

  const ClassifierConfig& clas = config.classifier;
  TextClassifier model(ClassifierOptions::FromConfig(model_config, clas, tokenizer.vocab_size(),
                                                     labels.size(), kPadId));
  {
    LanguageModel lm(LanguageModelOptions::FromConfig(model_config, tokenizer.vocab_size(),
                                                      kPadId));
    RETURN_IF_ERROR(LoadModuleWeights(*lm, lm_weights));
    model->LoadEncoderFrom(lm);
  }
  model->to(device);

  ClasBatcher train_batcher(&train_ids, &train_labels, clas.batch_size, clas.bptt,
                            /*shuffle=*/true, config.model.backwards, config.run.seed + 2);
  ClasBatcher valid_batcher(&valid_ids, &valid_labels, clas.batch_size, clas.bptt,
                            /*shuffle=*/false, config.model.backwards, 0);
  valid_batcher.StartEpoch(0);
  // The same fixed sample after every epoch, so a resumed run measures what an uninterrupted one
  // would have. Draws no random numbers: training is the same with or without it.
  const TokenizedCorpus bn_ids = SelectDocuments(
      train_ids, clas.precise_bn_docs > 0
                     ? PreciseBatchNormSample(train_ids.num_docs(), clas.precise_bn_docs,
                                              config.run.seed + 5)
                     : std::vector<int64_t>{});
  ClasBatcher bn_batcher(&bn_ids, nullptr, clas.batch_size, clas.bptt, /*shuffle=*/false,
                         config.model.backwards, 0);

  // One optimizer for all phases (its moments persist, as in fastai); a group per layer group.
  const auto groups = model->LayerGroups();
  const int num_groups = static_cast<int>(groups.size());
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (const auto& params : groups) {
    auto options = std::make_unique<torch::optim::AdamWOptions>(1e-3);
    options->betas({clas.optimizer.beta1, clas.optimizer.beta2})
        .eps(clas.optimizer.eps)
        .weight_decay(clas.optimizer.weight_decay);
    param_groups.emplace_back(params, std::move(options));
  }
  torch::optim::AdamW optimizer(std::move(param_groups), torch::optim::AdamWOptions(1e-3));

  // Resume: the checkpoint marks the next global epoch to run.
  const std::string checkpoint_dir = (stage_dir / "checkpoint").string();
  const std::string best_weights = (stage_dir / "best.pt").string();
  const std::string best_json = (stage_dir / "best.json").string();
  const std::string metrics_path = (run_dir / "metrics.jsonl").string();
  TrainingState state;
  state.stage = "classify";
  double best_score = -std::numeric_limits<double>::infinity();
  int64_t best_epoch = 0;
  if (resume && CheckpointExists(checkpoint_dir)) {
    std::vector<torch::Tensor> unused;
    ASSIGN_OR_RETURN(state, LoadCheckpoint(checkpoint_dir, *model, optimizer, &unused));
    if (fs::exists(best_json)) {
      const YAML::Node best = YAML::LoadFile(best_json);
      best_score = best["score"].as<double>();
      best_epoch = best["epoch"].as<int64_t>();
    }
    std::error_code ec;
    if (static_cast<int64_t>(fs::file_size(metrics_path, ec)) > state.metrics_bytes && !ec) {
      fs::resize_file(metrics_path, static_cast<uintmax_t>(state.metrics_bytes));
    }
    LogInfo(fmt::format("classify: resuming at epoch {}", state.epoch + 1));
  } else if (!resume && CheckpointExists(checkpoint_dir)) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: an unfinished classifier run is here; continue it with --resume, or choose "
        "another run.output_dir", checkpoint_dir));
  }

  const bool mixed_precision = clas.mixed_precision && device.is_cuda();
  const bool has_valid = valid_ids.num_docs() > 0;  // task.valid_fraction 0: keep the last epoch
  int total_epochs = 0;
  for (const auto& phase : phases) total_epochs += phase.epochs;
  ProgressLine progress;
  const auto stage_start = Clock::now();
  StageResult result;
  int global_epoch = 0;
  for (size_t p = 0; p < phases.size(); ++p) {
    const UnfreezePhase& phase = phases[p];
    const int trainable = phase.groups == 0 ? num_groups : std::min(phase.groups, num_groups);
    // Gradual unfreezing: only the top `trainable` groups learn in this phase.
    for (int g = 0; g < num_groups; ++g) {
      for (auto param : groups[g]) param.requires_grad_(g >= num_groups - trainable);
    }
    train_batcher.StartEpoch(0);
    const int64_t batches_per_pass = train_batcher.num_batches();
    int64_t steps_per_epoch =  // no batches at all: nothing to repeat
        batches_per_pass > 0 ? std::max(batches_per_pass, clas.min_steps_per_epoch) : 0;
    if (clas.max_steps > 0) steps_per_epoch = std::min(steps_per_epoch, clas.max_steps);
    const LrSchedule schedule(clas.schedule, phase.lr, clas.optimizer.beta1,
                              steps_per_epoch * std::max(phase.epochs, 1));
    for (int e = 0; e < phase.epochs; ++e, ++global_epoch) {
      if (global_epoch < state.epoch) continue;  // done before the resume
      model->train();
      train_batcher.StartEpoch(global_epoch);
      double loss_sum = 0;
      int64_t seen = 0;
      const auto epoch_start = Clock::now();
      for (int64_t i = 0; i < steps_per_epoch; ++i) {
        // classifier.min_steps_per_epoch: passes after the first reshuffle the data.
        const int64_t pass = i / batches_per_pass;
        if (pass > 0 && i % batches_per_pass == 0) {
          train_batcher.StartEpoch(global_epoch + pass * 1000003);
        }
        const ClasBatch batch = train_batcher.Batch(i % batches_per_pass);
        const ScheduleValue value = schedule.At(e * steps_per_epoch + i);
        for (int g = 0; g < num_groups; ++g) {
          auto& options = static_cast<torch::optim::AdamWOptions&>(
              optimizer.param_groups()[g].options());
          options.lr(value.lr * std::pow(clas.lr_factor, -(num_groups - 1 - g)))
              .betas({value.beta1, clas.optimizer.beta2});
        }
        optimizer.zero_grad();
        torch::Tensor loss;
        double loss_value = 0;  // cross-entropy alone, as logged
        {
          AutocastScope autocast(mixed_precision);
          const ClassifierOutput out = model->forward(batch.tokens.to(device));
          loss = torch::nn::functional::cross_entropy(out.logits.to(torch::kFloat),
                                                      batch.labels.to(device));
          loss_value = loss.item<double>();
          if (out.raw.defined() && (clas.ar_alpha > 0 || clas.tar_beta > 0)) {
            LmOutput reg;
            reg.raw = out.raw;
            reg.dropped = out.dropped;
            loss = loss + ArTarLoss(reg, clas.ar_alpha, clas.tar_beta);
          }
        }
        if (!std::isfinite(loss_value) || !std::isfinite(loss.item<double>())) {
          progress.Finish();
          return absl::InternalError(fmt::format(
              "classify: the loss became {} in epoch {}; lower classifier.phase_lrs and run "
              "again with --resume (the last good checkpoint is kept)", loss_value,
              global_epoch + 1));
        }
        loss.backward();
        if (clas.optimizer.clip > 0) {
          torch::nn::utils::clip_grad_norm_(model->parameters(), clas.optimizer.clip);
        }
        optimizer.step();
        loss_sum += loss_value * batch.labels.size(0);
        seen += batch.labels.size(0);
        const double seconds = SecondsSince(epoch_start);
        progress.Update(
            fmt::format("classify ep {}/{} (phase {}, {} groups) step {}/{} loss {:.4f} lr "
                        "{:.2e} docs/s {:.1f} eta {}",
                        global_epoch + 1, total_epochs, p + 1, trainable, i + 1, steps_per_epoch,
                        loss_sum / seen, value.lr, seen / std::max(seconds, 1e-9),
                        FormatDuration(seconds / (i + 1) * (steps_per_epoch - i - 1))),
            (i + 1) % config.run.log_every == 0 || i + 1 == steps_per_epoch);
        if (const int signal = StopSignal(); signal != 0) {
          progress.Finish();
          LogInfo(fmt::format("classify: stopped by signal {}; the last epoch checkpoint is in "
                              "{}; continue with --resume", signal, checkpoint_dir));
          result.outcome = StageOutcome::kInterrupted;
          result.signal = signal;
          return result;
        }
      }
      progress.Finish();
      const double train_seconds = SecondsSince(epoch_start);
      SetPreciseBatchNormStatistics(model, bn_batcher, device);
      const double train_loss = loss_sum / std::max<int64_t>(seen, 1);
      JsonLine line;
      line.Add("stage", "classify").Add("event", "epoch").Add("epoch", global_epoch + 1)
          .Add("phase", static_cast<int64_t>(p + 1)).Add("trainable_groups", trainable)
          .Add("steps", steps_per_epoch).Add("train_loss", train_loss);
      bool best = true;  // without validation data every epoch replaces the last
      if (has_valid) {
        const ClassifierEvaluation eval = EvaluateClassifier(model, valid_batcher,
                                                             labels.size(), device);
        const ClassificationMetrics& m = eval.metrics;
        const double score = SelectionScore(m, clas.select_metric);
        best = score > best_score;
        if (best) best_score = score;
        LogInfo(fmt::format("classify ep {}/{} train_loss {:.4f} valid_loss {:.4f} valid_acc "
                            "{:.4f} valid_f1 {:.4f} time {}{}",
                            global_epoch + 1, total_epochs, train_loss, m.loss, m.accuracy,
                            m.macro_f1, FormatDuration(train_seconds), best ? " (best)" : ""));
        line.Add("valid_loss", m.loss).Add("valid_acc", m.accuracy)
            .Add("valid_error", m.error_rate).Add("valid_macro_f1", m.macro_f1);
      } else {
        best_score = global_epoch + 1;
        LogInfo(fmt::format("classify ep {}/{} train_loss {:.4f} time {} (no validation data: "
                            "the last epoch is kept)", global_epoch + 1, total_epochs,
                            train_loss, FormatDuration(train_seconds)));
      }
      RETURN_IF_ERROR(AppendLine(
          metrics_path, line.Add("docs_per_s", seen / std::max(train_seconds, 1e-9))
                            .Add("seconds", train_seconds).Add("best", best)
                            .str()));
      if (best) {
        best_epoch = global_epoch + 1;
        RETURN_IF_ERROR(SaveModuleWeights(*model, best_weights));
        RETURN_IF_ERROR(WriteFileAtomic(
            best_json, fmt::format("{{\"epoch\": {}, \"metric\": \"{}\", \"score\": {:.17g}}}\n",
                                   best_epoch,
                                   has_valid ? EnumName(clas.select_metric) : "last_epoch",
                                   best_score)));
      }
      state.epoch = global_epoch + 1;
      std::error_code ec;
      state.metrics_bytes = static_cast<int64_t>(fs::file_size(metrics_path, ec));
      state.elapsed_seconds = SecondsSince(stage_start);
      RETURN_IF_ERROR(SaveCheckpoint(checkpoint_dir, *model, optimizer, {}, state));
    }
  }
  for (auto param : model->parameters()) param.requires_grad_(true);

  // Export the best epoch as a self-contained model directory.
  RETURN_IF_ERROR(LoadModuleWeights(*model, best_weights));
  RETURN_IF_ERROR(EnsureWritableDir(model_dir.string(), "run.output_dir"));
  Config exported_config = config;
  exported_config.model = model_config;
  RETURN_IF_ERROR(
      WriteFileAtomic((model_dir / "config.yaml").string(), ConfigToYaml(exported_config)));
  fs::copy_file(tokenizer_path, model_dir / "spm.model", fs::copy_options::overwrite_existing);
  RETURN_IF_ERROR(labels.Save((model_dir / "labels.txt").string()));
  RETURN_IF_ERROR(SaveModuleWeights(*model, exported));
  RETURN_IF_ERROR(MarkStageDone(config, "classify", exported));
  LogInfo(fmt::format("classify: {} epoch {}{}; model exported to {}",
                      has_valid ? "best" : "last", best_epoch,
                      has_valid ? " by " + EnumName(clas.select_metric) : "", model_dir.string()));

  if (!task.test.texts.empty()) {
    ASSIGN_OR_RETURN(const Classifier classifier, Classifier::Load(model_dir.string(), device));
    ASSIGN_OR_RETURN(const ClassifierEvaluation test,
                     classifier.Evaluate(task.test, config.classifier.batch_size));
    RETURN_IF_ERROR(WriteFileAtomic((run_dir / "test_metrics.json").string(),
                                    MetricsJson(test.metrics) + "\n"));
    RETURN_IF_ERROR(WriteFileAtomic((run_dir / "confusion_matrix.csv").string(),
                                    ConfusionMatrixCsv(test.metrics, labels.names())));
    RETURN_IF_ERROR(AppendLine(metrics_path, JsonLine()
                                                 .Add("stage", "classify").Add("event", "test")
                                                 .Add("test_loss", test.metrics.loss)
                                                 .Add("test_acc", test.metrics.accuracy)
                                                 .Add("test_error", test.metrics.error_rate)
                                                 .Add("test_macro_f1", test.metrics.macro_f1)
                                                 .Add("count", test.metrics.count)
                                                 .str()));
    LogInfo(fmt::format("classify: test error {:.2f}% (accuracy {:.4f}, macro-F1 {:.4f}) on {} "
                        "examples; confusion matrix in {}",
                        100 * test.metrics.error_rate, test.metrics.accuracy,
                        test.metrics.macro_f1, test.metrics.count,
                        (run_dir / "confusion_matrix.csv").string()));
  }
  return result;
}

}  // namespace ulmfit
