// Classification batches for BPT3C (fastai SortedDL / SortishSampler + pad_input_chunk;
// fastai/text/models/core.py, SentenceEncoder). Documents of similar length share a batch, and each
// row is padded FIRST in whole `bptt` chunks so that its text starts on a chunk boundary, which the
// chunked encoder relies on. Everything about an epoch is a pure function of (seed, epoch).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "data/token_cache.h"

namespace ulmfit {

struct ClasBatch {
  // (seq_len, batch) int64, time-major; seq_len = the batch's longest document. Rows are sorted
  // by length, longest first. A row of length l gets ((L - l) / bptt) * bptt pads in front and
  // (L - l) % bptt pads at the end (fastai pad_input_chunk, pad_first=True), pad id kPadId.
  torch::Tensor tokens;
  torch::Tensor labels;          // (batch) int64; a 0-element tensor when there are no labels
  torch::Tensor lengths;         // (batch) int64 true token counts
  std::vector<int64_t> indices;  // the example index of each row (to restore input order)
  // Rows of the whole batch over all processes of a data-parallel run (= rows here otherwise).
  int64_t job_rows = 0;
};

class ClasBatcher {
 public:
  // `docs` (and `labels`, if not null: one label id per document) must outlive the batcher.
  // backwards: each document's tokens reversed (for the backward classifier).
  // shuffle = true (training): a sortish order per epoch, seeded by (seed, epoch): shuffle, move
  //   the longest document first, sort by length (descending) inside chunks of batch_size * 50,
  //   cut into batches and permute all batches but the first (holding the longest document, so
  //   peak memory shows up at once) and the last (the only one that may be short). A last batch
  //   of one row is merged into the one before it, as a single row breaks BatchNorm in training.
  // shuffle = false (validation, prediction): sorted by length, descending (ties by index).
  // Every example appears in exactly one batch. The constructor starts epoch 0.
  ClasBatcher(const TokenizedCorpus* docs, const std::vector<int64_t>* labels, int64_t batch_size,
              int64_t bptt, bool shuffle, bool backwards, uint64_t seed);

  // Builds the batch order of epoch `epoch` (a no-op change when shuffle is false).
  void StartEpoch(int64_t epoch);

  // Data-parallel training (the distributed sortish sampler): every process builds the same
  // batches, and Batch() returns this process's rows of each, rows shard_rank, shard_rank +
  // shard_count, ... of the length-sorted batch (so the shards' lengths are alike), padded to
  // the whole batch's length (so each row is encoded exactly as without sharding). A last batch
  // with fewer rows than processes is merged into the one before, so no shard is ever empty
  // and every process gets the same number of batches. Restarts epoch 0.
  void SetShard(int shard_rank, int shard_count);

  int64_t num_batches() const { return static_cast<int64_t>(batches_.size()); }
  int64_t num_examples() const { return static_cast<int64_t>(lengths_.size()); }
  ClasBatch Batch(int64_t index) const;

 private:
  const TokenizedCorpus* docs_;
  const std::vector<int64_t>* labels_;
  int64_t batch_size_;
  int64_t bptt_;
  bool shuffle_;
  bool backwards_;
  uint64_t seed_;
  int shard_rank_ = 0;
  int shard_count_ = 1;
  std::vector<int64_t> lengths_;               // tokens per document
  std::vector<std::vector<int64_t>> batches_;  // example indices of each batch
};

}  // namespace ulmfit
