#include "data/lm_batcher.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "util/random.h"

namespace ulmfit {
namespace {


// Box-Muller on our own uniform draws: std::normal_distribution differs between standard
// libraries, and the batch layout is part of what a resumed run must reproduce.
double Normal(std::mt19937_64& rng, double mean, double stddev) {
  const double u1 = (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;
  const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

double Uniform(std::mt19937_64& rng) { return UnitUniform(rng()); }

}  // namespace

LmBatcher::LmBatcher(const std::vector<int32_t>* ids, const std::vector<int64_t>* offsets,
                     LmBatcherOptions options)
    : ids_(ids), offsets_(offsets), options_(options) {
  TORCH_CHECK(options_.batch_size >= 1 && options_.bptt >= 2, "invalid LM batch settings");
  TORCH_CHECK(options_.shard_count >= 1 && options_.shard_rank >= 0 &&
                  options_.shard_rank < options_.shard_count &&
                  options_.batch_size % options_.shard_count == 0,
              "LmBatcher: batch_size ", options_.batch_size, " does not split into ",
              options_.shard_count, " shards");
}

int64_t LmBatcher::EstimatedBatchesPerEpoch() const {
  const int64_t total = static_cast<int64_t>(ids_->size());
  const int64_t row = std::max<int64_t>((total - 1) / options_.batch_size, 0);
  if (row <= 0) return 0;
  // Variable lengths average slightly under bptt (5% of windows use bptt/2).
  const double mean_len = options_.variable_bptt ? options_.bptt * 0.975 : options_.bptt;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(row / mean_len)));
}

void LmBatcher::StartEpoch(int64_t epoch) {
  const int64_t num_docs = static_cast<int64_t>(offsets_->size()) - 1;
  std::vector<int64_t> order(num_docs);
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) {
    // Separate, reproducible streams for shuffling and for BPTT lengths of each epoch.
    auto rng = SeededRng(options_.seed, {static_cast<uint32_t>(epoch), 1});
    Shuffle(&order, rng);  // our own index draws, for the same reason as Normal()
  }

  const int64_t total = static_cast<int64_t>(ids_->size());
  const int64_t bs = options_.batch_size;
  row_length_ = std::max<int64_t>((total - 1) / bs, 0);
  const int64_t used = row_length_ * bs + 1;  // +1: the last row's final target
  stream_ = torch::empty({used}, torch::kInt64);
  auto* out = stream_.data_ptr<int64_t>();
  int64_t written = 0;
  for (int64_t d = 0; d < num_docs && written < used; ++d) {
    const int64_t begin = (*offsets_)[order[d]];
    const int64_t end = (*offsets_)[order[d] + 1];
    for (int64_t k = begin; k < end && written < used; ++k) out[written++] = (*ids_)[k];
  }
  if (options_.backwards) stream_ = stream_.flip({0});
  // Row r covers stream positions [r*row, (r+1)*row] (one overlap token for the target).
  std::vector<torch::Tensor> rows;
  rows.reserve(bs);
  for (int64_t r = 0; r < bs; ++r) rows.push_back(stream_.narrow(0, r * row_length_, row_length_ + 1));
  stream_ = torch::stack(rows);  // (bs, row + 1)
  if (options_.shard_count > 1) {
    const int64_t per_shard = bs / options_.shard_count;
    stream_ = stream_.narrow(0, options_.shard_rank * per_shard, per_shard).contiguous();
  }

  windows_.clear();
  auto rng = SeededRng(options_.seed, {static_cast<uint32_t>(epoch), 2});
  int64_t start = 0;
  while (start < row_length_) {
    int64_t len = options_.bptt;
    if (options_.variable_bptt) {
      const double base = Uniform(rng) < 0.95 ? options_.bptt : options_.bptt / 2.0;
      len = std::max<int64_t>(5, static_cast<int64_t>(Normal(rng, base, 5.0)));
    }
    len = std::min(len, row_length_ - start);
    windows_.emplace_back(start, len);
    start += len;
  }
}

LmBatch LmBatcher::Batch(int64_t index) const {
  const auto [start, len] = windows_.at(index);
  LmBatch batch;
  batch.input = stream_.narrow(1, start, len).t().contiguous();
  batch.target = stream_.narrow(1, start + 1, len).t().contiguous();
  batch.seq_len = len;
  return batch;
}

}  // namespace ulmfit
