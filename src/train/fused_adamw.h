// AdamW whose update is one pass over each parameter on the CPU. libtorch's AdamW::step runs
// nine tensor ops per parameter (decay, two moment updates, sqrt, divide, add, addcdiv), each a
// sweep over memory with temporaries; on the full AWD-LSTM (32M parameters) that was 3-4% of a
// CPU training step (docs/results.md, "CPU kernels"). Same algorithm, options, state and
// checkpoint format as torch::optim::AdamW (it is one), so saved optimizers load either way;
// results agree with libtorch's to float rounding. Parameters it cannot take in one pass (not
// float32 CPU, not contiguous, sparse gradients, amsgrad) make the whole step libtorch's.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace ulmfit {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// One AdamW update of n floats in place (libtorch's order of operations). Exposed for tests.
struct AdamWStep {
  float decay;       // 1 - lr * weight_decay
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float sqrt_bias_correction2;
  float eps;
  float neg_step_size;  // -lr / bias_correction1
};
void AdamWUpdate(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                 const AdamWStep& s);

}  // namespace ulmfit
