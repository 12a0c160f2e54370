#include "data/clas_batcher.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "text/rules.h"
#include "util/random.h"

namespace ulmfit {
namespace {



}  // namespace

ClasBatcher::ClasBatcher(const TokenizedCorpus* docs, const std::vector<int64_t>* labels,
                         int64_t batch_size, int64_t bptt, bool shuffle, bool backwards,
                         uint64_t seed)
    : docs_(docs),
      labels_(labels),
      batch_size_(batch_size),
      bptt_(bptt),
      shuffle_(shuffle),
      backwards_(backwards),
      seed_(seed) {
  TORCH_CHECK(batch_size >= 1 && bptt >= 1, "ClasBatcher: batch_size and bptt must be >= 1, got ",
              batch_size, " and ", bptt);
  const int64_t n = docs->num_docs();
  TORCH_CHECK(labels == nullptr || static_cast<int64_t>(labels->size()) == n,
              "ClasBatcher: ", labels == nullptr ? 0 : labels->size(), " labels for ", n,
              " documents");
  lengths_.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    lengths_[i] = docs->offsets[i + 1] - docs->offsets[i];
    // The text pipeline starts every document with xxbos, so this is a bug upstream.
    TORCH_CHECK(lengths_[i] > 0, "ClasBatcher: document ", i,
                " has no tokens; every document needs at least xxbos");
  }
  StartEpoch(0);
}

void ClasBatcher::StartEpoch(int64_t epoch) {
  const int64_t n = num_examples();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto longer = [this](int64_t a, int64_t b) { return lengths_[a] > lengths_[b]; };
  batches_.clear();
  if (!shuffle_) {
    std::stable_sort(order.begin(), order.end(), longer);
    for (int64_t start = 0; start < n; start += batch_size_) {
      batches_.emplace_back(order.begin() + start,
                            order.begin() + std::min(n, start + batch_size_));
    }
    return;
  }

  // fastai SortedDL.shuffle_fn. (fastai swaps position argmax(lengths) of the permutation to the
  // front, which only moves the longest document when that position holds it; we move it.)
  // Our own seeding and shuffle (util/random.h): a resumed run must see the batches an
  // uninterrupted one would have seen, with any standard library.
  std::mt19937_64 rng = SeededRng(seed_, {static_cast<uint32_t>(epoch), 3});
  Shuffle(&order, rng);
  if (n > 0) {
    auto longest = std::max_element(order.begin(), order.end(), [this](int64_t a, int64_t b) {
      return lengths_[a] < lengths_[b];
    });
    std::iter_swap(order.begin(), longest);
  }
  const int64_t chunk = batch_size_ * 50;
  for (int64_t start = 0; start < n; start += chunk) {
    std::stable_sort(order.begin() + start, order.begin() + std::min(n, start + chunk), longer);
  }
  for (int64_t start = 0; start < n; start += batch_size_) {
    batches_.emplace_back(order.begin() + start, order.begin() + std::min(n, start + batch_size_));
  }
  // One row breaks BatchNorm in training; fewer rows than processes would leave a shard empty.
  const size_t min_rows = static_cast<size_t>(std::max(2, shard_count_));
  if (batches_.size() >= 2 && batches_.back().size() < min_rows) {
    auto& before = batches_[batches_.size() - 2];
    before.insert(before.end(), batches_.back().begin(), batches_.back().end());
    batches_.pop_back();
  }
  if (batches_.size() > 3) {
    std::vector<std::vector<int64_t>> middle(std::make_move_iterator(batches_.begin() + 1),
                                             std::make_move_iterator(batches_.end() - 1));
    Shuffle(&middle, rng);
    std::move(middle.begin(), middle.end(), batches_.begin() + 1);
  }
}

void ClasBatcher::SetShard(int shard_rank, int shard_count) {
  TORCH_CHECK(shard_count >= 1 && shard_rank >= 0 && shard_rank < shard_count,
              "ClasBatcher: shard ", shard_rank, " of ", shard_count);
  shard_rank_ = shard_rank;
  shard_count_ = shard_count;
  StartEpoch(0);
}

ClasBatch ClasBatcher::Batch(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < num_batches(), "ClasBatcher: batch ", index, " of ",
              num_batches());
  ClasBatch batch;
  batch.indices = batches_[index];
  std::stable_sort(batch.indices.begin(), batch.indices.end(),
                   [this](int64_t a, int64_t b) { return lengths_[a] > lengths_[b]; });
  batch.job_rows = static_cast<int64_t>(batch.indices.size());
  const int64_t max_len = lengths_[batch.indices[0]];  // of the whole batch, every shard alike
  if (shard_count_ > 1) {
    std::vector<int64_t> mine;
    for (size_t r = shard_rank_; r < batch.indices.size(); r += shard_count_) {
      mine.push_back(batch.indices[r]);
    }
    TORCH_CHECK(!mine.empty(), "ClasBatcher: batch ", index, " has ", batch.job_rows,
                " rows, fewer than the ", shard_count_, " shards");
    batch.indices = std::move(mine);
  }
  const int64_t rows = static_cast<int64_t>(batch.indices.size());
  batch.tokens = torch::full({max_len, rows}, kPadId, torch::kInt64);
  batch.lengths = torch::empty({rows}, torch::kInt64);
  batch.labels = torch::empty({labels_ == nullptr ? 0 : rows}, torch::kInt64);
  int64_t* tokens = batch.tokens.data_ptr<int64_t>();
  int64_t* lengths = batch.lengths.data_ptr<int64_t>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t doc = batch.indices[r];
    const int64_t len = lengths_[doc];
    const int32_t* ids = docs_->ids.data() + docs_->offsets[doc];
    // Whole chunks of pads in front, the remainder after the text (fastai pad_input_chunk).
    const int64_t front = (max_len - len) / bptt_ * bptt_;
    for (int64_t t = 0; t < len; ++t) {
      tokens[(front + t) * rows + r] = ids[backwards_ ? len - 1 - t : t];
    }
    lengths[r] = len;
    if (labels_ != nullptr) labels[r] = (*labels_)[doc];
  }
  return batch;
}

}  // namespace ulmfit
