// Opt-in bfloat16 matrix products for CPU training (run.cpu_bf16).
//
// On CPUs with AVX512_BF16 or AMX, libtorch runs bfloat16 products through oneDNN at about
// twice the float32 speed (docs/results.md, "CPU kernels"). With the scope on, the LSTM layers
// and the decoder's fused loss (the model's products) round their operands to bfloat16 and
// take float32 results; everything else (activations, cell state, softmax, the optimizer and
// the master weights) stays float32, as CUDA's mixed_precision does it.
#pragma once

#include <torch/torch.h>

namespace ulmfit {

// Whether this CPU has bfloat16 dot-product instructions (AVX512_BF16 or AMX-BF16), which
// oneDNN needs to beat float32; without them bfloat16 products are slower.
bool CpuHasFastBf16();

// Whether run.cpu_bf16 (`asked`) applies on `device`: the CPU, with fast bfloat16 products.
// When asked for but not applicable, `why_not` says why (for the log); training then runs in
// float32.
bool UseCpuBf16(bool asked, const torch::Device& device, std::string* why_not);

// Turns bfloat16 products on for this thread for the scope's life (a forward pass); the custom
// autograd functions remember the choice for their backward.
class CpuBf16Scope final {
 public:
  explicit CpuBf16Scope(bool enabled);
  ~CpuBf16Scope();
  CpuBf16Scope(const CpuBf16Scope&) = delete;
  CpuBf16Scope& operator=(const CpuBf16Scope&) = delete;

 private:
  bool previous_;
};

bool CpuBf16Enabled();

// a @ b with a and b rounded to bfloat16 (float32 accumulation), the product in bfloat16:
// callers copy or add it into their float32 tensors, which converts it on the way.
torch::Tensor MmBf16(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace ulmfit
