#include "model/cpu_bf16.h"

#include <string>

#include "util/blas_choice.h"

namespace ulmfit {
namespace {

thread_local bool cpu_bf16_enabled = false;

torch::Tensor Bf16(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 ? t : t.to(torch::kBFloat16);
}

}  // namespace

bool CpuHasFastBf16() {
  static const bool fast = [] {
    const CpuIsa isa = CurrentCpuIsa();
    return isa.avx512_bf16 || isa.amx;
  }();
  return fast;
}

bool UseCpuBf16(bool asked, const torch::Device& device, std::string* why_not) {
  if (!asked) return false;
  if (!device.is_cpu()) {
    *why_not = "run.cpu_bf16 applies to the CPU only (on CUDA see the stages' mixed_precision)";
    return false;
  }
  if (!CpuHasFastBf16()) {
    *why_not =
        "run.cpu_bf16: this CPU has neither AVX512_BF16 nor AMX, so bfloat16 products would be "
        "slower than float32";
    return false;
  }
  return true;
}

CpuBf16Scope::CpuBf16Scope(bool enabled) : previous_(cpu_bf16_enabled) {
  cpu_bf16_enabled = enabled;
}

CpuBf16Scope::~CpuBf16Scope() { cpu_bf16_enabled = previous_; }

bool CpuBf16Enabled() { return cpu_bf16_enabled; }

torch::Tensor MmBf16(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::mm(Bf16(a), Bf16(b));
}

}  // namespace ulmfit
