#include "infer/classifier.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include "absl/strings/str_join.h"

#include "config/config_loader.h"
#include "data/token_cache.h"
#include "model/weights.h"
#include "text/rules.h"
#include "text/tokenizer_file.h"
#include "util/files.h"
#include "util/hash.h"

namespace ulmfit {
namespace fs = std::filesystem;

ClassifierEvaluation EvaluateClassifier(TextClassifier& model, ClasBatcher& batcher,
                                        int num_classes, const torch::Device& device,
                                        bool with_features, int64_t batch_offset,
                                        int64_t batch_stride) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  ClassifierEvaluation eval;
  std::vector<int64_t>& truth = eval.truth;
  double& loss_sum = eval.loss_sum;
  bool labeled = true;
  for (int64_t b = batch_offset; b < batcher.num_batches(); b += batch_stride) {
    const ClasBatch batch = batcher.Batch(b);
    const ClassifierOutput output = model->forward(batch.tokens.to(device));
    const auto logits = output.logits.to(torch::kFloat).cpu();
    torch::Tensor features, last_hidden;
    if (with_features) {
      features = output.features.to(torch::kFloat).cpu().contiguous();
      last_hidden =
          model->head()->LastLayerInput(output.features).to(torch::kFloat).cpu().contiguous();
    }
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
        if (with_features) {
          eval.features.resize(index + 1);
          eval.last_hidden.resize(index + 1);
        }
      }
      if (with_features) {
        const float* f = features[r].data_ptr<float>();
        eval.features[index].assign(f, f + features.size(1));
        const float* h = last_hidden[r].data_ptr<float>();
        eval.last_hidden[index].assign(h, h + last_hidden.size(1));
      }
      const float* p = probs[r].data_ptr<float>();
      eval.probs[index].assign(p, p + num_classes);
      eval.predicted[index] = pred[r].item<int64_t>();
      if (labeled) truth[index] = batch.labels[r].item<int64_t>();
    }
  }
  if (!labeled) truth.clear();
  if (labeled && !eval.predicted.empty() && batch_stride == 1) {
    eval.metrics = ComputeMetrics(truth, eval.predicted, num_classes,
                                  loss_sum / static_cast<double>(eval.predicted.size()));
  }
  if (was_training) model->train();
  return eval;
}

std::vector<std::vector<std::vector<float>>> McDropoutProbabilities(TextClassifier& model,
                                                                    ClasBatcher& batcher,
                                                                    int num_classes, int passes,
                                                                    const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->train();
  model->head()->bn1->eval();
  model->head()->bn2->eval();
  std::vector<std::vector<std::vector<float>>> out(batcher.num_examples());
  passes = std::max(1, passes);
  for (int64_t b = 0; b < batcher.num_batches(); ++b) {
    const ClasBatch batch = batcher.Batch(b);
    // Rows stay sorted longest first: row r's copies are rows r*T .. r*T + T-1.
    const torch::Tensor tokens = batch.tokens.repeat_interleave(passes, 1).to(device);
    const torch::Tensor probs =
        torch::softmax(model->forward(tokens).logits.to(torch::kFloat), 1).cpu().contiguous();
    for (int64_t r = 0; r < static_cast<int64_t>(batch.indices.size()); ++r) {
      auto& mine = out[static_cast<size_t>(batch.indices[r])];
      mine.resize(passes);
      for (int t = 0; t < passes; ++t) {
        const float* p = probs[r * passes + t].data_ptr<float>();
        mine[t].assign(p, p + num_classes);
      }
    }
  }
  if (was_training) {
    model->train();
  } else {
    model->eval();
  }
  return out;
}

std::string TokenizerHashLine(const std::string& bytes) {
  return HashHex(Hash64(bytes)) + "\n";
}

ClassifierEvaluation CombineRankEvaluations(World& world, const ClassifierEvaluation& own,
                                            int64_t num_examples, int num_classes) {
  // One row per example: the probabilities, then predicted + 1 and truth + 1 (0: not here).
  const int64_t n = num_examples;
  torch::Tensor table = torch::zeros({n, num_classes + 2}, torch::kFloat64);
  auto rows = table.accessor<double, 2>();
  for (size_t i = 0; i < own.probs.size(); ++i) {
    if (own.probs[i].size() != static_cast<size_t>(num_classes)) continue;
    for (int c = 0; c < num_classes; ++c) rows[i][c] = own.probs[i][c];
    rows[i][num_classes] = static_cast<double>(own.predicted[i] + 1);
    rows[i][num_classes + 1] = i < own.truth.size() ? static_cast<double>(own.truth[i] + 1) : 0;
  }
  table = table.to(world.device());
  world.AllReduce(table);
  table = table.cpu();
  rows = table.accessor<double, 2>();
  ClassifierEvaluation eval;
  eval.loss_sum = world.AllReduceValues({own.loss_sum})[0];
  eval.probs.resize(n);
  eval.predicted.resize(n);
  eval.truth.resize(n);
  bool labeled = n > 0;
  for (int64_t i = 0; i < n; ++i) {
    eval.probs[i].resize(num_classes);
    for (int c = 0; c < num_classes; ++c) eval.probs[i][c] = static_cast<float>(rows[i][c]);
    eval.predicted[i] = static_cast<int64_t>(rows[i][num_classes]) - 1;
    eval.truth[i] = static_cast<int64_t>(rows[i][num_classes + 1]) - 1;
    labeled = labeled && eval.truth[i] >= 0;
  }
  if (labeled) {
    eval.metrics = ComputeMetrics(eval.truth, eval.predicted, num_classes,
                                  eval.loss_sum / static_cast<double>(n));
  } else {
    eval.truth.clear();
  }
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
  const std::string tokenizer_path = TokenizerFileIn(dir.string());
  // Model directories written before the hash was recorded have none to check.
  if (const absl::StatusOr<std::string> recorded = ReadFile((dir / kTokenizerHashFile).string());
      recorded.ok()) {
    ASSIGN_OR_RETURN(const std::string bytes, ReadFile(tokenizer_path));
    if (TokenizerHashLine(bytes) != *recorded) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: not the tokenizer this classifier was trained with ({} records another); put "
          "back the {} of the run that trained it", tokenizer_path,
          (dir / kTokenizerHashFile).string(), fs::path(tokenizer_path).filename().string()));
    }
  }
  ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load(tokenizer_path));
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
                                     int batch_size, bool with_features,
                                     int64_t batch_offset, int64_t batch_stride) const {
  const RuleOptions rules{config_.text.rules, config_.text.lowercase};
  // The same processing as training: the tokenizer's kind picks the rules.
  TokenizedCorpus ids = TokenizeDocuments(texts, tokenizer_, rules, config_.text.threads);
  ClasBatcher batcher(&ids, label_ids, batch_size, config_.classifier.bptt, /*shuffle=*/false,
                      config_.model.backwards, 0);
  batcher.StartEpoch(0);
  return EvaluateClassifier(model_, batcher, labels_.size(), device_, with_features,
                            batch_offset, batch_stride);
}

absl::StatusOr<Classifier> Classifier::WithEncoderOf(const Config& config,
                                                     const std::string& tokenizer_path,
                                                     const std::string& lm_weights,
                                                     const LabelSet& labels,
                                                     const torch::Device& device) {
  ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load(tokenizer_path));
  LanguageModel lm(LanguageModelOptions::FromConfig(config.model, tokenizer.vocab_size(), kPadId));
  RETURN_IF_ERROR(LoadModuleWeights(*lm, lm_weights));
  TextClassifier model(ClassifierOptions::FromConfig(config.model, config.classifier,
                                                     tokenizer.vocab_size(),
                                                     std::max(2, labels.size()), kPadId));
  model->LoadEncoderFrom(lm);
  model->to(device);
  model->eval();
  return Classifier(config, std::move(tokenizer), labels, std::move(model), device);
}

std::vector<std::vector<std::vector<float>>> Classifier::McDropout(
    const std::vector<std::string>& texts, int batch_size, int passes) const {
  const RuleOptions rules{config_.text.rules, config_.text.lowercase};
  TokenizedCorpus ids = TokenizeDocuments(texts, tokenizer_, rules, config_.text.threads);
  // A batch of texts, each repeated `passes` times, per forward (PoolLearner::Views says why).
  ClasBatcher batcher(&ids, nullptr, batch_size,
                      config_.classifier.bptt, /*shuffle=*/false, config_.model.backwards, 0);
  return McDropoutProbabilities(model_, batcher, labels_.size(), passes, device_);
}

std::vector<std::vector<std::vector<float>>> ClassifierEnsemble::McDropout(
    const std::vector<std::string>& texts, int batch_size, int passes) const {
  std::vector<std::vector<std::vector<float>>> out(texts.size());
  for (const Classifier& member : members_) {
    auto passes_of_member = member.McDropout(texts, batch_size, passes);
    for (size_t i = 0; i < out.size(); ++i) {
      for (auto& p : passes_of_member[i]) out[i].push_back(std::move(p));
    }
  }
  return out;
}

ClassifierEvaluation Classifier::Predict(const std::vector<std::string>& texts,
                                         int batch_size, bool with_features) const {
  return Run(texts, nullptr, batch_size, with_features);
}

absl::StatusOr<ClassifierEvaluation> Classifier::Evaluate(const LabeledData& data,
                                                          int batch_size, int64_t batch_offset,
                                                          int64_t batch_stride) const {
  ASSIGN_OR_RETURN(const std::vector<int64_t> ids, LabelIds(data, labels_));
  return Run(data.texts, &ids, batch_size, /*with_features=*/false, batch_offset, batch_stride);
}

ClassifierEvaluation AverageProbabilities(const std::vector<ClassifierEvaluation>& members) {
  ClassifierEvaluation out;
  if (members.empty()) return out;
  out.probs = members.front().probs;
  for (size_t m = 1; m < members.size(); ++m) {
    for (size_t i = 0; i < out.probs.size(); ++i) {
      for (size_t c = 0; c < out.probs[i].size(); ++c) out.probs[i][c] += members[m].probs[i][c];
    }
  }
  out.predicted.resize(out.probs.size());
  for (size_t i = 0; i < out.probs.size(); ++i) {
    for (float& p : out.probs[i]) p /= static_cast<float>(members.size());
    out.predicted[i] = std::max_element(out.probs[i].begin(), out.probs[i].end()) -
                       out.probs[i].begin();
  }
  return out;
}

absl::StatusOr<ClassifierEnsemble> ClassifierEnsemble::Load(
    const std::vector<std::string>& model_dirs, const torch::Device& device) {
  if (model_dirs.empty()) return absl::InvalidArgumentError("no model directory given");
  std::vector<Classifier> members;
  for (const std::string& dir : model_dirs) {
    ASSIGN_OR_RETURN(Classifier member, Classifier::Load(dir, device));
    if (!members.empty() && member.labels().names() != members.front().labels().names()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: its labels ({}) differ from {}'s ({}); an ensemble needs models trained on the "
          "same labels", dir, absl::StrJoin(member.labels().names(), ","), model_dirs.front(),
          absl::StrJoin(members.front().labels().names(), ",")));
    }
    members.push_back(std::move(member));
  }
  return ClassifierEnsemble(std::move(members));
}

ClassifierEvaluation ClassifierEnsemble::Predict(const std::vector<std::string>& texts,
                                                 int batch_size, bool with_features) const {
  if (members_.size() == 1) return members_.front().Predict(texts, batch_size, with_features);
  std::vector<ClassifierEvaluation> outputs;
  for (const Classifier& member : members_) {
    outputs.push_back(member.Predict(texts, batch_size, with_features && outputs.empty()));
  }
  ClassifierEvaluation out = AverageProbabilities(outputs);
  out.features = std::move(outputs.front().features);
  out.last_hidden = std::move(outputs.front().last_hidden);
  return out;
}

absl::StatusOr<ClassifierEvaluation> ClassifierEnsemble::Evaluate(
    const LabeledData& data, int batch_size,
    std::vector<ClassificationMetrics>* member_metrics) const {
  std::vector<ClassifierEvaluation> outputs;
  for (const Classifier& member : members_) {
    ASSIGN_OR_RETURN(ClassifierEvaluation output, member.Evaluate(data, batch_size));
    if (member_metrics != nullptr) member_metrics->push_back(output.metrics);
    outputs.push_back(std::move(output));
  }
  if (outputs.size() == 1) return std::move(outputs.front());
  ClassifierEvaluation out = AverageProbabilities(outputs);
  ASSIGN_OR_RETURN(const std::vector<int64_t> truth, LabelIds(data, labels()));
  if (truth.empty()) return out;
  double loss = 0;  // mean negative log-likelihood of the averaged probabilities
  for (size_t i = 0; i < truth.size(); ++i) {
    loss -= std::log(std::max(out.probs[i][truth[i]], 1e-12f));
  }
  out.metrics = ComputeMetrics(truth, out.predicted, labels().size(),
                               loss / static_cast<double>(truth.size()));
  return out;
}

}  // namespace ulmfit
