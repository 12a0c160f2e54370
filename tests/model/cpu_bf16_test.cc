// run.cpu_bf16: with the scope on, the LSTM layer and the fused decoder loss take bfloat16
// products (results near float32's, not equal to them), backward follows forward's choice, and
// the switch applies only where it should.
#include "model/cpu_bf16.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/linear_cross_entropy.h"
#include "model/lstm_layer.h"

namespace ulmfit {
namespace {

double RelativeError(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item<double>();
}

// Outputs and gradients of one LSTM layer; `bf16` on for forward only, as the trainers do.
std::vector<torch::Tensor> LstmResults(bool bf16) {
  torch::manual_seed(21);
  const int64_t steps = 5, batch = 3, in = 24, h = 20;
  std::vector<torch::Tensor> leaves = {
      torch::randn({steps, batch, in}), torch::randn({1, batch, h}),
      torch::randn({1, batch, h}),      torch::randn({4 * h, in}) * 0.3,
      torch::randn({4 * h, h}) * 0.3,   torch::randn({4 * h}),
      torch::randn({4 * h})};
  for (auto& l : leaves) l.requires_grad_(true);
  torch::Tensor out, h_n, c_n;
  {
    CpuBf16Scope scope(bf16);
    std::tie(out, h_n, c_n) =
        LstmLayer(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], leaves[6]);
  }
  (out.sum() + h_n.sum() * 0.5 + c_n.sum() * 0.25).backward();
  std::vector<torch::Tensor> results = {out.detach(), c_n.detach()};
  for (const auto& l : leaves) results.push_back(l.grad());
  return results;
}

TEST(CpuBf16, LstmLayerIsNearFloat32ButNotEqual) {
  const auto f32 = LstmResults(false), b16 = LstmResults(true);
  const char* names[] = {"out", "c_n", "dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh"};
  double largest = 0;
  for (size_t i = 0; i < f32.size(); ++i) {
    const double err = RelativeError(b16[i], f32[i]);
    EXPECT_LT(err, 0.05) << names[i];  // bfloat16 keeps 8 significant bits
    largest = std::max(largest, err);
  }
  EXPECT_GT(largest, 1e-6) << "the scope changed nothing: the products stayed float32";
  EXPECT_FALSE(CpuBf16Enabled()) << "the scope must switch bfloat16 off again";
}

TEST(CpuBf16, FusedDecoderLossIsNearFloat32) {
  torch::manual_seed(22);
  const torch::Tensor x0 = torch::randn({12, 16}), w0 = torch::randn({40, 16}) * 0.5;
  const torch::Tensor b0 = torch::randn({40});
  const torch::Tensor target = torch::randint(40, {12}, torch::kLong);
  std::vector<torch::Tensor> results[2];
  for (bool bf16 : {false, true}) {
    torch::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true),
                  b = b0.clone().requires_grad_(true);
    torch::Tensor loss;
    {
      CpuBf16Scope scope(bf16);
      loss = LinearCrossEntropy(x, w, b, target, /*block_rows=*/5);
    }
    loss.backward();
    results[bf16] = {loss.detach(), x.grad(), w.grad(), b.grad()};
  }
  const char* names[] = {"loss", "dx", "dw", "db"};
  double largest = 0;
  for (size_t i = 0; i < results[0].size(); ++i) {
    const double err = RelativeError(results[1][i], results[0][i]);
    EXPECT_LT(err, 0.05) << names[i];
    largest = std::max(largest, err);
  }
  EXPECT_GT(largest, 1e-6) << "the scope changed nothing: the products stayed float32";
}

TEST(CpuBf16, AppliesOnlyWhenAskedOnACpuWithBf16Instructions) {
  std::string why;
  EXPECT_FALSE(UseCpuBf16(false, torch::kCPU, &why));
  EXPECT_TRUE(why.empty());
  EXPECT_FALSE(UseCpuBf16(true, torch::Device(torch::kCUDA, 0), &why));
  EXPECT_NE(why.find("CPU only"), std::string::npos) << why;
  why.clear();
  EXPECT_EQ(UseCpuBf16(true, torch::kCPU, &why), CpuHasFastBf16());
  EXPECT_EQ(why.empty(), CpuHasFastBf16()) << why;
}

}  // namespace
}  // namespace ulmfit
