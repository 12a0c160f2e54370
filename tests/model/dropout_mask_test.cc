// The counter-based dropout masks: only 0 and 1/(1-p), the right share kept, neighbours
// independent, fixed by torch::manual_seed, new on each call, and the same for any thread count.
#include "model/dropout_mask.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace ulmfit {
namespace {

TEST(DropoutMaskTest, ValuesAreZeroOrTheKeptScale) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::manual_seed(1);
    const double p = 0.3;
    torch::Tensor mask = DropoutMask({1000, 7}, p, torch::TensorOptions().dtype(dtype));
    const torch::Tensor scale = torch::full({}, 1.0 / (1.0 - p), mask.options());
    EXPECT_TRUE(((mask == 0) | (mask == scale)).all().item<bool>()) << dtype;
    EXPECT_EQ(mask.scalar_type(), dtype);
    EXPECT_EQ(mask.sizes(), torch::IntArrayRef({1000, 7}));
  }
}

TEST(DropoutMaskTest, KeepsOneMinusPAndNeighboursAreIndependent) {
  torch::manual_seed(2);
  const int64_t n = 1 << 20;
  for (double p : {0.05, 0.25, 0.5, 0.9}) {
    torch::Tensor kept = (DropoutMask({n}, p, torch::kFloat) > 0).to(torch::kDouble);
    const double q = 1 - p;
    // Five standard deviations of a binomial share over n draws.
    EXPECT_NEAR(kept.mean().item<double>(), q, 5 * std::sqrt(q * p / n)) << "p " << p;
    const double both = (kept.slice(0, 0, n - 1) * kept.slice(0, 1, n)).mean().item<double>();
    EXPECT_NEAR(both, q * q, 5 * std::sqrt(q * q * (1 - q * q) / n)) << "p " << p;
  }
}

TEST(DropoutMaskTest, SeededRepeatableAndNewOnEachCall) {
  torch::manual_seed(3);
  torch::Tensor a = DropoutMask({4096}, 0.5, torch::kFloat);
  torch::Tensor b = DropoutMask({4096}, 0.5, torch::kFloat);
  torch::manual_seed(3);
  torch::Tensor a2 = DropoutMask({4096}, 0.5, torch::kFloat);
  EXPECT_TRUE(torch::equal(a, a2));
  EXPECT_FALSE(torch::equal(a, b));
}

TEST(DropoutMaskTest, SameMaskWhateverTheThreadCount) {
  const int threads = at::get_num_threads();
  std::vector<float> one(300000), many(300000);
  at::set_num_threads(1);
  FillDropoutMask(one.data(), static_cast<int64_t>(one.size()), 0.4, 12345);
  at::set_num_threads(4);
  FillDropoutMask(many.data(), static_cast<int64_t>(many.size()), 0.4, 12345);
  at::set_num_threads(threads);
  EXPECT_EQ(one, many);
  // Another seed, another mask.
  FillDropoutMask(many.data(), static_cast<int64_t>(many.size()), 0.4, 12346);
  EXPECT_NE(one, many);
}

TEST(DropoutMaskTest, EdgeProbabilities) {
  EXPECT_TRUE(torch::equal(DropoutMask({5}, 0.0, torch::kFloat), torch::ones({5})));
  EXPECT_TRUE(torch::equal(DropoutMask({5}, 1.0, torch::kFloat), torch::zeros({5})));
  EXPECT_EQ(DropoutMask({0}, 0.5, torch::kFloat).numel(), 0);
  // Other dtypes go through libtorch's bernoulli_ and keep the contract.
  torch::Tensor half = DropoutMask({64}, 0.5, torch::kBFloat16);
  EXPECT_EQ(half.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(((half == 0) | (half == 2)).all().item<bool>());
}

TEST(DropoutMaskTest, DropoutScalesKeptValuesAndPassesGradientsThroughTheMask) {
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({50, 40}).requires_grad_(true);
  torch::Tensor y = Dropout(x, 0.2, /*train=*/true);
  y.sum().backward();
  const torch::Tensor kept = y != 0;
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.masked_select(kept) / 0.8));
  // d(sum y)/dx is the mask itself.
  EXPECT_TRUE(torch::allclose(x.grad(), kept.to(torch::kFloat) / 0.8));
  EXPECT_TRUE(Dropout(x, 0.2, /*train=*/false).is_same(x));
  EXPECT_TRUE(Dropout(x, 0.0, /*train=*/true).is_same(x));
}

}  // namespace
}  // namespace ulmfit
