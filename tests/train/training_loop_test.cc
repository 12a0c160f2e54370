// ClearGradients: the next backward starts from no gradient, and gives the same values as
// libtorch 1.x's zero_grad (zeros, then the new gradient added).
#include "train/training_loop.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ulmfit {
namespace {

TEST(TrainingLoopTest, ClearGradientsDropsThemAndTheNextBackwardGivesTheSameValues) {
  torch::manual_seed(7);
  torch::nn::Linear a(5, 3), b(5, 3);
  {
    torch::NoGradGuard no_grad;
    b->weight.copy_(a->weight);
    b->bias.copy_(a->bias);
  }
  OptimizerConfig config;
  auto cleared = MakeGroupedAdamW({a->parameters()}, config, 0.1);
  torch::optim::AdamW zeroed(b->parameters(), torch::optim::AdamWOptions(0.1));
  const torch::Tensor x = torch::randn({4, 5});
  for (int step = 0; step < 3; ++step) {
    ClearGradients(*cleared);
    zeroed.zero_grad();
    for (const auto& p : a->parameters()) EXPECT_FALSE(p.grad().defined());
    a->forward(x * (step + 1)).pow(2).sum().backward();
    b->forward(x * (step + 1)).pow(2).sum().backward();
    EXPECT_TRUE(torch::equal(a->weight.grad(), b->weight.grad())) << "step " << step;
    EXPECT_TRUE(torch::equal(a->bias.grad(), b->bias.grad())) << "step " << step;
  }
}

}  // namespace
}  // namespace ulmfit
