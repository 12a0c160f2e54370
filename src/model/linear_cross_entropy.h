// The LM's decoder and its loss in one step, for the CPU: mean cross-entropy of
// softmax(x W^T + b) against `target`, without ever holding the (rows x vocab) logits.
//
// With a 30k vocabulary and 2,240 rows a batch, the logits are 269 MB. Unfused, a step makes
// four such tensors (logits, log-softmax and both gradients), and every pass over them goes to
// memory: the elementwise passes cost more than the decoder's products on a 2-core CPU
// (bench/bench_decoder_loss.cc). Here the rows go through in blocks small enough for the cache:
// a block's logits, its softmax, its gradient (softmax - onehot(target)) and that gradient's
// share of dx, dW and db are made one after the other while the block is still in cache. So the
// gradients are computed in forward (when an input needs them), and backward only scales them
// by the upstream gradient.
#pragma once

#include <torch/torch.h>

namespace ulmfit {

// Rows per block: 32 rows of a 30k vocabulary are 3.8 MB, within the L2/L3 caches of today's
// server cores, while still enough rows for the products to run near their best speed.
inline constexpr int64_t kLinearCrossEntropyBlockRows = 256;

// x: (rows, in), weight: (vocab, in), bias: (vocab) or undefined, target: (rows) int64 ->
// scalar mean loss, differentiable in x, weight and bias.
torch::Tensor LinearCrossEntropy(const torch::Tensor& x, const torch::Tensor& weight,
                                 const torch::Tensor& bias, const torch::Tensor& target,
                                 int64_t block_rows = kLinearCrossEntropyBlockRows);

}  // namespace ulmfit
