// The c10d pieces (src/dist/world.*, src/dist/data_parallel.*) on a real Gloo group of two ranks
// in one process, one thread each, over loopback.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "dist/data_parallel.h"
#include "dist/world.h"
#include "model/classifier.h"
#include "test_util.h"

namespace {
using namespace ulmfit;
using ulmfit_test::FreePort;

LaunchEnvironment Rank(int rank, int world_size, int port) {
  LaunchEnvironment env;
  env.rank = rank;
  env.local_rank = rank;
  env.world_size = world_size;
  env.local_world_size = world_size;
  env.master_port = port;
  env.launcher = "test";
  return env;
}

// Runs `body(world)` on two ranks at once, each in its own thread with its own World.
void OnTwoRanks(const std::function<void(World&)>& body) {
  const int port = FreePort();
  auto run = [&](int rank) {
    World::Options options;
    options.timeout_s = 30;
    absl::StatusOr<std::unique_ptr<World>> world = World::Join(Rank(rank, 2, port), options);
    ASSERT_TRUE(world.ok()) << world.status();
    body(**world);
  };
  std::thread other(run, 1);
  run(0);
  other.join();
}

TEST(WorldTest, ValuesAreSummedOrMaximisedOverTheRanks) {
  OnTwoRanks([](World& world) {
    const double r = world.rank();
    EXPECT_EQ(world.AllReduceValues({1.0, r, 10 * r}), (std::vector<double>{2.0, 1.0, 10.0}));
    EXPECT_EQ(world.AllReduceValues({r, -r}, World::Op::kMax), (std::vector<double>{1.0, 0.0}));
    const torch::Tensor gathered = world.AllGather(torch::full({3}, r + 1));
    EXPECT_TRUE(torch::equal(gathered, torch::tensor({{1.f, 1.f, 1.f}, {2.f, 2.f, 2.f}})));
  });
}

TEST(WorldTest, BroadcastModuleGivesEveryRankRankZerosWeightsAndBuffers) {
  OnTwoRanks([](World& world) {
    torch::manual_seed(world.rank() + 7);  // different initial weights per rank
    torch::nn::BatchNorm1d bn(4);
    torch::nn::Linear linear(4, 3);
    {
      torch::NoGradGuard no_grad;
      bn->running_mean.fill_(world.rank() + 1.0);
    }
    BroadcastModule(world, *linear);
    BroadcastModule(world, *bn);
    const torch::Tensor all = world.AllGather(linear->weight.detach());
    EXPECT_TRUE(torch::equal(all[0], all[1]));
    EXPECT_TRUE(torch::allclose(bn->running_mean, torch::ones({4})));
  });
}

// A module whose one weight is registered twice, as the LM's tied embedding and decoder.
struct Tied : torch::nn::Module {
  Tied() {
    weight = register_parameter("weight", torch::ones({2, 2}));
    register_parameter("decoder_weight", weight);
    bias = register_parameter("bias", torch::zeros({2}));
  }
  torch::Tensor weight, bias;
};

TEST(WorldTest, GradientsAreAveragedOnceEvenForATiedWeight) {
  OnTwoRanks([](World& world) {
    Tied module;
    ASSERT_EQ(module.parameters().size(), 3u);
    EXPECT_EQ(UniqueParameters(module).size(), 2u);
    const double r = world.rank();
    module.weight.mutable_grad() = torch::full({2, 2}, 2.0 + 4 * r);  // ranks: 2 and 6
    // The bias has no gradient on rank 1 (a batch that did not reach it): zeros there.
    if (world.rank() == 0) module.bias.mutable_grad() = torch::full({2}, 8.0);
    GradientSync sync(world, module, /*bucket_bytes=*/8);  // several buckets
    sync.AverageGradients();
    EXPECT_TRUE(torch::allclose(module.weight.grad(), torch::full({2, 2}, 4.0)));
    EXPECT_TRUE(torch::allclose(module.bias.grad(), torch::full({2}, 4.0)));
  });
}

TEST(WorldTest, CrossRankSumCarriesEveryRanksLossIntoEachRanksGradient) {
  OnTwoRanks([](World& world) {
    const double r = world.rank();
    const torch::Tensor x = torch::full({2}, r + 1.0, torch::requires_grad());
    const torch::Tensor sum = CrossRankSum(world, x);  // 3 on both ranks
    EXPECT_TRUE(torch::allclose(sum, torch::full({2}, 3.0)));
    // Rank r's loss: (r + 1) * sum. The job's loss is 3 * sum, so d/dx = 3 on every rank.
    ((r + 1) * sum).sum().backward();
    EXPECT_TRUE(torch::allclose(x.grad(), torch::full({2}, 3.0)));
  });
}

TEST(WorldTest, SyncedBatchNormOverTwoRanksNormalizesAsTheWholeBatch) {
  torch::manual_seed(3);
  const torch::Tensor whole = torch::randn({6, 4}) * 3 + 1;
  torch::nn::BatchNorm1d reference(4);
  const torch::Tensor expected = reference->forward(whole);
  OnTwoRanks([&](World& world) {
    torch::nn::BatchNorm1d bn(4);
    // Unequal shards: 4 rows and 2.
    const torch::Tensor mine =
        world.rank() == 0 ? whole.slice(0, 0, 4) : whole.slice(0, 4, 6);
    const torch::Tensor y = SyncedBatchNorm(
        *bn, mine, [&world](const torch::Tensor& t) { return CrossRankSum(world, t); });
    const torch::Tensor want =
        world.rank() == 0 ? expected.slice(0, 0, 4) : expected.slice(0, 4, 6);
    EXPECT_TRUE(torch::allclose(y, want, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(bn->running_mean, reference->running_mean, 1e-6, 1e-6));
    EXPECT_TRUE(torch::allclose(bn->running_var, reference->running_var, 1e-5, 1e-5));
  });
}

TEST(WorldTest, LeaderFirstRunsRankZeroBeforeTheOthersAndSharesItsFailure) {
  OnTwoRanks([](World& world) {
    static std::atomic<int> order{0};
    int mine = -1;
    const absl::Status first = world.LeaderFirst("writing a file", [&] {
      if (world.leader()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      mine = order++;
      return absl::OkStatus();
    });
    EXPECT_TRUE(first.ok());
    EXPECT_EQ(mine, world.rank());  // rank 0 first, however long it takes
    const absl::Status second = world.LeaderFirst("reading the corpus", [&] {
      return world.leader() ? absl::NotFoundError("corpus.txt: no such file")
                            : absl::OkStatus();
    });
    ASSERT_FALSE(second.ok());
    if (!world.leader()) {
      EXPECT_EQ(second.message(),
                "rank 1: rank 0 failed while reading the corpus: corpus.txt: no such file");
    }
  });
}

TEST(WorldTest, AStoreNobodyServesIsAOneLineErrorWithinTheTimeout) {
  World::Options options;
  options.timeout_s = 2;
  const auto start = std::chrono::steady_clock::now();
  // Rank 1 of 2: a client of a rank 0 that never starts.
  const absl::StatusOr<std::unique_ptr<World>> world = World::Join(Rank(1, 2, FreePort()), options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(world.ok());
  const std::string message(world.status().message());
  EXPECT_NE(message.find("rank 1: cannot reach the rendezvous store at 127.0.0.1:"),
            std::string::npos) << message;
  EXPECT_NE(message.find("MASTER_ADDR"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_LT(seconds, 30) << "the wait should end near run.distributed_timeout_s";
}

TEST(WorldTest, NcclIsRefusedOnTheCpuWithAClearError) {
  World::Options options;
  options.backend = DistributedBackend::kNccl;
  const auto world = World::Join(Rank(0, 2, FreePort()), options);
  ASSERT_FALSE(world.ok());
  EXPECT_NE(world.status().message().find("nccl needs CUDA"), std::string::npos)
      << world.status();
}

TEST(WorldTest, RankZeroKeepsTheSeedAndTheOthersGetTheirOwn) {
  EXPECT_EQ(RankSeed(42, 0), 42u);
  EXPECT_NE(RankSeed(42, 1), 42u);
  EXPECT_NE(RankSeed(42, 1), RankSeed(42, 2));
  EXPECT_EQ(RankSeed(42, 1), RankSeed(42, 1));
}

}  // namespace
