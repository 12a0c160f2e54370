// Using a trained classifier: evaluation on labelled data and prediction on raw text, from a
// self-contained model directory (config.yaml, spm.model, labels.txt, classifier.pt).
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/config.h"
#include "data/clas_batcher.h"
#include "data/labeled_data.h"
#include "dist/world.h"
#include "model/classifier.h"
#include "text/tokenizer.h"
#include "infer/metrics.h"
#include "util/status.h"

namespace ulmfit {

inline constexpr const char* kClassifierWeightsFile = "classifier.pt";
// The tokenizer's content hash, written with the model: another run's tokenizer of the same
// size would load fine and change every prediction.
inline constexpr const char* kTokenizerHashFile = "tokenizer.hash";

// The line kTokenizerHashFile holds for the tokenizer file `bytes`.
std::string TokenizerHashLine(const std::string& bytes);

struct ClassifierEvaluation {
  ClassificationMetrics metrics;             // empty when the data had no labels
  std::vector<std::vector<float>> probs;     // per example, in input order
  std::vector<int64_t> predicted;            // argmax per example, in input order
  std::vector<int64_t> truth;                // label id per example (labelled data only)
  double loss_sum = 0;                       // summed cross-entropy (labelled data only)
  // Per example, the pooled [last, max, mean] encoder features (the head's input); only when
  // asked for (active learning clusters them).
  std::vector<std::vector<float>> features;
  // Per example, the head's last linear layer's input (BADGE's h), with the features.
  std::vector<std::vector<float>> last_hidden;
};

// Runs `model` (eval mode, no grad) over the batches; labels in the batches are optional.
// `batch_offset`/`batch_stride`: only batches offset, offset + stride, ... (one process's share
// in a data-parallel run); the per-example vectors then have empty entries (and metrics are not
// computed) for the other batches' examples.
ClassifierEvaluation EvaluateClassifier(TextClassifier& model, ClasBatcher& batcher,
                                        int num_classes, const torch::Device& device,
                                        bool with_features = false, int64_t batch_offset = 0,
                                        int64_t batch_stride = 1);

// Monte Carlo dropout (Gal & Ghahramani 2016) for BALD: `passes` stochastic forwards with the
// model's own dropouts on (embedding, weight, input, hidden and head dropouts; BatchNorm keeps its
// running statistics), batched by repeating each row `passes` times. Per example in input order,
// `passes` probability vectors. The masks come from libtorch's generator: seed it first for
// repeatable scores. The weight-drop and embedding masks are drawn once per forward, so a
// batch's repeated rows share them and differ in the per-row masks.
std::vector<std::vector<std::vector<float>>> McDropoutProbabilities(TextClassifier& model,
                                                                    ClasBatcher& batcher,
                                                                    int num_classes, int passes,
                                                                    const torch::Device& device);

// A data-parallel run's evaluation put together: each rank's `own` holds the examples it scored
// at their indices among the `num_examples` (the others' entries empty); every rank gets the
// whole evaluation, metrics included (when every example has a label).
ClassifierEvaluation CombineRankEvaluations(World& world, const ClassifierEvaluation& own,
                                            int64_t num_examples, int num_classes);

class Classifier {
 public:
  // Loads a model directory written by stage 3; errors name the missing or bad file.
  static absl::StatusOr<Classifier> Load(const std::string& model_dir, const torch::Device& device);

  // A classifier whose encoder is a language model's (`lm_weights`, saved by stages 1-2, with
  // `config`'s model and text sections) and whose head is untrained: its pooled features are the
  // LM's view of a text (active learning's cold start); its probabilities mean nothing.
  static absl::StatusOr<Classifier> WithEncoderOf(const Config& config,
                                                  const std::string& tokenizer_path,
                                                  const std::string& lm_weights,
                                                  const LabelSet& labels,
                                                  const torch::Device& device);

  // Class probabilities for each text, in input order, in batches of `batch_size`.
  ClassifierEvaluation Predict(const std::vector<std::string>& texts, int batch_size,
                               bool with_features = false) const;
  // Predicts and scores labelled data; a label the model never saw is an error.
  // `batch_offset`/`batch_stride`: one process's share of the batches (EvaluateClassifier).
  absl::StatusOr<ClassifierEvaluation> Evaluate(const LabeledData& data, int batch_size,
                                                int64_t batch_offset = 0,
                                                int64_t batch_stride = 1) const;

  // McDropoutProbabilities over the texts: per text, `passes` probability vectors.
  std::vector<std::vector<std::vector<float>>> McDropout(const std::vector<std::string>& texts,
                                                         int batch_size, int passes) const;

  const LabelSet& labels() const { return labels_; }
  const Config& config() const { return config_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  // The network itself, for tools that change its weights in place (bench/precise_bn).
  TextClassifier& model() { return model_; }

 private:
  Classifier(Config config, Tokenizer tokenizer, LabelSet labels, TextClassifier model,
             torch::Device device)
      : config_(std::move(config)), tokenizer_(std::move(tokenizer)),
        labels_(std::move(labels)), model_(std::move(model)), device_(device) {}
  ClassifierEvaluation Run(const std::vector<std::string>& texts,
                           const std::vector<int64_t>* label_ids, int batch_size,
                           bool with_features, int64_t batch_offset = 0,
                           int64_t batch_stride = 1) const;

  Config config_;
  Tokenizer tokenizer_;
  LabelSet labels_;
  mutable TextClassifier model_;
  torch::Device device_;
};

// Several classifiers over the same labels whose class probabilities are averaged: the paper's
// bidirectional result is the ensemble of a forward and a backward (model.backwards) classifier.
// One model is an ensemble of one, so predict and evaluate always go through this class.
class ClassifierEnsemble {
 public:
  // Loads every model directory; they must have the same labels in the same order.
  static absl::StatusOr<ClassifierEnsemble> Load(const std::vector<std::string>& model_dirs,
                                                 const torch::Device& device);

  // Features (if asked for) come from the first model.
  ClassifierEvaluation Predict(const std::vector<std::string>& texts, int batch_size,
                               bool with_features = false) const;
  // Every member's MC dropout passes, `passes` each, one list per text.
  std::vector<std::vector<std::vector<float>>> McDropout(const std::vector<std::string>& texts,
                                                         int batch_size, int passes) const;
  // The ensemble's metrics; `member_metrics` (if given) receives each model's own.
  absl::StatusOr<ClassifierEvaluation> Evaluate(
      const LabeledData& data, int batch_size,
      std::vector<ClassificationMetrics>* member_metrics = nullptr) const;

  const LabelSet& labels() const { return members_.front().labels(); }
  // The first model's config: its task section describes the data format it was trained on.
  const Config& config() const { return members_.front().config(); }
  size_t size() const { return members_.size(); }

  explicit ClassifierEnsemble(std::vector<Classifier> members) : members_(std::move(members)) {}

 private:

 private:
  std::vector<Classifier> members_;
};

// Averages the members' probabilities per example and takes the argmax.
ClassifierEvaluation AverageProbabilities(const std::vector<ClassifierEvaluation>& members);

}  // namespace ulmfit
