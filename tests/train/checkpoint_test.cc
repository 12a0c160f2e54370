#include "model/weights.h"
#include "train/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "test_util.h"

namespace ulmfit {
namespace {
namespace fs = std::filesystem;

fs::path TempDir(const std::string& name) { return ulmfit_test::TempDir("ckpt_" + name); }

TEST(CheckpointTest, RoundTripRestoresWeightsOptimizerRngAndState) {
  const fs::path dir = TempDir("roundtrip");
  torch::manual_seed(1);
  torch::nn::Linear model(3, 2);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(0.1));
  model->forward(torch::ones({4, 3})).sum().backward();
  optimizer.step();
  TrainingState state;
  state.stage = "pretrain";
  state.epoch = 2;
  state.step_in_epoch = 5;
  state.global_step = 25;
  state.metrics_bytes = 123;
  const std::vector<torch::Tensor> lstm_state{torch::full({1, 2, 3}, 0.5)};
  ASSERT_TRUE(SaveCheckpoint((dir / "ck").string(), *model, optimizer, lstm_state, state).ok());
  const torch::Tensor next_random = torch::rand({3});

  torch::manual_seed(99);
  torch::nn::Linear other(3, 2);
  torch::optim::AdamW other_opt(other->parameters(), torch::optim::AdamWOptions(0.1));
  std::vector<torch::Tensor> restored_lstm;
  auto loaded = LoadCheckpoint((dir / "ck").string(), *other, other_opt, &restored_lstm);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->epoch, 2);
  EXPECT_EQ(loaded->step_in_epoch, 5);
  EXPECT_EQ(loaded->global_step, 25);
  EXPECT_EQ(loaded->metrics_bytes, 123);
  EXPECT_TRUE(torch::equal(other->weight, model->weight));
  ASSERT_EQ(restored_lstm.size(), 1u);
  EXPECT_TRUE(torch::equal(restored_lstm[0], lstm_state[0]));
  // The RNG continues exactly where it was when the checkpoint was written.
  EXPECT_TRUE(torch::equal(torch::rand({3}), next_random));
  // Adam moments came back too: one more identical step gives identical weights.
  optimizer.zero_grad();
  model->forward(torch::ones({4, 3})).sum().backward();
  other->forward(torch::ones({4, 3})).sum().backward();
  optimizer.step();
  other_opt.step();
  EXPECT_TRUE(torch::allclose(other->weight, model->weight, 0, 0));
}

// On a GPU the dropout masks come from the device's generator: it must resume where it was too.
TEST(CheckpointTest, RoundTripRestoresTheCudaGenerator) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const fs::path dir = TempDir("cuda_rng");
  const torch::Device cuda(torch::kCUDA);
  torch::manual_seed(1);
  torch::nn::Linear model(3, 2);
  model->to(cuda);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(0.1));
  ASSERT_TRUE(SaveCheckpoint((dir / "ck").string(), *model, optimizer, {}, TrainingState{}).ok());
  const torch::Tensor next_random = torch::rand({3}, torch::TensorOptions().device(cuda));

  torch::manual_seed(99);
  std::vector<torch::Tensor> unused;
  auto loaded = LoadCheckpoint((dir / "ck").string(), *model, optimizer, &unused);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(torch::equal(torch::rand({3}, torch::TensorOptions().device(cuda)), next_random));
  fs::remove_all(dir);
}

// A data-parallel run's checkpoint: each rank resumes with its own generator, and a run of
// another number of processes is refused.
TEST(CheckpointTest, EachRankGetsItsGeneratorBackAndAnotherWorldSizeIsRefused) {
  const fs::path dir = TempDir("ranks");
  torch::nn::Linear model(3, 2);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(0.1));
  RankGenerators ranks;
  torch::manual_seed(10);
  ranks.cpu.push_back(at::globalContext().defaultGenerator(torch::kCPU).get_state());
  torch::manual_seed(11);
  ranks.cpu.push_back(at::globalContext().defaultGenerator(torch::kCPU).get_state());
  const torch::Tensor rank1_next = torch::rand({3});
  torch::manual_seed(10);  // what the process itself holds: rank 0's
  const torch::Tensor rank0_next = torch::rand({3});
  torch::manual_seed(10);
  TrainingState state;
  state.stage = "pretrain";
  ASSERT_TRUE(
      SaveCheckpoint((dir / "ck").string(), *model, optimizer, {}, state, &ranks).ok());

  std::vector<torch::Tensor> unused;
  torch::manual_seed(99);
  ASSERT_TRUE(LoadCheckpoint((dir / "ck").string(), *model, optimizer, &unused, 1, 2).ok());
  EXPECT_TRUE(torch::equal(torch::rand({3}), rank1_next));
  torch::manual_seed(99);
  ASSERT_TRUE(LoadCheckpoint((dir / "ck").string(), *model, optimizer, &unused, 0, 2).ok());
  EXPECT_TRUE(torch::equal(torch::rand({3}), rank0_next));

  const auto alone = LoadCheckpoint((dir / "ck").string(), *model, optimizer, &unused);
  ASSERT_FALSE(alone.ok());
  EXPECT_NE(alone.status().message().find(
                "this checkpoint was written by a run of 2 processes, this run has 1; resume "
                "with 2 (--nproc 2 or WORLD_SIZE=2)"),
            std::string::npos)
      << alone.status();
  fs::remove_all(dir);
}

TEST(CheckpointTest, ShapeMismatchIsAClearError) {
  const fs::path dir = TempDir("mismatch");
  torch::nn::Linear model(3, 2);
  ASSERT_TRUE(SaveModuleWeights(*model, (dir / "w.pt").string()).ok());
  torch::nn::Linear bigger(4, 2);
  const absl::Status status = LoadModuleWeights(*bigger, (dir / "w.pt").string());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("weight"), std::string_view::npos) << status;
  EXPECT_NE(status.message().find("2x3"), std::string_view::npos) << status;
}

// Issue 18, item 7: a weights file holding NaN (a flipped bit) loaded, and predict printed
// "-nan" probabilities with exit 0.
TEST(CheckpointTest, NonFiniteWeightsAreRefusedOnLoad) {
  const fs::path dir = TempDir("nan");
  torch::nn::Linear model(3, 2);
  {
    torch::NoGradGuard no_grad;
    model->weight[1][2] = std::numeric_limits<float>::quiet_NaN();
  }
  ASSERT_TRUE(SaveModuleWeights(*model, (dir / "w.pt").string()).ok());
  torch::nn::Linear loaded(3, 2);
  const absl::Status status = LoadModuleWeights(*loaded, (dir / "w.pt").string());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("'weight' holds NaN or infinite values"),
            std::string_view::npos)
      << status;
  EXPECT_NE(status.message().find("w.pt"), std::string_view::npos) << status;
}

TEST(CheckpointTest, CorruptFileIsAClearError) {
  const fs::path dir = TempDir("corrupt");
  std::ofstream(dir / "w.pt") << "this is not a checkpoint";
  torch::nn::Linear model(3, 2);
  const absl::Status status = LoadModuleWeights(*model, (dir / "w.pt").string());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("corrupt"), std::string_view::npos) << status;
  EXPECT_NE(status.message().find("w.pt"), std::string_view::npos) << status;
}

TEST(CheckpointTest, CrashBetweenRenamesLeavesOldCheckpointUsable) {
  const fs::path dir = TempDir("swap");
  torch::nn::Linear model(3, 2);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(0.1));
  TrainingState state;
  state.stage = "pretrain";
  state.global_step = 7;
  ASSERT_TRUE(SaveCheckpoint((dir / "ck").string(), *model, optimizer, {}, state).ok());
  // Simulate a crash after "ck" was moved aside but before the new one was renamed in.
  fs::rename(dir / "ck", dir / "ck.old");
  EXPECT_TRUE(CheckpointExists((dir / "ck").string()));
  std::vector<torch::Tensor> lstm;
  auto loaded = LoadCheckpoint((dir / "ck").string(), *model, optimizer, &lstm);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->global_step, 7);
}

}  // namespace
}  // namespace ulmfit
