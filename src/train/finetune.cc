// Stage 2: fine-tuning the pretrained language model on the target task's text, with
// discriminative learning rates and an optional first phase that trains only the embedding
// and decoder (fastai's frozen epoch).
#include <cmath>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "config/config_loader.h"
#include "data/token_cache.h"
#include "text/rules.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/stages.h"
#include "train/task_data.h"
#include "util/files.h"
#include "util/progress.h"

namespace ulmfit {
namespace fs = std::filesystem;

std::vector<double> LmGroupLrMultipliers(Discriminative discriminative, double lr_factor,
                                         int num_layers) {
  // Groups: rnn0 .. rnn{n-1}, then embedding + decoder (the top, at the full lr).
  const int groups = num_layers + 1;
  std::vector<double> mult(groups, 1.0);
  if (discriminative == Discriminative::kFactor) {
    for (int g = 0; g < groups; ++g) mult[g] = std::pow(lr_factor, -(groups - 1 - g));
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

absl::StatusOr<PretrainedSource> FindPretrained(const Config& config) {
  PretrainedSource source;
  source.model = config.model;
  if (config.finetune.pretrained == kNoPretraining) return source;  // no files: random init
  source.dir = config.finetune.pretrained.empty() ? config.run.output_dir
                                                  : config.finetune.pretrained;
  source.weights = (fs::path(source.dir) / "pretrain" / "lm.pt").string();
  source.tokenizer = (fs::path(source.dir) / "tokenizer" / "spm.model").string();
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

absl::StatusOr<StageResult> RunFinetune(const Config& config, bool resume) {
  const fs::path run_dir(config.run.output_dir);
  const fs::path stage_dir = run_dir / "finetune";
  const std::string final_weights = (stage_dir / "lm.pt").string();
  RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
  if (StageAlreadyDone(config, "finetune", final_weights, {stage_dir.string()})) {
    return StageResult{StageOutcome::kSkipped};
  }
  RETURN_IF_ERROR(EnsureWritableDir(stage_dir.string(), "run.output_dir"));
  ASSIGN_OR_RETURN(const PretrainedSource source, FindPretrained(config));
  ASSIGN_OR_RETURN(const torch::Device device, ResolveDevice(config.run.device));
  torch::manual_seed(config.run.seed + 1);

  // All of the task's text, labels unused (paper section 3.2), 10% held out for validation.
  ASSIGN_OR_RETURN(TaskData task, LoadTaskData(config.task, config.run.seed, true));
  std::vector<std::string> docs = std::move(task.unlabeled);
  for (auto* split : {&task.train, &task.valid}) {
    docs.insert(docs.end(), split->texts.begin(), split->texts.end());
  }
  if (config.finetune.use_test_text) {
    docs.insert(docs.end(), task.test.texts.begin(), task.test.texts.end());
  }
  std::mt19937_64 rng(config.run.seed ^ 0x66696e65ULL);
  for (size_t i = docs.size(); i > 1; --i) std::swap(docs[i - 1], docs[rng() % i]);
  const size_t n_valid = std::max<size_t>(1, docs.size() / 10);
  std::vector<std::string> valid_docs(docs.end() - n_valid, docs.end());
  docs.resize(docs.size() - n_valid);

  const RuleOptions rules{config.text.rules, config.text.lowercase};
  const std::string cache_dir = DefaultCacheDir(config.text);
  RETURN_IF_ERROR(EnsureWritableDir(cache_dir, "text.cache_dir"));

  // Tokenizer: the pretrained one, unless the config names its own (then vocabularies differ
  // and the embedding rows are matched by piece). Without pretraining, one trained on this text.
  const std::string tokenizer_path = (run_dir / "tokenizer" / "spm.model").string();
  RETURN_IF_ERROR(EnsureWritableDir((run_dir / "tokenizer").string(), "run.output_dir"));
  std::string tokenizer_source = config.text.spm_model.empty() ? source.tokenizer
                                                                : config.text.spm_model;
  if (tokenizer_source.empty()) {
    LogInfo(fmt::format("finetune: no pretraining; training a {}-piece SentencePiece model on "
                        "the task's text", config.text.vocab_size));
    RETURN_IF_ERROR(TrainTokenizerCached(docs, rules, config.text, cache_dir, tokenizer_path,
                                         config.run.seed, config.text.threads)
                        .status());
    tokenizer_source = tokenizer_path;
  }
  if (fs::absolute(tokenizer_source) != fs::absolute(tokenizer_path)) {
    fs::copy_file(tokenizer_source, tokenizer_path, fs::copy_options::overwrite_existing);
  }
  ASSIGN_OR_RETURN(const Tokenizer tokenizer, Tokenizer::Load(tokenizer_path));
  ASSIGN_OR_RETURN(TokenizedCorpus train_ids, TokenizeCorpus(docs, tokenizer, rules, cache_dir,
                                                             config.text.threads));
  ASSIGN_OR_RETURN(TokenizedCorpus valid_ids, TokenizeCorpus(valid_docs, tokenizer, rules,
                                                             cache_dir, config.text.threads));
  LogInfo(fmt::format("finetune: {} training and {} validation tokens", train_ids.ids.size(),
                      valid_ids.ids.size()));

  const FinetuneConfig& ft = config.finetune;
  ModelConfig model_config = source.model;
  model_config.dropout = config.model.dropout;
  model_config.drop_mult = ft.drop_mult;
  LanguageModel model(LanguageModelOptions::FromConfig(model_config, tokenizer.vocab_size(),
                                                       kPadId));
  const bool random_start = source.weights.empty();  // finetune.pretrained: none
  if (random_start) {
    // No pretrained run to copy the architecture from: the model section applies, whose
    // defaults are the full-size model (slow on a CPU), so say which one this is.
    LogInfo(fmt::format(
        "finetune: finetune.pretrained is none: the language model starts from random weights, "
        "with the model section's architecture ({}/{}/{}: model.emb_size/hidden_size/"
        "num_layers)",
        model_config.emb_size, model_config.hidden_size, model_config.num_layers));
  } else {
    ASSIGN_OR_RETURN(const Tokenizer pretrained_tokenizer, Tokenizer::Load(source.tokenizer));
    if (pretrained_tokenizer.SerializedModel() == tokenizer.SerializedModel()) {
      RETURN_IF_ERROR(LoadModuleWeights(*model, source.weights));
    } else {
      RETURN_IF_ERROR(CopyMatchedLanguageModel(source.weights, pretrained_tokenizer, tokenizer,
                                               source.model, model));
    }
  }

  LmBatcherOptions train_options;
  train_options.batch_size = ft.batch_size;
  train_options.bptt = ft.bptt;
  train_options.variable_bptt = ft.variable_bptt;
  train_options.shuffle = true;
  train_options.backwards = config.model.backwards;
  train_options.seed = config.run.seed + 1;
  LmBatcher train_batcher(&train_ids.ids, &train_ids.offsets, train_options);
  LmBatcherOptions valid_options = train_options;
  valid_options.variable_bptt = false;
  valid_options.shuffle = false;
  valid_options.batch_size = std::min<int64_t>(
      ft.batch_size, std::max<int64_t>(1, static_cast<int64_t>(valid_ids.ids.size()) / 8));
  LmBatcher valid_batcher(&valid_ids.ids, &valid_ids.offsets, valid_options);
  valid_batcher.StartEpoch(0);

  LmTrainingJob job;
  job.metrics_path = (run_dir / "metrics.jsonl").string();
  job.model = model;
  job.train = &train_batcher;
  job.valid = valid_batcher.num_batches() > 0 ? &valid_batcher : nullptr;
  job.schedule = ft.schedule;
  job.optimizer = ft.optimizer;
  job.ar_alpha = ft.ar_alpha;
  job.tar_beta = ft.tar_beta;
  job.bptt = ft.bptt;
  job.scale_lr_with_seq_len = ft.variable_bptt;
  job.mixed_precision = ft.mixed_precision;
  job.max_steps_per_epoch = ft.max_steps;
  job.resume = resume;
  job.checkpoint_minutes = config.run.checkpoint_minutes;
  job.log_every = config.run.log_every;
  job.device = device;

  StageResult result;
  const int num_groups = source.model.num_layers + 1;
  // The frozen epochs fit new embeddings to a pretrained encoder. Over random LSTMs they protect
  // nothing, and the classifier learned less from the result (TREC-6, 1,000 labels, CPU config,
  // 3 seeds: 65.9% test error with a frozen epoch, 55.0% without; docs/results.md, Ablations).
  if (ft.frozen_epochs > 0 && random_start) {
    LogInfo("finetune: finetune.frozen_epochs skipped: with finetune.pretrained: none there is "
            "no pretrained encoder to freeze");
  } else if (ft.frozen_epochs > 0) {
    const fs::path frozen_dir = stage_dir / "frozen";
    const std::string frozen_weights = (frozen_dir / "lm.pt").string();
    if (fs::exists(frozen_weights)) {
      RETURN_IF_ERROR(LoadModuleWeights(*model, frozen_weights));
    } else {
      RETURN_IF_ERROR(EnsureWritableDir(frozen_dir.string(), "run.output_dir"));
      job.stage = "finetune_frozen";
      job.stage_dir = frozen_dir.string();
      job.epochs = ft.frozen_epochs;
      job.lr = ft.frozen_lr;
      job.group_lr_mult.assign(num_groups, 0.0);
      job.group_lr_mult.back() = 1.0;  // embedding + decoder only
      ASSIGN_OR_RETURN(result, TrainLanguageModel(job));
      if (result.outcome != StageOutcome::kCompleted) return result;
      RETURN_IF_ERROR(SaveModuleWeights(*model, frozen_weights));
    }
  }
  if (ft.epochs > 0) {
    job.stage = "finetune";
    job.stage_dir = stage_dir.string();
    job.epochs = ft.epochs;
    job.lr = ft.lr;
    job.group_lr_mult =
        LmGroupLrMultipliers(ft.discriminative, ft.lr_factor, source.model.num_layers);
    ASSIGN_OR_RETURN(result, TrainLanguageModel(job));
    if (result.outcome != StageOutcome::kCompleted) return result;
  }
  RETURN_IF_ERROR(SaveModuleWeights(*model, final_weights));
  RETURN_IF_ERROR(MarkStageDone(config, "finetune", final_weights));
  LogInfo(fmt::format("finetune: done; fine-tuned language model saved to {}", final_weights));
  return result;
}

}  // namespace ulmfit
