// The hand-written float kernels against libtorch's own ops, on row lengths with and without a
// rest after the last whole 16-float vector, and on inputs large enough to saturate exp.
#include "model/cpu_kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ulmfit {
namespace {

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(CpuKernels, LstmCellForwardMatchesLibtorch) {
  torch::manual_seed(11);
  for (int64_t hidden : {5, 16, 37}) {
    const int64_t batch = 4;
    // Pre-activations up to +-40: sigmoid and tanh saturate, exp must not overflow.
    torch::Tensor gates = torch::randn({batch, 4 * hidden}) * 3;
    gates.index_put_({0, torch::indexing::Slice(0, 4)}, torch::tensor({40.f, -40.f, 0.f, 1e-4f}));
    const torch::Tensor c_prev = torch::randn({batch, hidden});
    const torch::Tensor i = gates.narrow(1, 0, hidden).sigmoid();
    const torch::Tensor f = gates.narrow(1, hidden, hidden).sigmoid();
    const torch::Tensor g = gates.narrow(1, 2 * hidden, hidden).tanh();
    const torch::Tensor o = gates.narrow(1, 3 * hidden, hidden).sigmoid();
    const torch::Tensor want_c = f * c_prev + i * g;
    const torch::Tensor want_h = o * want_c.tanh();

    torch::Tensor got_gates = gates.clone();
    torch::Tensor c = torch::empty({batch, hidden}), tanh_c = torch::empty_like(c),
                  h = torch::empty_like(c);
    cpu_kernels::LstmCellForwardRows(got_gates.data_ptr<float>(), c_prev.data_ptr<float>(),
                                     c.data_ptr<float>(), tanh_c.data_ptr<float>(),
                                     h.data_ptr<float>(), 0, batch, hidden);
    const std::string at = "hidden " + std::to_string(hidden);
    EXPECT_LE(MaxAbsDiff(got_gates, torch::cat({i, f, g, o}, 1)), 1e-6) << at;
    EXPECT_LE(MaxAbsDiff(c, want_c), 1e-6) << at;
    EXPECT_LE(MaxAbsDiff(tanh_c, want_c.tanh()), 1e-6) << at;
    EXPECT_LE(MaxAbsDiff(h, want_h), 1e-6) << at;
  }
}

TEST(CpuKernels, TanhKeepsSmallValuesRelativelyExact) {
  // Near 0, tanh(x) = x - x^3/3: 1 - 2/(e^2x + 1) would round these to multiples of 6e-8.
  const int64_t hidden = 16;
  torch::Tensor gates = torch::zeros({1, 4 * hidden});
  const torch::Tensor small = torch::logspace(-9, -1, hidden);
  gates.narrow(1, 2 * hidden, hidden).copy_(small.unsqueeze(0));
  torch::Tensor c = torch::empty({1, hidden}), tanh_c = torch::empty_like(c), h = torch::empty_like(c);
  const torch::Tensor c_prev = torch::zeros({1, hidden});
  cpu_kernels::LstmCellForwardRows(gates.data_ptr<float>(), c_prev.data_ptr<float>(),
                                   c.data_ptr<float>(), tanh_c.data_ptr<float>(),
                                   h.data_ptr<float>(), 0, 1, hidden);
  const torch::Tensor got = gates.narrow(1, 2 * hidden, hidden).squeeze(0);
  const torch::Tensor rel = ((got - small.tanh()) / small.tanh()).abs().max();
  EXPECT_LE(rel.item<double>(), 1e-6);
}

TEST(CpuKernels, SoftmaxCrossEntropyRowsMatchesLibtorch) {
  torch::manual_seed(12);
  for (int64_t vocab : {7, 32, 45}) {
    for (bool with_bias : {false, true}) {
      const int64_t rows = 5;
      const torch::Tensor logits = torch::randn({rows, vocab}) * 10;  // up to ~40 apart
      const torch::Tensor bias = with_bias ? torch::randn({vocab}) : torch::zeros({vocab});
      const torch::Tensor target = torch::randint(vocab, {rows}, torch::kLong);
      const torch::Tensor z_ref = logits + bias;
      const torch::Tensor want_loss =
          -z_ref.log_softmax(1).gather(1, target.unsqueeze(1)).squeeze(1);
      const float scale = 0.25f;
      const torch::Tensor want_grad =
          scale * (z_ref.softmax(1) - torch::one_hot(target, vocab).to(torch::kFloat));
      const std::string at = "vocab " + std::to_string(vocab) + (with_bias ? ", bias" : "");

      torch::Tensor z = logits.clone(), loss = torch::empty({rows});
      torch::Tensor bias_grad = torch::full({vocab}, 1.0f);  // the kernel adds to it
      cpu_kernels::SoftmaxCrossEntropyRows(z.data_ptr<float>(), 0, rows, vocab,
                                           with_bias ? bias.data_ptr<float>() : nullptr,
                                           target.data_ptr<int64_t>(), scale,
                                           loss.data_ptr<float>(), bias_grad.data_ptr<float>());
      EXPECT_LE(MaxAbsDiff(loss, want_loss), 1e-5) << at;
      EXPECT_LE(MaxAbsDiff(z, want_grad), 1e-6) << at;
      EXPECT_LE(MaxAbsDiff(bias_grad, 1.0f + want_grad.sum(0)), 1e-6) << at;

      // Loss only (evaluation): the same losses, and no gradient written anywhere.
      torch::Tensor z2 = logits.clone(), loss2 = torch::empty({rows});
      cpu_kernels::SoftmaxCrossEntropyRows(z2.data_ptr<float>(), 0, rows, vocab,
                                           with_bias ? bias.data_ptr<float>() : nullptr,
                                           target.data_ptr<int64_t>(), 0.0f,
                                           loss2.data_ptr<float>(), nullptr);
      EXPECT_LE(MaxAbsDiff(loss2, want_loss), 1e-5) << at;
    }
  }
}

}  // namespace
}  // namespace ulmfit
