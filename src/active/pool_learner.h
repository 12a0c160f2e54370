// The in-memory side of active learning: the fine-tuned LM, its tokenizer and the token ids of a
// pool (and of a test set) are loaded once; each round trains a classifier on a subset of the
// pool and scores the rest, without writing a model directory or tokenizing anything again.
// `ulmfit active-learn` runs its rounds on it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "active/strategies.h"
#include "config/config.h"
#include "data/labeled_data.h"
#include "data/token_cache.h"
#include "infer/metrics.h"
#include "model/awd_lstm.h"
#include "model/classifier.h"
#include "train/stage_result.h"
#include "train/stages.h"
#include "util/status.h"

namespace ulmfit {

class PoolLearner {
 public:
  // Loads <lm_run_dir>'s fine-tuned LM and tokenizer and tokenizes `pool` and `test` (through
  // the token cache). `labels` covers every label of the pool and the test set.
  static absl::StatusOr<std::unique_ptr<PoolLearner>> Load(const Config& config,
                                                           const std::string& lm_run_dir,
                                                           const LabeledData& pool,
                                                           const LabeledData& test,
                                                           const LabelSet& labels);

  // A classifier trained on the pool's `labelled` examples as stage 3 trains one (phases,
  // rates, precise BatchNorm; no validation split, the last epoch kept). `scratch_dir` holds
  // the loop's checkpoints while it runs; its per-epoch lines go to `metrics_path`. `seed` sets
  // the dropout masks and the batch order. An interrupted result (a stop signal) leaves `model`
  // unset.
  struct Trained {
    StageResult result;
    TextClassifier model{nullptr};
  };
  absl::StatusOr<Trained> Train(const std::vector<int64_t>& labelled, uint64_t seed,
                                const std::string& scratch_dir,
                                const std::string& metrics_path);

  // Error and macro-F1 on the test set.
  ClassificationMetrics Test(TextClassifier& model);

  // The views of the pool's `candidates` that `strategy` needs (NeedsViews); `model` may be
  // null for strategies that need no classifier (random, kmeans). `seed` seeds the MC dropout
  // masks (bald).
  CandidateViews Views(Strategy strategy, TextClassifier* model,
                       const std::vector<int64_t>& candidates, uint64_t seed);

  // The fine-tuned LM's pooled [last, max, mean] features of every pool text (kmeans, the cold
  // start), computed on first use.
  const std::vector<std::vector<float>>& EncoderFeatures();

  int64_t pool_size() const { return pool_ids_.num_docs(); }
  const LabelSet& labels() const { return labels_; }

 private:
  PoolLearner() = default;
  TextClassifier NewClassifier();

  Config config_;
  FineTunedModel lm_;
  LabelSet labels_;
  int64_t vocab_size_ = 0;
  torch::Device device_{torch::kCPU};
  LanguageModel encoder_source_{nullptr};
  TokenizedCorpus pool_ids_, test_ids_;
  std::vector<int64_t> pool_labels_, test_labels_;
  std::vector<std::vector<float>> encoder_features_;
};

}  // namespace ulmfit
