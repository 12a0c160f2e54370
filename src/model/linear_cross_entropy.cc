#include "model/linear_cross_entropy.h"

namespace ulmfit {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The (rows, vocab) buffer, reused while the shape and dtype stay the same.
Tensor Scratch(int64_t rows, int64_t vocab, const torch::TensorOptions& options) {
  thread_local Tensor buffer;
  if (!buffer.defined() || buffer.size(0) != rows || buffer.size(1) != vocab ||
      buffer.dtype() != options.dtype() || buffer.device() != options.device()) {
    buffer = Tensor();  // free the old one first: the peak holds one buffer, not two
    buffer = torch::empty({rows, vocab}, options);
  }
  return buffer;
}

class LinearCrossEntropyFunction
    : public torch::autograd::Function<LinearCrossEntropyFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, const Tensor& target) {
    const int64_t rows = x.size(0);
    Tensor probs = Scratch(rows, weight.size(0), x.options());
    const bool has_bias = bias.numel() > 0;
    if (has_bias) {
      torch::addmm_out(probs, bias, x, weight.t());
    } else {
      torch::mm_out(probs, x, weight.t());
    }
    // log softmax_t = (z_t - m) - log sum exp(z - m), row by row, m the row's max.
    const Tensor max = std::get<0>(probs.max(1, /*keepdim=*/true));
    probs.sub_(max);
    const Tensor picked = probs.gather(1, target.unsqueeze(1));  // z_t - m
    probs.exp_();
    const Tensor sum = probs.sum(1, /*keepdim=*/true);
    probs.div_(sum);
    const Tensor loss = (sum.log() - picked).mean();
    ctx->save_for_backward({x, weight, target, probs});
    ctx->saved_data["has_bias"] = has_bias;
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_output) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &weight = saved[1], &target = saved[2];
    Tensor grad = saved[3];  // the probabilities, turned into dLoss/dlogits in place
    const int64_t rows = x.size(0);
    grad.scatter_add_(1, target.unsqueeze(1),
                      torch::full({rows, 1}, -1.0, grad.options()));  // p - onehot
    grad.mul_(grad_output[0] / static_cast<double>(rows));
    Tensor dx, dweight, dbias;
    if (ctx->needs_input_grad(0)) dx = grad.mm(weight);
    if (ctx->needs_input_grad(1)) dweight = grad.t().mm(x);
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) dbias = grad.sum(0);
    return {dx, dweight, dbias, Tensor()};
  }
};

}  // namespace

Tensor LinearCrossEntropy(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& target) {
  // autograd functions take defined tensors only: no bias is an empty one.
  return LinearCrossEntropyFunction::apply(x, weight,
                                           bias.defined() ? bias : torch::empty({0}, x.options()),
                                           target);
}

}  // namespace ulmfit
