// FusedAdamW against libtorch's AdamW: the same parameters and moments after several steps with
// per-group options, the same checkpoint state either way, and libtorch's path where one pass
// cannot serve.
#include "train/fused_adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>
#include <vector>

namespace ulmfit {
namespace {

std::vector<torch::optim::OptimizerParamGroup> Groups(const std::vector<torch::Tensor>& params,
                                                      bool amsgrad = false) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto a = std::make_unique<torch::optim::AdamWOptions>(3e-3);
  a->betas({0.8, 0.99}).eps(1e-5).weight_decay(0.01).amsgrad(amsgrad);
  groups.emplace_back(std::vector<torch::Tensor>{params[0]}, std::move(a));
  auto b = std::make_unique<torch::optim::AdamWOptions>(1e-2);
  b->betas({0.9, 0.999}).eps(1e-8).weight_decay(0.0).amsgrad(amsgrad);
  groups.emplace_back(std::vector<torch::Tensor>{params[1], params[2]}, std::move(b));
  return groups;
}

std::vector<torch::Tensor> Params(torch::Device device = torch::kCPU) {
  torch::manual_seed(5);
  // Sizes with a tail past any vector width, one big enough to be split between threads.
  return {torch::randn({37, 19}).to(device).requires_grad_(true),
          torch::randn({70001}).to(device).requires_grad_(true),
          torch::randn({3}).to(device).requires_grad_(true)};
}

void FakeGradients(const std::vector<torch::Tensor>& params, int step) {
  torch::manual_seed(100 + step);
  for (const auto& p : params) p.mutable_grad() = torch::randn_like(p) * (step + 1);
}

TEST(FusedAdamWTest, MatchesLibtorchOverSteps) {
  std::vector<torch::Tensor> ours = Params(), theirs = Params();
  FusedAdamW fused(Groups(ours));
  torch::optim::AdamW reference(Groups(theirs));
  for (int step = 0; step < 6; ++step) {
    FakeGradients(ours, step);
    FakeGradients(theirs, step);
    fused.step();
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours[i], theirs[i], 1e-6, 1e-7)) << "parameter " << i;
    EXPECT_FALSE(torch::equal(ours[i], Params()[i])) << "parameter " << i << " did not move";
  }
  // The moments too, through the checkpoint format both share.
  std::stringstream a, b;
  {
    torch::serialize::OutputArchive archive;
    fused.save(archive);
    archive.save_to(a);
  }
  torch::optim::AdamW loaded(Groups(Params()));
  torch::serialize::InputArchive in;
  in.load_from(a);
  loaded.load(in);
  FakeGradients(theirs, 6);
  std::vector<torch::Tensor> resumed = Params();
  for (size_t i = 0; i < resumed.size(); ++i) {
    torch::NoGradGuard no_grad;
    resumed[i].copy_(ours[i]);
  }
  // A libtorch AdamW loaded from FusedAdamW's state takes the same next step as FusedAdamW.
  torch::optim::AdamW from_fused(Groups(resumed));
  torch::serialize::InputArchive in2;
  a.seekg(0);
  in2.load_from(a);
  from_fused.load(in2);
  FakeGradients(resumed, 6);
  FakeGradients(ours, 6);
  from_fused.step();
  fused.step();
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours[i], resumed[i], 1e-6, 1e-7)) << "parameter " << i;
  }
}

TEST(FusedAdamWTest, ParametersWithoutGradientsStayAndGetNoState) {
  std::vector<torch::Tensor> params = Params();
  FusedAdamW fused(Groups(params));
  FakeGradients(params, 0);
  params[2].mutable_grad() = torch::Tensor();
  const torch::Tensor before = params[2].detach().clone();
  fused.step();
  EXPECT_TRUE(torch::equal(params[2], before));
  EXPECT_EQ(fused.state().size(), 2u);
}

TEST(FusedAdamWTest, AmsgradAndOddLayoutsTakeLibtorchsStep) {
  // amsgrad: libtorch's step, which keeps max_exp_avg_sq.
  std::vector<torch::Tensor> ours = Params(), theirs = Params();
  FusedAdamW fused(Groups(ours, /*amsgrad=*/true));
  torch::optim::AdamW reference(Groups(theirs, /*amsgrad=*/true));
  for (int step = 0; step < 3; ++step) {
    FakeGradients(ours, step);
    FakeGradients(theirs, step);
    fused.step();
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) EXPECT_TRUE(torch::equal(ours[i], theirs[i]));
  // A float32 parameter whose gradient is a transposed (non-contiguous) view.
  torch::manual_seed(6);
  torch::Tensor strided = torch::randn({8, 5}).requires_grad_(true);
  torch::Tensor strided_ref = strided.detach().clone().requires_grad_(true);
  FusedAdamW fused_strided({strided}, torch::optim::AdamWOptions(0.1));
  torch::optim::AdamW ref_strided({strided_ref}, torch::optim::AdamWOptions(0.1));
  strided.mutable_grad() = torch::randn({5, 8}).t();
  ASSERT_FALSE(strided.grad().is_contiguous());
  strided_ref.mutable_grad() = strided.grad().clone();
  fused_strided.step();
  ref_strided.step();
  EXPECT_TRUE(torch::equal(strided, strided_ref));
  // Double precision.
  torch::Tensor wide = torch::randn({8, 5}, torch::kDouble).requires_grad_(true);
  torch::Tensor wide_ref = wide.detach().clone().requires_grad_(true);
  FusedAdamW fused_double({wide}, torch::optim::AdamWOptions(0.1));
  torch::optim::AdamW ref_double({wide_ref}, torch::optim::AdamWOptions(0.1));
  wide.mutable_grad() = torch::randn({5, 8}, torch::kDouble).t();
  wide_ref.mutable_grad() = wide.grad().clone();
  fused_double.step();
  ref_double.step();
  EXPECT_TRUE(torch::equal(wide, wide_ref));
}

TEST(FusedAdamWTest, UpdateFollowsTheFormula) {
  // One element by hand: decay, moments, bias-corrected step.
  float p = 1.0f, g = 0.5f, m = 0.1f, v = 0.04f;
  AdamWStep s{0.99f, 0.9f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, -0.2f};
  AdamWUpdate(&p, &g, &m, &v, 1, s);
  const float m_want = 0.1f * 0.9f + 0.1f * 0.5f;
  const float v_want = 0.04f * 0.999f + 0.001f * 0.25f;
  EXPECT_FLOAT_EQ(m, m_want);
  EXPECT_FLOAT_EQ(v, v_want);
  EXPECT_FLOAT_EQ(p, 0.99f - 0.2f * (m_want / (std::sqrt(v_want) / 0.5f + 1e-8f)));
}

}  // namespace
}  // namespace ulmfit
