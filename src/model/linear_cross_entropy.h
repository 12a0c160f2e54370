// The LM's decoder and its loss in one step, for the CPU: mean cross-entropy of
// softmax(x W^T + b) against `target`, without keeping the logits, their log-softmax and the
// gradients of both as separate (rows x vocab) tensors.
//
// With a 30k vocabulary and 2,240 rows a batch each of those is 269 MB; unfused, a step
// allocates four of them afresh, and on a CPU every fresh page is zeroed by the kernel (17% of
// the small model's CPU time in bench/profile_lm.sh). Here one buffer per thread is reused from
// step to step: the logits are turned into probabilities in place, and backward turns those
// into the logits' gradient in place (softmax - onehot(target), over the rows).
#pragma once

#include <torch/torch.h>

namespace ulmfit {

// x: (rows, in), weight: (vocab, in), bias: (vocab) or undefined, target: (rows) int64 ->
// scalar mean loss, differentiable in x, weight and bias. One graph at a time: the buffer is
// reused by the next call, so call backward (or drop the loss) before the next forward.
torch::Tensor LinearCrossEntropy(const torch::Tensor& x, const torch::Tensor& weight,
                                 const torch::Tensor& bias, const torch::Tensor& target);

}  // namespace ulmfit
