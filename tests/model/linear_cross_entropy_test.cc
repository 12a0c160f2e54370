// The fused decoder + loss against the unfused reference (torch::linear, then cross_entropy):
// the same loss and gradients whatever the block size, without gradients, and through the LM's
// ForwardLoss with a tied decoder.
#include "model/linear_cross_entropy.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <tuple>

#include "model/awd_lstm.h"

namespace ulmfit {
namespace {

void ExpectClose(const torch::Tensor& got, const torch::Tensor& want, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = std::max(1.0, want.abs().max().item<double>());
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-5 * scale) << what;
}

struct Grads {
  torch::Tensor loss, dx, dw, db;
};

Grads LossAndGrads(bool fused, const torch::Tensor& x0, const torch::Tensor& w0,
                   const torch::Tensor& b0, const torch::Tensor& target,
                   int64_t block_rows = kLinearCrossEntropyBlockRows) {
  torch::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
  torch::Tensor b = b0.defined() ? b0.clone().requires_grad_(true) : torch::Tensor();
  torch::Tensor loss = fused ? LinearCrossEntropy(x, w, b, target, block_rows)
                             : torch::nn::functional::cross_entropy(torch::linear(x, w, b), target);
  // A non-unit upstream gradient, as when the loss is part of a sum with a factor.
  (loss * 0.7).backward();
  return {loss.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : torch::Tensor()};
}

TEST(LinearCrossEntropy, MatchesLinearThenCrossEntropy) {
  torch::manual_seed(3);
  for (bool with_bias : {true, false}) {
    // Vocabularies shorter and longer than one 16-float vector, with a rest after it.
    for (const auto& [rows, in, vocab] : {std::tuple<int64_t, int64_t, int64_t>{7, 5, 11},
                                          {16, 3, 29}, {10, 4, 50}}) {
      // Large logits too: the row max keeps exp from overflowing.
      const torch::Tensor x = torch::randn({rows, in}) * 8;
      const torch::Tensor w = torch::randn({vocab, in}) * 3;
      const torch::Tensor b = with_bias ? torch::randn({vocab}) : torch::Tensor();
      const torch::Tensor target = torch::randint(vocab, {rows}, torch::kLong);
      const Grads want = LossAndGrads(false, x, w, b, target);
      // One block, blocks that divide the rows unevenly, and one row at a time.
      for (int64_t block_rows : {int64_t{256}, int64_t{3}, int64_t{1}}) {
        const Grads got = LossAndGrads(true, x, w, b, target, block_rows);
        ExpectClose(got.loss, want.loss, "loss");
        ExpectClose(got.dx, want.dx, "d/dx");
        ExpectClose(got.dw, want.dw, "d/dweight");
        if (with_bias) ExpectClose(got.db, want.db, "d/dbias");
        EXPECT_TRUE(std::isfinite(got.loss.item<double>()));
      }
    }
  }
}

TEST(LinearCrossEntropy, WithoutGradientsGivesTheSameLoss) {
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({9, 6}), w = torch::randn({33, 6}), b = torch::randn({33});
  const torch::Tensor target = torch::randint(33, {9}, torch::kLong);
  const torch::Tensor want = torch::nn::functional::cross_entropy(torch::linear(x, w, b), target);
  torch::NoGradGuard no_grad;  // evaluation: nothing needs a gradient
  ExpectClose(LinearCrossEntropy(x, w, b, target, 4), want, "loss without gradients");
}

TEST(LinearCrossEntropy, RefusesOtherThanFloat32AndTargetsOutsideTheVocabulary) {
  const torch::Tensor xd = torch::randn({2, 3}, torch::kDouble), wd = torch::randn({5, 3}, torch::kDouble);
  EXPECT_THROW(LinearCrossEntropy(xd, wd, torch::Tensor(), torch::zeros({2}, torch::kLong)),
               c10::Error);
  const torch::Tensor x = torch::randn({2, 3}), w = torch::randn({5, 3});
  EXPECT_THROW(LinearCrossEntropy(x, w, torch::Tensor(), torch::tensor({0, 5}, torch::kLong)),
               c10::Error);
  EXPECT_THROW(LinearCrossEntropy(x, w, torch::Tensor(), torch::tensor({-1, 0}, torch::kLong)),
               c10::Error);
  EXPECT_THROW(LinearCrossEntropy(x, w, torch::Tensor(), torch::tensor({0}, torch::kLong)),
               c10::Error);
}

TEST(LinearCrossEntropy, LanguageModelLossIsTheSameFusedOrNot) {
  LanguageModelOptions o;
  o.encoder.vocab_size = 17;
  o.encoder.emb_size = 4;
  o.encoder.hidden_size = 6;
  o.encoder.num_layers = 2;  // tied decoder with a bias: the embedding gets both gradients
  torch::manual_seed(5);
  LanguageModel model(o);
  model->eval();  // no dropout, so both passes see the same network
  const torch::Tensor tokens = torch::randint(17, {5, 3}, torch::kLong);
  const torch::Tensor target = torch::randint(17, {15}, torch::kLong);
  std::vector<torch::Tensor> losses, grads;
  for (bool fuse : {false, true}) {
    model->zero_grad();
    model->encoder()->ResetState();  // the LM carries its hidden state from call to call
    LmOutput out;
    torch::Tensor loss = model->ForwardLoss(tokens, target, &out, fuse);
    EXPECT_EQ(out.logits.defined(), !fuse);
    (loss + ArTarLoss(out, 2.0, 1.0)).backward();
    losses.push_back(loss.detach());
    grads.push_back(model->encoder()->embedding_weight().grad().clone());
  }
  ExpectClose(losses[1], losses[0], "loss");
  ExpectClose(grads[1], grads[0], "embedding (= tied decoder) gradient");
  // The unfused loss is what forward's logits give.
  model->encoder()->ResetState();
  LmOutput plain = model->forward(tokens);
  ExpectClose(losses[0],
              torch::nn::functional::cross_entropy(plain.logits.reshape({15, -1}), target),
              "forward");
}

}  // namespace
}  // namespace ulmfit
