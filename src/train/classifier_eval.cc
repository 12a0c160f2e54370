#include "train/classifier_eval.h"

#include <filesystem>

#include <fmt/format.h>

#include "config/config_loader.h"
#include "data/token_cache.h"
#include "text/rules.h"
#include "train/checkpoint.h"

namespace ulmfit {
namespace fs = std::filesystem;

ClassifierEvaluation EvaluateClassifier(TextClassifier& model, ClasBatcher& batcher,
                                        int num_classes, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  ClassifierEvaluation eval;
  std::vector<int64_t> truth;
  std::vector<int64_t> predicted_sorted;
  double loss_sum = 0;
  bool labeled = true;
  for (int64_t b = 0; b < batcher.num_batches(); ++b) {
    const ClasBatch batch = batcher.Batch(b);
    const auto logits = model->forward(batch.tokens.to(device)).logits.to(torch::kFloat).cpu();
    const auto probs = torch::softmax(logits, 1).contiguous();
    const auto pred = logits.argmax(1);
    labeled = labeled && batch.labels.defined() && batch.labels.numel() == logits.size(0);
    if (labeled) {
      loss_sum += torch::nn::functional::cross_entropy(
                      logits, batch.labels,
                      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                      .item<double>();
    }
    for (int64_t r = 0; r < logits.size(0); ++r) {
      const size_t index = static_cast<size_t>(batch.indices[r]);
      if (eval.probs.size() <= index) {
        eval.probs.resize(index + 1);
        eval.predicted.resize(index + 1);
        truth.resize(index + 1);
      }
      const float* p = probs[r].data_ptr<float>();
      eval.probs[index].assign(p, p + num_classes);
      eval.predicted[index] = pred[r].item<int64_t>();
      if (labeled) truth[index] = batch.labels[r].item<int64_t>();
    }
  }
  if (labeled && !eval.predicted.empty()) {
    eval.metrics = ComputeMetrics(truth, eval.predicted, num_classes,
                                  loss_sum / static_cast<double>(eval.predicted.size()));
  }
  if (was_training) model->train();
  return eval;
}

absl::StatusOr<Classifier> Classifier::Load(const std::string& model_dir,
                                            const torch::Device& device) {
  const fs::path dir(model_dir);
  const std::string weights = (dir / kClassifierWeightsFile).string();
  if (!fs::exists(weights)) {
    return absl::NotFoundError(fmt::format(
        "{}: not a ulmfit model directory (no {}); pass the run's model/ folder or the run "
        "directory", model_dir, kClassifierWeightsFile));
  }
  ASSIGN_OR_RETURN(Config config, LoadConfig((dir / "config.yaml").string()));
  ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load((dir / "spm.model").string()));
  ASSIGN_OR_RETURN(LabelSet labels, LabelSet::Load((dir / "labels.txt").string()));
  TextClassifier model(ClassifierOptions::FromConfig(config.model, config.classifier,
                                                     tokenizer.vocab_size(), labels.size(),
                                                     kPadId));
  RETURN_IF_ERROR(LoadModuleWeights(*model, weights));
  model->to(device);
  model->eval();
  return Classifier(std::move(config), std::move(tokenizer), std::move(labels),
                    std::move(model), device);
}

ClassifierEvaluation Classifier::Run(const std::vector<std::string>& texts,
                                     const std::vector<int64_t>* label_ids,
                                     int batch_size) const {
  TokenizedCorpus ids;
  const RuleOptions rules{config_.text.rules, config_.text.lowercase};
  const std::vector<std::string> processed = ApplyRulesParallel(texts, rules, config_.text.threads);
  for (const std::string& text : processed) {
    tokenizer_.EncodeTo(text, &ids.ids);
    ids.offsets.push_back(static_cast<int64_t>(ids.ids.size()));
  }
  ClasBatcher batcher(&ids, label_ids, batch_size, config_.classifier.bptt, /*shuffle=*/false,
                      /*backwards=*/false, 0);
  batcher.StartEpoch(0);
  return EvaluateClassifier(model_, batcher, labels_.size(), device_);
}

ClassifierEvaluation Classifier::Predict(const std::vector<std::string>& texts,
                                         int batch_size) const {
  return Run(texts, nullptr, batch_size);
}

absl::StatusOr<ClassifierEvaluation> Classifier::Evaluate(const LabeledData& data,
                                                          int batch_size) const {
  ASSIGN_OR_RETURN(const std::vector<int64_t> ids, LabelIds(data, labels_));
  return Run(data.texts, &ids, batch_size);
}

}  // namespace ulmfit
