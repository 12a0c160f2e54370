// Contiguous language-model batches (AWD-LSTM / fastai LMDataLoader): each epoch the documents
// are shuffled (seeded), concatenated into one token stream, and cut into `batch_size` parallel
// rows; batch i is the window [start_i, start_i + seq_len_i) of every row, targets shifted by one.
// Everything about an epoch is a pure function of (seed, epoch), so a resumed run can jump
// straight to batch i and see exactly the batches an uninterrupted run would have seen.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace ulmfit {

struct LmBatcherOptions {
  int64_t batch_size = 64;
  int64_t bptt = 70;
  bool variable_bptt = false;  // AWD-LSTM: N(bptt, 5), bptt/2 with probability 0.05, min 5
  bool backwards = false;      // reverse the token stream (backward LM)
  bool shuffle = true;         // shuffle document order each epoch
  uint64_t seed = 0;
  // Data-parallel runs: batch_size is the whole job's batch, and this process keeps rows
  // [shard_rank * batch_size / shard_count, (shard_rank + 1) * batch_size / shard_count) of
  // it (batch_size must divide evenly). Every process builds the same stream and windows.
  int shard_rank = 0;
  int shard_count = 1;
};

struct LmBatch {
  torch::Tensor input;   // (seq_len, batch) int64
  torch::Tensor target;  // (seq_len, batch) int64
  int64_t seq_len = 0;
};

class LmBatcher {
 public:
  // `ids`: all documents' token ids concatenated; `offsets`: num_docs + 1 document boundaries.
  // Both must outlive the batcher.
  LmBatcher(const std::vector<int32_t>* ids, const std::vector<int64_t>* offsets,
            LmBatcherOptions options);

  // Builds epoch `epoch`'s stream and window list.
  void StartEpoch(int64_t epoch);

  int64_t num_batches() const { return static_cast<int64_t>(windows_.size()); }
  // Rows of this process's batches (batch_size / shard_count).
  int64_t rows() const { return options_.batch_size / options_.shard_count; }
  // Tokens per row of the stream (the LM's targets per row per epoch).
  int64_t row_length() const { return row_length_; }
  const LmBatcherOptions& options() const { return options_; }
  // Tokens in all documents together.
  int64_t num_tokens() const { return static_cast<int64_t>(ids_->size()); }
  LmBatch Batch(int64_t index) const;

  // Number of batches an epoch will have, without building it (exact for fixed bptt,
  // an estimate for variable bptt; used for schedules and ETA).
  int64_t EstimatedBatchesPerEpoch() const;

 private:
  const std::vector<int32_t>* ids_;
  const std::vector<int64_t>* offsets_;
  LmBatcherOptions options_;
  torch::Tensor stream_;  // (batch, row_length + 1) int64
  int64_t row_length_ = 0;
  std::vector<std::pair<int64_t, int64_t>> windows_;  // (start, seq_len)
};

}  // namespace ulmfit
