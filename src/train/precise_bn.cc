#include "train/precise_bn.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "infer/classifier.h"

namespace ulmfit {

void SetPreciseBatchNormStatistics(TextClassifier& model, ClasBatcher& batcher,
                                   const torch::Device& device) {
  if (batcher.num_examples() < 2) return;
  const bool was_training = model->is_training();
  model->eval();
  const ClassifierEvaluation eval = EvaluateClassifier(
      model, batcher, static_cast<int>(model->options().num_classes), device,
      /*with_features=*/true);
  torch::NoGradGuard no_grad;
  const int64_t rows = static_cast<int64_t>(eval.features.size());
  const int64_t width = static_cast<int64_t>(eval.features.front().size());
  torch::Tensor features = torch::empty({rows, width}, torch::kFloat);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(eval.features[r].begin(), eval.features[r].end(),
              features[r].data_ptr<float>());
  }
  PoolingLinearClassifier& head = model->head();
  auto set_stats = [](torch::nn::BatchNorm1d& bn, const torch::Tensor& x) {
    bn->running_mean.copy_(x.mean(0).to(bn->running_mean.options()));
    bn->running_var.copy_(x.var(0, /*unbiased=*/true).to(bn->running_var.options()));
  };
  features = features.to(device).to(head->bn1->running_mean.scalar_type());
  set_stats(head->bn1, features);
  // bn2 sees lin1's ReLU output of the bn1-normalized features (eval: no dropout between).
  const torch::Tensor hidden = torch::relu(head->lin1->forward(head->bn1->forward(features)));
  set_stats(head->bn2, hidden);
  if (was_training) model->train();
}

std::vector<int64_t> PreciseBatchNormSample(int64_t num_docs, int64_t max_docs, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(num_docs, 0)));
  std::iota(order.begin(), order.end(), 0);
  if (max_docs <= 0 || max_docs >= num_docs) return order;
  // A partial Fisher-Yates with our own index draws: the same sample with every standard library.
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < max_docs; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(num_docs - i));
    std::swap(order[i], order[j]);
  }
  order.resize(static_cast<size_t>(max_docs));
  std::sort(order.begin(), order.end());
  return order;
}

TokenizedCorpus SelectDocuments(const TokenizedCorpus& corpus, const std::vector<int64_t>& indices) {
  TokenizedCorpus out;
  for (int64_t doc : indices) {
    out.ids.insert(out.ids.end(), corpus.ids.begin() + corpus.offsets[doc],
                   corpus.ids.begin() + corpus.offsets[doc + 1]);
    out.offsets.push_back(static_cast<int64_t>(out.ids.size()));
  }
  return out;
}

}  // namespace ulmfit
