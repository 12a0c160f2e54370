#include "data/clas_batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "text/rules.h"

namespace ulmfit {
namespace {

TokenizedCorpus MakeDocs(const std::vector<std::vector<int32_t>>& docs) {
  TokenizedCorpus corpus;
  for (const auto& doc : docs) {
    corpus.ids.insert(corpus.ids.end(), doc.begin(), doc.end());
    corpus.offsets.push_back(static_cast<int64_t>(corpus.ids.size()));
  }
  return corpus;
}

// n documents with pseudo-random lengths in [1, 60]; document d's tokens are 1000 * d + k.
TokenizedCorpus RandomDocs(int n) {
  std::vector<std::vector<int32_t>> docs;
  uint32_t state = 12345;
  for (int d = 0; d < n; ++d) {
    state = state * 1664525u + 1013904223u;
    const int len = 1 + static_cast<int>((state >> 8) % 60);
    std::vector<int32_t> doc;
    for (int k = 0; k < len; ++k) doc.push_back(1000 * d + k);
    docs.push_back(doc);
  }
  return MakeDocs(docs);
}

std::vector<int64_t> Column(const torch::Tensor& tokens, int64_t row) {
  torch::Tensor column = tokens.select(1, row).contiguous();
  return std::vector<int64_t>(column.data_ptr<int64_t>(),
                              column.data_ptr<int64_t>() + column.numel());
}

std::vector<int64_t> Values(const torch::Tensor& tensor) {
  torch::Tensor t = tensor.contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

// Every batch's example indices in batch order.
std::vector<std::vector<int64_t>> Order(const ClasBatcher& batcher) {
  std::vector<std::vector<int64_t>> order;
  for (int64_t b = 0; b < batcher.num_batches(); ++b) order.push_back(batcher.Batch(b).indices);
  return order;
}

constexpr int64_t P = kPadId;

TEST(ClasBatcherTest, PadFirstInWholeChunksAsFastai) {
  // Lengths 2, 7, 5 with bptt 3: the batch is 7 long; the 5-token row has 2 pads (< one chunk,
  // all at the end), the 2-token row has 5: one whole chunk in front and 2 at the end.
  TokenizedCorpus docs = MakeDocs({{20, 21}, {10, 11, 12, 13, 14, 15, 16}, {30, 31, 32, 33, 34}});
  std::vector<int64_t> labels = {5, 6, 7};
  ClasBatcher batcher(&docs, &labels, /*batch_size=*/3, /*bptt=*/3, /*shuffle=*/false,
                      /*backwards=*/false, /*seed=*/0);
  ASSERT_EQ(batcher.num_batches(), 1);
  ClasBatch batch = batcher.Batch(0);
  ASSERT_EQ(batch.tokens.sizes(), (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(batch.tokens.scalar_type(), torch::kInt64);
  EXPECT_EQ(Column(batch.tokens, 0), (std::vector<int64_t>{10, 11, 12, 13, 14, 15, 16}));
  EXPECT_EQ(Column(batch.tokens, 1), (std::vector<int64_t>{30, 31, 32, 33, 34, P, P}));
  EXPECT_EQ(Column(batch.tokens, 2), (std::vector<int64_t>{P, P, P, 20, 21, P, P}));
  EXPECT_EQ(batch.indices, (std::vector<int64_t>{1, 2, 0}));
  EXPECT_EQ(Values(batch.lengths), (std::vector<int64_t>{7, 5, 2}));
  EXPECT_EQ(Values(batch.labels), (std::vector<int64_t>{6, 7, 5}));
}

TEST(ClasBatcherTest, BackwardsReversesEachDocument) {
  TokenizedCorpus docs = MakeDocs({{20, 21}, {10, 11, 12, 13, 14}});
  ClasBatcher batcher(&docs, nullptr, 2, 2, false, /*backwards=*/true, 0);
  ClasBatch batch = batcher.Batch(0);
  EXPECT_EQ(Column(batch.tokens, 0), (std::vector<int64_t>{14, 13, 12, 11, 10}));
  EXPECT_EQ(Column(batch.tokens, 1), (std::vector<int64_t>{P, P, 21, 20, P}));
  EXPECT_EQ(batch.labels.numel(), 0);  // no labels given
}

TEST(ClasBatcherTest, RowsMatchTheirLabelsLengthsAndTokens) {
  TokenizedCorpus docs = RandomDocs(300);
  std::vector<int64_t> labels(300);
  for (int d = 0; d < 300; ++d) labels[d] = d % 7;
  const int64_t bptt = 8;
  ClasBatcher batcher(&docs, &labels, 16, bptt, /*shuffle=*/true, false, 3);
  batcher.StartEpoch(2);
  for (int64_t b = 0; b < batcher.num_batches(); ++b) {
    ClasBatch batch = batcher.Batch(b);
    const int64_t rows = static_cast<int64_t>(batch.indices.size());
    ASSERT_EQ(batch.tokens.size(1), rows);
    ASSERT_EQ(batch.labels.numel(), rows);
    const std::vector<int64_t> row_labels = Values(batch.labels);
    const std::vector<int64_t> lengths = Values(batch.lengths);
    const int64_t max_len = batch.tokens.size(0);
    EXPECT_EQ(max_len, lengths[0]);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t doc = batch.indices[r];
      EXPECT_EQ(row_labels[r], labels[doc]);
      EXPECT_EQ(lengths[r], docs.offsets[doc + 1] - docs.offsets[doc]);
      if (r > 0) EXPECT_LE(lengths[r], lengths[r - 1]);
      // The text starts on a chunk boundary and is surrounded by pads only.
      const std::vector<int64_t> column = Column(batch.tokens, r);
      const int64_t front = (max_len - lengths[r]) / bptt * bptt;
      for (int64_t t = 0; t < max_len; ++t) {
        const bool text = t >= front && t < front + lengths[r];
        EXPECT_EQ(column[t], text ? 1000 * doc + (t - front) : P);
      }
    }
  }
}

TEST(ClasBatcherTest, SortishOrderIsSeededAndCoversEveryExampleOnce) {
  // 2001 examples, batch 4: chunks of 200 sorted inside, a last batch of 1 merged away.
  TokenizedCorpus docs = RandomDocs(2001);
  ClasBatcher a(&docs, nullptr, 4, 5, true, false, 11);
  ClasBatcher b(&docs, nullptr, 4, 5, true, false, 11);
  ClasBatcher other_seed(&docs, nullptr, 4, 5, true, false, 12);
  a.StartEpoch(1);
  b.StartEpoch(1);
  other_seed.StartEpoch(1);
  const auto order = Order(a);
  EXPECT_EQ(order, Order(b));
  EXPECT_NE(order, Order(other_seed));
  a.StartEpoch(2);
  EXPECT_NE(Order(a), order);

  ASSERT_EQ(order.size(), 500u);
  EXPECT_EQ(order.back().size(), 5u);
  std::vector<int64_t> seen;
  for (const auto& batch : order) seen.insert(seen.end(), batch.begin(), batch.end());
  std::sort(seen.begin(), seen.end());
  std::vector<int64_t> all(2001);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(seen, all);

  // The longest document comes first, and batch lengths are shuffled, not globally sorted.
  auto length = [&](int64_t d) { return docs.offsets[d + 1] - docs.offsets[d]; };
  int64_t longest = 0;
  for (int64_t d = 0; d < 2001; ++d) longest = std::max(longest, length(d));
  EXPECT_EQ(a.Batch(0).tokens.size(0), longest);
  int64_t rises = 0;
  for (size_t i = 1; i < order.size(); ++i) rises += length(order[i][0]) > length(order[i - 1][0]);
  EXPECT_GT(rises, 50);
}

TEST(ClasBatcherTest, UnshuffledIsSortedByLengthDescending) {
  TokenizedCorpus docs = RandomDocs(101);
  ClasBatcher batcher(&docs, nullptr, 8, 5, /*shuffle=*/false, false, 1);
  batcher.StartEpoch(3);  // no effect without shuffling
  auto length = [&](int64_t d) { return docs.offsets[d + 1] - docs.offsets[d]; };
  std::vector<int64_t> flat;
  for (const auto& batch : Order(batcher)) flat.insert(flat.end(), batch.begin(), batch.end());
  ASSERT_EQ(flat.size(), 101u);
  EXPECT_EQ(batcher.num_batches(), 13);  // the last batch holds 5
  for (size_t i = 1; i < flat.size(); ++i) {
    ASSERT_TRUE(length(flat[i]) < length(flat[i - 1]) ||
                (length(flat[i]) == length(flat[i - 1]) && flat[i] > flat[i - 1]))
        << "position " << i;
  }
}

TEST(ClasBatcherTest, EmptyDocumentIsRejected) {
  TokenizedCorpus docs = MakeDocs({{2, 10}, {}});
  EXPECT_THROW(ClasBatcher(&docs, nullptr, 2, 3, false, false, 0), c10::Error);
}

}  // namespace
}  // namespace ulmfit
