// Exact BatchNorm statistics for the classifier head, measured after training ("precise BN").
//
// Why: during training, the head's BatchNorm running statistics are an exponential average over
// the last ~20 batches, computed while the encoder's dropouts are on, and BPT3C's last batch
// holds the shortest documents. At test time the encoder runs without dropout, so the features
// the head normalizes have another mean and variance. On IMDb at 25,000 labels this leaned the
// decision threshold to one class, by a different amount on every seed (docs/results.md).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "data/clas_batcher.h"
#include "data/token_cache.h"
#include "model/classifier.h"

namespace ulmfit {

// Sets head.bn1's running mean and (unbiased) variance to those of the pooled features of every
// document in `batcher`, with the model in eval mode (no dropout), then head.bn2's to those of
// its input given the new bn1. Exact over the documents, so neither batch order nor batch
// composition matters. Needs at least two documents (a variance); with fewer it does nothing.
// The model's train/eval mode is restored; no random numbers are drawn.
void SetPreciseBatchNormStatistics(TextClassifier& model, ClasBatcher& batcher,
                                   const torch::Device& device);

// The documents to measure them on: a seeded sample of up to `max_docs` of the `num_docs`
// training documents (all of them when max_docs <= 0 or >= num_docs), in increasing order.
std::vector<int64_t> PreciseBatchNormSample(int64_t num_docs, int64_t max_docs, uint64_t seed);

// The documents of `corpus` at `indices`, in that order.
TokenizedCorpus SelectDocuments(const TokenizedCorpus& corpus, const std::vector<int64_t>& indices);

}  // namespace ulmfit
