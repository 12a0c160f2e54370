// Data-parallel batches: each process's shard of the LM and classifier batches
// (LmBatcherOptions::shard_*, ClasBatcher::SetShard) put together is the one-process batch.
#include <gtest/gtest.h>

#include <algorithm>

#include "data/clas_batcher.h"
#include "data/lm_batcher.h"

namespace ulmfit {
namespace {

// n documents of lengths 1..n spread pseudo-randomly; document d's tokens are 1000 * d + k.
TokenizedCorpus Docs(int n) {
  TokenizedCorpus corpus;
  uint32_t state = 99;
  for (int d = 0; d < n; ++d) {
    state = state * 1664525u + 1013904223u;
    const int len = 1 + static_cast<int>((state >> 8) % 40);
    for (int k = 0; k < len; ++k) corpus.ids.push_back(1000 * d + k);
    corpus.offsets.push_back(static_cast<int64_t>(corpus.ids.size()));
  }
  return corpus;
}

TEST(ShardingTest, LmShardsAreBlocksOfTheJobsRowsWithTheSameWindows) {
  const TokenizedCorpus corpus = Docs(50);
  LmBatcherOptions options;
  options.batch_size = 6;
  options.bptt = 9;
  options.variable_bptt = true;
  options.seed = 5;
  LmBatcher whole(&corpus.ids, &corpus.offsets, options);
  whole.StartEpoch(2);
  for (int rank = 0; rank < 3; ++rank) {
    LmBatcherOptions shard_options = options;
    shard_options.shard_rank = rank;
    shard_options.shard_count = 3;
    LmBatcher shard(&corpus.ids, &corpus.offsets, shard_options);
    shard.StartEpoch(2);
    EXPECT_EQ(shard.rows(), 2);
    ASSERT_EQ(shard.num_batches(), whole.num_batches());
    for (int64_t i = 0; i < whole.num_batches(); ++i) {
      const LmBatch expected = whole.Batch(i);
      const LmBatch actual = shard.Batch(i);
      EXPECT_TRUE(torch::equal(actual.input, expected.input.narrow(1, 2 * rank, 2)));
      EXPECT_TRUE(torch::equal(actual.target, expected.target.narrow(1, 2 * rank, 2)));
    }
  }
}

TEST(ShardingTest, LmBatchThatDoesNotSplitEvenlyIsRefused) {
  const TokenizedCorpus corpus = Docs(10);
  LmBatcherOptions options;
  options.batch_size = 5;
  options.shard_count = 2;
  EXPECT_THROW(LmBatcher(&corpus.ids, &corpus.offsets, options), c10::Error);
}

TEST(ShardingTest, ClassifierShardsSplitEveryBatchPaddedToTheWholeBatchsLength) {
  const TokenizedCorpus docs = Docs(37);
  std::vector<int64_t> labels(37);
  for (int i = 0; i < 37; ++i) labels[i] = i % 3;
  // 37 documents in batches of 8: the last batch has 5 rows (with 3 processes: 2, 2, 1).
  ClasBatcher whole(&docs, &labels, 8, 4, /*shuffle=*/true, false, 11);
  std::vector<ClasBatcher> shards;
  for (int rank = 0; rank < 3; ++rank) {
    shards.emplace_back(&docs, &labels, 8, 4, true, false, 11);
    shards.back().SetShard(rank, 3);
  }
  for (int epoch = 0; epoch < 3; ++epoch) {
    whole.StartEpoch(epoch);
    for (auto& shard : shards) shard.StartEpoch(epoch);
    for (const auto& shard : shards) ASSERT_EQ(shard.num_batches(), whole.num_batches());
    for (int64_t b = 0; b < whole.num_batches(); ++b) {
      const ClasBatch expected = whole.Batch(b);
      std::vector<int64_t> seen;
      for (const auto& shard : shards) {
        const ClasBatch part = shard.Batch(b);
        EXPECT_EQ(part.job_rows, expected.job_rows);
        ASSERT_FALSE(part.indices.empty());
        EXPECT_EQ(part.tokens.size(0), expected.tokens.size(0));  // the whole batch's length
        for (size_t r = 0; r < part.indices.size(); ++r) {
          // The row is the whole batch's row for that document, token for token.
          const auto at = std::find(expected.indices.begin(), expected.indices.end(),
                                    part.indices[r]) - expected.indices.begin();
          EXPECT_TRUE(torch::equal(part.tokens.select(1, r), expected.tokens.select(1, at)));
          EXPECT_EQ(part.labels[r].item<int64_t>(), expected.labels[at].item<int64_t>());
          seen.push_back(part.indices[r]);
        }
      }
      std::sort(seen.begin(), seen.end());
      std::vector<int64_t> want = expected.indices;
      std::sort(want.begin(), want.end());
      EXPECT_EQ(seen, want) << "batch " << b;
    }
  }
}

TEST(ShardingTest, ALastBatchSmallerThanTheProcessesIsMergedSoNoShardIsEmpty) {
  const TokenizedCorpus docs = Docs(17);  // batches of 8: 8, 8, 1
  std::vector<int64_t> labels(17, 0);
  ClasBatcher shard(&docs, &labels, 8, 4, true, false, 3);
  shard.SetShard(3, 4);
  // 8, 9 (the last row merged); rank 3 of 4 gets 2 rows of each.
  ASSERT_EQ(shard.num_batches(), 2);
  EXPECT_EQ(shard.Batch(0).job_rows + shard.Batch(1).job_rows, 17);
  for (int64_t b = 0; b < 2; ++b) EXPECT_EQ(shard.Batch(b).indices.size(), 2u);
}

}  // namespace
}  // namespace ulmfit
