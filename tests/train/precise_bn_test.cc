// Precise BatchNorm statistics: the head's running mean and variance become the exact
// statistics of its inputs in eval mode, whatever the batching; the model's mode and the random
// stream are left alone; the document sample is seeded, sorted and without repeats.
#include "train/precise_bn.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>
#include <set>

#include "infer/classifier.h"

namespace ulmfit {
namespace {

constexpr int64_t kPad = 1;
constexpr int64_t kVocab = 20;

// Dropout everywhere, so that train-mode and eval-mode features differ.
TextClassifier SmallModel() {
  ClassifierOptions o;
  o.encoder.vocab_size = kVocab;
  o.encoder.emb_size = 4;
  o.encoder.hidden_size = 6;
  o.encoder.num_layers = 2;
  o.encoder.pad_id = kPad;
  o.encoder.embed_p = o.encoder.input_p = o.encoder.weight_p = o.encoder.hidden_p = 0.3;
  o.num_classes = 3;
  o.hidden = 5;
  o.head_p = o.head_p2 = 0.3;
  o.bptt = 4;
  o.max_len = 16;  // every document is pooled whole, whatever the batch's longest
  torch::manual_seed(3);
  return TextClassifier(o);
}

// Documents of 1 to 15 tokens, never the pad id.
TokenizedCorpus RandomCorpus(int64_t docs) {
  std::mt19937 rng(11);
  TokenizedCorpus corpus;
  for (int64_t d = 0; d < docs; ++d) {
    const int64_t len = 1 + rng() % 15;
    for (int64_t t = 0; t < len; ++t) corpus.ids.push_back(2 + rng() % (kVocab - 2));
    corpus.offsets.push_back(static_cast<int64_t>(corpus.ids.size()));
  }
  return corpus;
}

TEST(PreciseBatchNorm, SetsTheExactStatisticsOfTheEvalModeInputs) {
  TextClassifier model = SmallModel();
  const TokenizedCorpus corpus = RandomCorpus(13);
  ClasBatcher batcher(&corpus, nullptr, /*batch_size=*/4, /*bptt=*/4, false, false, 0);
  model->train();
  SetPreciseBatchNormStatistics(model, batcher, torch::kCPU);
  EXPECT_TRUE(model->is_training());

  const ClassifierEvaluation eval = EvaluateClassifier(model, batcher, 3, torch::kCPU, true);
  ASSERT_EQ(eval.features.size(), 13u);
  torch::Tensor x = torch::empty({13, 12});
  for (int64_t r = 0; r < 13; ++r) {
    for (int64_t c = 0; c < 12; ++c) x[r][c] = eval.features[r][c];
  }
  auto& head = model->head();
  EXPECT_TRUE(torch::allclose(head->bn1->running_mean, x.mean(0), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(head->bn1->running_var, x.var(0, true), 1e-5, 1e-6));
  // bn2's input by hand: bn1 in eval mode with the new statistics, then lin1 and ReLU.
  torch::NoGradGuard no_grad;
  const torch::Tensor normalized =
      (x - x.mean(0)) / torch::sqrt(x.var(0, true) + head->bn1->options.eps()) *
          head->bn1->weight + head->bn1->bias;
  const torch::Tensor hidden = torch::relu(head->lin1->forward(normalized));
  EXPECT_TRUE(torch::allclose(head->bn2->running_mean, hidden.mean(0), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(head->bn2->running_var, hidden.var(0, true), 1e-4, 1e-5));
}

TEST(PreciseBatchNorm, DoesNotDependOnTheBatchSize) {
  const TokenizedCorpus corpus = RandomCorpus(21);
  std::vector<torch::Tensor> stats;
  for (int64_t batch_size : {2, 5, 21}) {
    TextClassifier model = SmallModel();
    ClasBatcher batcher(&corpus, nullptr, batch_size, 4, false, false, 0);
    SetPreciseBatchNormStatistics(model, batcher, torch::kCPU);
    auto& head = model->head();
    stats.push_back(torch::cat({head->bn1->running_mean, head->bn1->running_var,
                                head->bn2->running_mean, head->bn2->running_var}));
  }
  EXPECT_TRUE(torch::allclose(stats[0], stats[1], 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(stats[0], stats[2], 1e-4, 1e-5));
  // Not the defaults (mean 0, variance 1): they really were measured.
  EXPECT_FALSE(torch::allclose(stats[0].slice(0, 0, 12), torch::zeros({12}), 0, 1e-3));
}

TEST(PreciseBatchNorm, DrawsNoRandomNumbersAndSkipsFewerThanTwoDocuments) {
  TextClassifier model = SmallModel();
  const TokenizedCorpus corpus = RandomCorpus(9);
  ClasBatcher batcher(&corpus, nullptr, 4, 4, false, false, 0);
  torch::manual_seed(7);
  SetPreciseBatchNormStatistics(model, batcher, torch::kCPU);
  const torch::Tensor after = torch::rand({4});
  torch::manual_seed(7);
  EXPECT_TRUE(torch::equal(after, torch::rand({4})));

  TextClassifier untouched = SmallModel();
  const TokenizedCorpus one = RandomCorpus(1);
  ClasBatcher single(&one, nullptr, 4, 4, false, false, 0);
  SetPreciseBatchNormStatistics(untouched, single, torch::kCPU);
  EXPECT_TRUE(torch::equal(untouched->head()->bn1->running_mean, torch::zeros({12})));
  EXPECT_TRUE(torch::equal(untouched->head()->bn1->running_var, torch::ones({12})));
}

TEST(PreciseBatchNormSample, SeededSortedWithoutRepeats) {
  const std::vector<int64_t> a = PreciseBatchNormSample(1000, 50, 4);
  ASSERT_EQ(a.size(), 50u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 50u);
  EXPECT_GE(a.front(), 0);
  EXPECT_LT(a.back(), 1000);
  EXPECT_EQ(a, PreciseBatchNormSample(1000, 50, 4));
  EXPECT_NE(a, PreciseBatchNormSample(1000, 50, 5));
  EXPECT_EQ(PreciseBatchNormSample(3, 10, 4), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(PreciseBatchNormSample(3, 0, 4), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE(PreciseBatchNormSample(0, 10, 4).empty());
}

TEST(SelectDocuments, KeepsTheChosenDocumentsInOrder) {
  TokenizedCorpus corpus;
  corpus.ids = {5, 6, 7, 8, 9, 10};
  corpus.offsets = {0, 2, 3, 6};
  const TokenizedCorpus picked = SelectDocuments(corpus, {0, 2});
  EXPECT_EQ(picked.ids, (std::vector<int32_t>{5, 6, 8, 9, 10}));
  EXPECT_EQ(picked.offsets, (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(SelectDocuments(corpus, {}).num_docs(), 0);
}

}  // namespace
}  // namespace ulmfit
