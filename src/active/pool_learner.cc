#include "active/pool_learner.h"

#include <algorithm>

#include <fmt/format.h>

#include "config/config_loader.h"
#include "data/clas_batcher.h"
#include "infer/classifier.h"
#include "model/weights.h"
#include "text/rules.h"
#include "text/tokenizer.h"
#include "train/clas_trainer.h"
#include "train/precise_bn.h"
#include "util/device.h"
#include "util/files.h"
#include "util/progress.h"

namespace ulmfit {

absl::StatusOr<std::unique_ptr<PoolLearner>> PoolLearner::Load(const Config& config,
                                                               const std::string& lm_run_dir,
                                                               const LabeledData& pool,
                                                               const LabeledData& test,
                                                               const LabelSet& labels) {
  std::unique_ptr<PoolLearner> learner(new PoolLearner());
  learner->config_ = config;
  learner->labels_ = labels;
  ASSIGN_OR_RETURN(learner->lm_, FindFineTunedModel(config, lm_run_dir));
  ASSIGN_OR_RETURN(learner->device_, ResolveDevice(config.run.device));
  ASSIGN_OR_RETURN(const Tokenizer tokenizer, Tokenizer::Load(learner->lm_.tokenizer));
  learner->vocab_size_ = tokenizer.vocab_size();
  learner->encoder_source_ = LanguageModel(
      LanguageModelOptions::FromConfig(learner->lm_.model, learner->vocab_size_, kPadId));
  RETURN_IF_ERROR(LoadModuleWeights(*learner->encoder_source_, learner->lm_.weights));

  const RuleOptions rules{learner->lm_.config.text.rules, learner->lm_.config.text.lowercase};
  const std::string cache_dir = DefaultCacheDir(config.text);
  RETURN_IF_ERROR(EnsureWritableDir(cache_dir, "text.cache_dir"));
  ASSIGN_OR_RETURN(learner->pool_ids_, TokenizeCorpus(pool.texts, tokenizer, rules, cache_dir,
                                                      config.text.threads));
  ASSIGN_OR_RETURN(learner->test_ids_, TokenizeCorpus(test.texts, tokenizer, rules, cache_dir,
                                                      config.text.threads));
  ASSIGN_OR_RETURN(learner->pool_labels_, LabelIds(pool, labels));
  ASSIGN_OR_RETURN(learner->test_labels_, LabelIds(test, labels));
  return learner;
}

TextClassifier PoolLearner::NewClassifier() {
  TextClassifier model(ClassifierOptions::FromConfig(lm_.model, config_.classifier, vocab_size_,
                                                     labels_.size(), kPadId));
  model->LoadEncoderFrom(encoder_source_);
  model->to(device_);
  return model;
}

absl::StatusOr<PoolLearner::Trained> PoolLearner::Train(const std::vector<int64_t>& labelled,
                                                        uint64_t seed,
                                                        const std::string& scratch_dir,
                                                        const std::string& metrics_path) {
  const ClassifierConfig& clas = config_.classifier;
  ASSIGN_OR_RETURN(const std::vector<UnfreezePhase> phases, ParsePhases(clas));
  RemoveTree(scratch_dir);
  RETURN_IF_ERROR(EnsureWritableDir(scratch_dir, "run.output_dir"));
  torch::manual_seed(seed);
  Trained trained;
  trained.model = NewClassifier();

  const TokenizedCorpus train_ids = SelectDocuments(pool_ids_, labelled);
  std::vector<int64_t> train_labels;
  for (int64_t i : labelled) train_labels.push_back(pool_labels_.at(i));
  ClasBatcher train_batcher(&train_ids, &train_labels, clas.batch_size, clas.bptt,
                            /*shuffle=*/true, config_.model.backwards, seed);
  const TokenizedCorpus bn_ids = SelectDocuments(
      train_ids, clas.precise_bn_docs > 0
                     ? PreciseBatchNormSample(train_ids.num_docs(), clas.precise_bn_docs,
                                              seed ^ 0x626eULL)
                     : std::vector<int64_t>{});
  ClasBatcher bn_batcher(&bn_ids, nullptr, clas.batch_size, clas.bptt, /*shuffle=*/false,
                         config_.model.backwards, 0);

  ClasTrainingJob job;
  job.stage_dir = scratch_dir;
  job.metrics_path = metrics_path;
  job.model = trained.model;
  job.train = &train_batcher;
  job.valid = nullptr;  // every label trains; the last epoch is kept
  job.batch_norm = &bn_batcher;
  job.num_classes = labels_.size();
  job.phases = phases;
  job.config = clas;
  job.checkpoint_minutes = config_.run.checkpoint_minutes;
  job.log_every = 1 << 30;  // a round's loop is short: the simulation logs per round
  job.device = device_;
  job.cpu_bf16 = config_.run.cpu_bf16;
  ASSIGN_OR_RETURN(trained.result, TrainClassifier(job));
  if (trained.result.outcome != StageOutcome::kCompleted) trained.model = nullptr;
  return trained;
}

ClassificationMetrics PoolLearner::Test(TextClassifier& model) {
  ClasBatcher batcher(&test_ids_, &test_labels_, config_.classifier.batch_size,
                      config_.classifier.bptt, /*shuffle=*/false, config_.model.backwards, 0);
  return EvaluateClassifier(model, batcher, labels_.size(), device_).metrics;
}

const std::vector<std::vector<float>>& PoolLearner::EncoderFeatures() {
  if (!encoder_features_.empty() || pool_ids_.num_docs() == 0) return encoder_features_;
  // The head is untrained and unused: the features are its input.
  TextClassifier model = NewClassifier();
  ClasBatcher batcher(&pool_ids_, nullptr, config_.classifier.batch_size,
                      config_.classifier.bptt, /*shuffle=*/false, config_.model.backwards, 0);
  encoder_features_ =
      EvaluateClassifier(model, batcher, labels_.size(), device_, /*with_features=*/true)
          .features;
  return encoder_features_;
}

CandidateViews PoolLearner::Views(Strategy strategy, TextClassifier* model,
                                  const std::vector<int64_t>& candidates, uint64_t seed) {
  const ViewsNeeded needed = NeedsViews(strategy);
  CandidateViews views;
  views.ids = candidates;
  if (strategy == Strategy::kKMeans) {
    const auto& all = EncoderFeatures();
    for (int64_t i : candidates) views.features.push_back(all.at(i));
    return views;
  }
  if (model == nullptr || !(needed.probs || needed.features || needed.last_hidden)) return views;
  const TokenizedCorpus ids = SelectDocuments(pool_ids_, candidates);
  const ClassifierConfig& clas = config_.classifier;
  ClasBatcher batcher(&ids, nullptr, clas.batch_size, clas.bptt, /*shuffle=*/false,
                      config_.model.backwards, 0);
  ClassifierEvaluation eval = EvaluateClassifier(*model, batcher, labels_.size(), device_,
                                                 needed.features || needed.last_hidden);
  views.probs = std::move(eval.probs);
  views.features = std::move(eval.features);
  views.last_hidden = std::move(eval.last_hidden);
  if (needed.mc_passes) {
    torch::manual_seed(seed);
    const int passes = std::max(1, config_.active.mc_passes);
    // A batch of texts, each repeated T times, per forward (batch_size * T rows). The time is
    // the T forwards' arithmetic: 40 s a round for 10 passes over TREC-6's 5,400 questions on
    // one core, with 12 or 32 texts a forward alike.
    ClasBatcher mc_batcher(&ids, nullptr, clas.batch_size,
                           clas.bptt, /*shuffle=*/false, config_.model.backwards, 0);
    views.mc_probs = McDropoutProbabilities(*model, mc_batcher, labels_.size(), passes, device_);
  }
  return views;
}

}  // namespace ulmfit
