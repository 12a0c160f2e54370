#include "train/fused_adamw.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>

// Built for AVX-512, AVX2 and baseline x86-64, the widest the CPU runs picked at load (as
// model/cpu_kernels.cc). CMakeLists.txt builds this file without errno from sqrt (its argument,
// a running mean of squares, is never negative), which lets GCC vectorise it.
#if defined(__x86_64__) && (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__))
#define ULMFIT_ADAMW_KERNEL \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ULMFIT_ADAMW_KERNEL
#endif

namespace ulmfit {
namespace {

ULMFIT_ADAMW_KERNEL void UpdateRange(float* __restrict p, const float* __restrict g,
                                     float* __restrict m, float* __restrict v, int64_t begin,
                                     int64_t end, AdamWStep s) {
  for (int64_t i = begin; i < end; ++i) {
    const float grad = g[i];
    const float param = p[i] * s.decay;
    const float avg = m[i] * s.beta1 + s.one_minus_beta1 * grad;
    const float avg_sq = v[i] * s.beta2 + s.one_minus_beta2 * grad * grad;
    const float denom = std::sqrt(avg_sq) / s.sqrt_bias_correction2 + s.eps;
    m[i] = avg;
    v[i] = avg_sq;
    p[i] = param + s.neg_step_size * (avg / denom);
  }
}

// libtorch keys a parameter's state by its TensorImpl: as text in 1.x, as the pointer in 2.x.
template <typename Key>
Key StateKey(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << p.unsafeGetTensorImpl();
    return text.str();
  } else {
    return reinterpret_cast<Key>(p.unsafeGetTensorImpl());
  }
}

bool OnePass(const torch::Tensor& p, const torch::optim::AdamWOptions& options) {
  const torch::Tensor& g = p.grad();
  return !options.amsgrad() && p.device().is_cpu() && p.scalar_type() == torch::kFloat &&
         p.is_contiguous() && g.layout() == torch::kStrided && g.device().is_cpu() &&
         g.scalar_type() == torch::kFloat && g.is_contiguous() && g.sizes() == p.sizes();
}

}  // namespace

void AdamWUpdate(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                 const AdamWStep& s) {
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    UpdateRange(param, grad, exp_avg, exp_avg_sq, begin, end, s);
  });
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (const auto& p : group.params()) {
      if (p.grad().defined() && !OnePass(p, options)) return AdamW::step(std::move(closure));
    }
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const Key key = StateKey<Key>(p);
      auto found = state_.find(key);
      if (found == state_.end()) {  // as libtorch: zero moments, step 0
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        found = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*found->second);
      state.step(state.step() + 1);
      const auto [beta1, beta2] = options.betas();
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      AdamWStep s;
      s.decay = static_cast<float>(1 - options.lr() * options.weight_decay());
      s.beta1 = static_cast<float>(beta1);
      s.one_minus_beta1 = static_cast<float>(1 - beta1);
      s.beta2 = static_cast<float>(beta2);
      s.one_minus_beta2 = static_cast<float>(1 - beta2);
      s.sqrt_bias_correction2 = static_cast<float>(std::sqrt(bias_correction2));
      s.eps = static_cast<float>(options.eps());
      s.neg_step_size = static_cast<float>(-options.lr() / bias_correction1);
      torch::Tensor& exp_avg = state.exp_avg();
      torch::Tensor& exp_avg_sq = state.exp_avg_sq();
      TORCH_CHECK(exp_avg.is_contiguous() && exp_avg_sq.is_contiguous() &&
                      exp_avg.scalar_type() == torch::kFloat &&
                      exp_avg_sq.scalar_type() == torch::kFloat &&
                      exp_avg.numel() == p.numel() && exp_avg_sq.numel() == p.numel(),
                  "FusedAdamW: the optimizer state of a parameter does not match it (shape ",
                  p.sizes(), ")");
      AdamWUpdate(p.data_ptr<float>(), p.grad().data_ptr<float>(), exp_avg.data_ptr<float>(),
                  exp_avg_sq.data_ptr<float>(), p.numel(), s);
    }
  }
  return loss;
}

}  // namespace ulmfit
