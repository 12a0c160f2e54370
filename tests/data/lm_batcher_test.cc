#include "data/lm_batcher.h"

#include <gtest/gtest.h>

#include <numeric>

namespace ulmfit {
namespace {

// Three documents of distinct token ranges, 101 tokens in all.
struct Corpus {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets{0};
  Corpus() {
    for (int doc = 0; doc < 3; ++doc) {
      const int len = doc == 0 ? 41 : 30;
      for (int k = 0; k < len; ++k) ids.push_back(doc * 1000 + k);
      offsets.push_back(static_cast<int64_t>(ids.size()));
    }
  }
};

TEST(LmBatcherTest, TargetsAreInputsShiftedByOneAndRowsAreContiguous) {
  Corpus corpus;
  LmBatcherOptions options;
  options.batch_size = 4;
  options.bptt = 7;
  options.shuffle = false;
  LmBatcher batcher(&corpus.ids, &corpus.offsets, options);
  batcher.StartEpoch(0);
  EXPECT_EQ(batcher.row_length(), 25);  // (101 - 1) / 4
  EXPECT_EQ(batcher.num_batches(), 4);  // 7 + 7 + 7 + 4
  std::vector<std::vector<int64_t>> rows(4);
  for (int64_t b = 0; b < batcher.num_batches(); ++b) {
    const LmBatch batch = batcher.Batch(b);
    ASSERT_EQ(batch.input.sizes(), batch.target.sizes());
    ASSERT_EQ(batch.input.size(1), 4);
    for (int64_t t = 0; t < batch.seq_len; ++t) {
      for (int64_t r = 0; r < 4; ++r) {
        rows[r].push_back(batch.input[t][r].item<int64_t>());
        if (t + 1 < batch.seq_len) {
          EXPECT_EQ(batch.target[t][r].item<int64_t>(), batch.input[t + 1][r].item<int64_t>());
        }
      }
    }
  }
  // Unshuffled: row r is the stream from r * 25.
  std::vector<int64_t> stream(corpus.ids.begin(), corpus.ids.end());
  for (int r = 0; r < 4; ++r) {
    ASSERT_EQ(rows[r].size(), 25u);
    for (int k = 0; k < 25; ++k) EXPECT_EQ(rows[r][k], stream[r * 25 + k]);
  }
}

TEST(LmBatcherTest, EpochsAreReproducibleAndShuffledDifferently) {
  Corpus corpus;
  LmBatcherOptions options;
  options.batch_size = 2;
  options.bptt = 10;
  options.variable_bptt = true;
  options.seed = 7;
  LmBatcher a(&corpus.ids, &corpus.offsets, options);
  LmBatcher b(&corpus.ids, &corpus.offsets, options);
  a.StartEpoch(3);
  b.StartEpoch(3);
  ASSERT_EQ(a.num_batches(), b.num_batches());
  for (int64_t i = 0; i < a.num_batches(); ++i) {
    EXPECT_TRUE(torch::equal(a.Batch(i).input, b.Batch(i).input));
  }
  // Some epoch among the next few orders the documents differently.
  bool differs = false;
  for (int epoch = 4; epoch < 10 && !differs; ++epoch) {
    b.StartEpoch(epoch);
    differs = !torch::equal(a.Batch(0).input, b.Batch(0).input);
  }
  EXPECT_TRUE(differs);
}

TEST(LmBatcherTest, VariableBpttKeepsLengthsNearBptt) {
  std::vector<int32_t> ids(20001);
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<int64_t> offsets{0, static_cast<int64_t>(ids.size())};
  LmBatcherOptions options;
  options.batch_size = 1;
  options.bptt = 70;
  options.variable_bptt = true;
  LmBatcher batcher(&ids, &offsets, options);
  batcher.StartEpoch(0);
  int64_t total = 0;
  for (int64_t i = 0; i < batcher.num_batches(); ++i) {
    const int64_t len = batcher.Batch(i).seq_len;
    EXPECT_GE(len, i + 1 == batcher.num_batches() ? 1 : 5);
    total += len;
  }
  EXPECT_EQ(total, 20000);
  const double mean = static_cast<double>(total) / batcher.num_batches();
  EXPECT_GT(mean, 60);
  EXPECT_LT(mean, 72);
}

TEST(LmBatcherTest, BackwardsReversesTheStream) {
  Corpus corpus;
  LmBatcherOptions options;
  options.batch_size = 1;
  options.bptt = 200;
  options.shuffle = false;
  options.backwards = true;
  LmBatcher batcher(&corpus.ids, &corpus.offsets, options);
  batcher.StartEpoch(0);
  const LmBatch batch = batcher.Batch(0);
  EXPECT_EQ(batch.input[0][0].item<int64_t>(), corpus.ids.back());
  EXPECT_EQ(batch.target[0][0].item<int64_t>(), corpus.ids[corpus.ids.size() - 2]);
}

}  // namespace
}  // namespace ulmfit
