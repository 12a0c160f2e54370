// The LM's decoder and its loss in one step, for the CPU: mean cross-entropy of
// softmax(x W^T + b) against `target`, without ever holding the (rows x vocab) logits.
//
// With a 30k vocabulary and 2,240 rows a batch, the logits are 269 MB. Unfused, a step makes
// four such tensors (logits, log-softmax and both gradients), and the elementwise passes over
// them cost as much as the decoder's products on a 2-core CPU (bench/bench_decoder_loss.cc).
// Here the rows go through in blocks: a block's logits, then one hand-written pass per row for
// the softmax, the loss and its gradient (softmax - onehot(target); model/cpu_kernels.h), then
// that gradient's share of dx and dW. So the gradients are computed in forward (when an input
// needs them) and backward only scales them by the upstream gradient.
#pragma once

#include <torch/torch.h>

namespace ulmfit {

// Rows per block. With the one-pass kernel, blocks of 256-2,240 rows ran within 15% of each
// other (bench_decoder_loss, docs/results.md "CPU kernels"), smaller ones slower (the dW
// product's inner dimension is the block); 512 rows of a 30k vocabulary are 61 MB, where one
// block of a bs-64 batch would be 538 MB.
inline constexpr int64_t kLinearCrossEntropyBlockRows = 512;

// x: (rows, in), weight: (vocab, in), bias: (vocab) or undefined, target: (rows) int64 ->
// scalar mean loss, differentiable in x, weight and bias.
torch::Tensor LinearCrossEntropy(const torch::Tensor& x, const torch::Tensor& weight,
                                 const torch::Tensor& bias, const torch::Tensor& target,
                                 int64_t block_rows = kLinearCrossEntropyBlockRows);

}  // namespace ulmfit
