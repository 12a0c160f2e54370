#include "model/linear_cross_entropy.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>

#include "model/cpu_bf16.h"
#include "model/cpu_kernels.h"

namespace ulmfit {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class LinearCrossEntropyFunction
    : public torch::autograd::Function<LinearCrossEntropyFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, const Tensor& target, int64_t block_rows) {
    const int64_t rows = x.size(0), vocab = weight.size(0);
    const bool has_bias = bias.numel() > 0;
    // Inside forward grad mode is off, but the inputs still say whether they need gradients.
    const bool want_dx = x.requires_grad(), want_dw = weight.requires_grad(),
               want_db = has_bias && bias.requires_grad();
    const bool want_grads = want_dx || want_dw || want_db;
    const Tensor xc = x.contiguous(), wc = weight.contiguous(), bc = bias.contiguous();
    const Tensor tc = target.contiguous();
    Tensor dx = want_dx ? torch::empty_like(xc) : Tensor();
    Tensor dw = want_dw ? torch::empty_like(wc) : Tensor();
    // One bias-gradient row per thread: the row kernel adds into its thread's row, unlocked.
    const int threads = at::get_num_threads();
    Tensor db_parts = want_db ? torch::zeros({threads, vocab}, x.options()) : Tensor();
    Tensor row_loss = torch::empty({rows}, x.options());
    const int64_t block = std::max<int64_t>(1, std::min(block_rows, rows));
    Tensor buffer = torch::empty({block, vocab}, x.options());
    // run.cpu_bf16: the products in bfloat16 (model/cpu_bf16.h), the weight converted once.
    const bool bf16 = CpuBf16Enabled();
    const Tensor wp = bf16 ? wc.to(torch::kBFloat16) : wc;
    const Tensor weight_t = wp.t();
    const float grad_scale = want_grads ? 1.0f / static_cast<float>(rows) : 0.0f;
    for (int64_t start = 0; start < rows; start += block) {
      const int64_t n = std::min(block, rows - start);
      const Tensor xb = xc.narrow(0, start, n);
      Tensor z = buffer.narrow(0, 0, n);
      {
        RECORD_FUNCTION("ulmfit::decoder_logits", std::vector<c10::IValue>());
        if (bf16) {
          z.copy_(MmBf16(xb, weight_t));
        } else {
          torch::mm_out(z, xb, weight_t);
        }
      }
      float* zp = z.data_ptr<float>();
      const float* bp = has_bias ? bc.data_ptr<float>() : nullptr;
      const int64_t* tp = tc.data_ptr<int64_t>() + start;
      float* lp = row_loss.data_ptr<float>() + start;
      float* dbp = want_db ? db_parts.data_ptr<float>() : nullptr;
      {
        RECORD_FUNCTION("ulmfit::softmax_cross_entropy_rows", std::vector<c10::IValue>());
        at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
          // The kernel indexes rows from the block's start: shift the per-row arrays to match.
          cpu_kernels::SoftmaxCrossEntropyRows(
              zp, begin, end, vocab, bp, tp, grad_scale, lp,
              dbp ? dbp + at::get_thread_num() * vocab : nullptr);
        });
      }
      if (!want_grads) continue;
      RECORD_FUNCTION("ulmfit::decoder_grad_products", std::vector<c10::IValue>());
      if (want_dx) {
        Tensor dxb = dx.narrow(0, start, n);
        if (bf16) {
          dxb.copy_(MmBf16(z, wp));
        } else {
          torch::mm_out(dxb, z, wc);
        }
      }
      if (want_dw) {
        if (bf16) {
          const Tensor part = MmBf16(z.t(), xb);
          start == 0 ? dw.copy_(part) : dw.add_(part);
        } else if (start == 0) {
          torch::mm_out(dw, z.t(), xb);
        } else {
          dw.addmm_(z.t(), xb);
        }
      }
    }
    Tensor db = want_db ? db_parts.sum(0) : Tensor();
    ctx->save_for_backward({dx, dw, db});
    return row_loss.to(torch::kDouble).mean().to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_output) {
    variable_list grads = ctx->get_saved_variables();  // dx, dW, db of the mean loss
    const Tensor& scale = grad_output[0];
    // The usual upstream gradient is exactly 1 (the loss itself, or a sum with it): no pass then.
    const bool unit = scale.numel() == 1 && scale.item<double>() == 1.0;
    for (Tensor& g : grads) {
      if (g.defined() && !unit) g = g * scale;
    }
    return {grads[0], grads[1], grads[2], Tensor(), Tensor()};
  }
};

}  // namespace

Tensor LinearCrossEntropy(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& target, int64_t block_rows) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
                  weight.scalar_type() == torch::kFloat &&
                  (!bias.defined() || bias.scalar_type() == torch::kFloat),
              "LinearCrossEntropy: float32 CPU tensors only (use linear + cross_entropy)");
  // The row kernel indexes the logits by target without checks of its own.
  TORCH_CHECK(x.dim() == 2 && target.dim() == 1 && target.size(0) == x.size(0) &&
                  target.scalar_type() == torch::kLong,
              "LinearCrossEntropy: x (rows, in) needs an int64 target of (rows)");
  if (target.numel() > 0) {
    const auto [low, high] = torch::aminmax(target);
    TORCH_CHECK(low.item<int64_t>() >= 0 && high.item<int64_t>() < weight.size(0),
                "LinearCrossEntropy: a target is outside the vocabulary of ", weight.size(0));
  }
  // autograd functions take defined tensors only: no bias is an empty one.
  return LinearCrossEntropyFunction::apply(x, weight,
                                           bias.defined() ? bias : torch::empty({0}, x.options()),
                                           target, block_rows);
}

}  // namespace ulmfit
