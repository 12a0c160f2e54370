#include "model/cpu_kernels.h"

#include <cmath>
#include <cstring>
#include <limits>

// One source, three builds of each kernel (GCC/Clang function multi-versioning): the loader
// picks the widest the CPU runs. The math is written on 16-float vectors (GCC vector
// extensions); each build lowers them to one AVX-512 register, two AVX2 or four SSE ones.
#if defined(__x86_64__) && (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__))
#define ULMFIT_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ULMFIT_KERNEL
#endif
#define ULMFIT_INLINE inline __attribute__((always_inline))

namespace ulmfit::cpu_kernels {
namespace {

constexpr int kLanes = 16;
typedef float F16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));

// The helpers take and give vectors by reference: Clang refuses 64-byte vectors passed by value
// in the builds without AVX-512, even to functions that are always inlined.
ULMFIT_INLINE void Load(F16& v, const float* p) { std::memcpy(&v, p, sizeof(v)); }
ULMFIT_INLINE void Store(float* p, const F16& v) { std::memcpy(p, &v, sizeof(v)); }

// The first n (< 16) floats of p, the other lanes `fill`.
ULMFIT_INLINE void LoadPart(F16& v, const float* p, int64_t n, float fill) {
  float lanes[kLanes];
  for (int i = 0; i < kLanes; ++i) lanes[i] = fill;
  std::memcpy(lanes, p, n * sizeof(float));
  Load(v, lanes);
}

ULMFIT_INLINE void StorePart(float* p, const F16& v, int64_t n) {
  float lanes[kLanes];
  Store(lanes, v);
  std::memcpy(p, lanes, n * sizeof(float));
}

ULMFIT_INLINE float SumLanes(const F16& v) {
  float s = 0;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}

ULMFIT_INLINE float MaxLanes(const F16& v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// x = exp(x): x = n ln2 + r with |r| <= ln2/2, exp(r) by Cephes' expf polynomial, 2^n into the
// exponent bits. Inputs are clamped to [-86.5, 88]: below, the result (< 3e-38) stands for 0.
ULMFIT_INLINE void Exp(F16& x) {
  const F16 lo = F16{} - 86.5f, hi = F16{} + 88.0f;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const F16 shifter = F16{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const F16 n = (x * 1.44269504088896341f + shifter) - shifter;
  const F16 r = x - n * 0.693359375f - n * -2.12194440e-4f;  // ln2 in two parts
  F16 p = F16{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const I16 exponent = __builtin_convertvector(n, I16) << 23;
  x = reinterpret_cast<F16>(reinterpret_cast<I16>(p) + exponent);
}

ULMFIT_INLINE void Sigmoid(F16& x) {
  x = -x;
  Exp(x);
  x = 1.0f / (1.0f + x);
}

// x = tanh(x): Cephes' tanhf odd polynomial near 0 (where 1 - 2/(e^2x + 1) would lose
// digits), that identity elsewhere.
ULMFIT_INLINE void Tanh(F16& x) {
  const F16 z = x * x;
  F16 p = F16{} - 5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const F16 small = p * z * x + x;
  F16 large = x + x;
  Exp(large);
  large = 1.0f - 2.0f / (large + 1.0f);
  const F16 ax = x < 0 ? -x : x;
  x = ax < 0.625f ? small : large;
}

}  // namespace

ULMFIT_KERNEL
void SoftmaxCrossEntropyRows(float* z, int64_t begin, int64_t end, int64_t vocab,
                             const float* bias, const int64_t* target, float grad_scale,
                             float* loss, float* bias_grad) {
  const int64_t full = vocab - vocab % kLanes, rest = vocab - full;
  const float lowest = -std::numeric_limits<float>::infinity();
  for (int64_t row = begin; row < end; ++row) {
    float* zr = z + row * vocab;
    // Pass 1: the bias, and the row's max.
    F16 vmax = F16{} + lowest;
    for (int64_t j = 0; j < full; j += kLanes) {
      F16 v, b;
      Load(v, zr + j);
      if (bias) {
        Load(b, bias + j);
        v += b;
        Store(zr + j, v);
      }
      vmax = v > vmax ? v : vmax;
    }
    float m = MaxLanes(vmax);
    for (int64_t j = full; j < vocab; ++j) {
      if (bias) zr[j] += bias[j];
      m = zr[j] > m ? zr[j] : m;
    }
    const float picked = zr[target[row]] - m;
    // Pass 2: exp(z - max), kept for the gradient, and its sum.
    const bool keep = grad_scale > 0;
    F16 vsum = F16{};
    for (int64_t j = 0; j < full; j += kLanes) {
      F16 e;
      Load(e, zr + j);
      e -= m;
      Exp(e);
      if (keep) Store(zr + j, e);
      vsum += e;
    }
    if (rest) {
      F16 e;
      LoadPart(e, zr + full, rest, m);
      e -= m;
      Exp(e);
      for (int64_t i = rest; i < kLanes; ++i) e[i] = 0;
      if (keep) StorePart(zr + full, e, rest);
      vsum += e;
    }
    const float sum = SumLanes(vsum);
    loss[row] = std::log(sum) - picked;
    if (!keep) {
      for (int64_t j = 0; j < vocab; ++j) zr[j] -= m;
      continue;
    }
    // Pass 3: grad_scale * (softmax - onehot), summed into the bias gradient.
    const float scale = grad_scale / sum;
    for (int64_t j = 0; j < full; j += kLanes) {
      F16 g;
      Load(g, zr + j);
      g *= scale;
      Store(zr + j, g);
      if (bias_grad) {
        F16 acc;
        Load(acc, bias_grad + j);
        acc += g;
        Store(bias_grad + j, acc);
      }
    }
    for (int64_t j = full; j < vocab; ++j) {
      zr[j] *= scale;
      if (bias_grad) bias_grad[j] += zr[j];
    }
    zr[target[row]] -= grad_scale;
    if (bias_grad) bias_grad[target[row]] -= grad_scale;
  }
}

namespace {

// Loads and stores of 16 floats, or of the first n (< 16) of them at a row's end.
template <bool kPart>
ULMFIT_INLINE void LoadN(F16& v, const float* p, int64_t n) {
  if constexpr (kPart) {
    LoadPart(v, p, n, 0.0f);
  } else {
    Load(v, p);
  }
}

template <bool kPart>
ULMFIT_INLINE void StoreN(float* p, const F16& v, int64_t n) {
  if constexpr (kPart) {
    StorePart(p, v, n);
  } else {
    Store(p, v);
  }
}

template <bool kPart>
ULMFIT_INLINE void CellForward16(float* gi, float* gf, float* gg, float* go, const float* cp,
                                 float* c, float* tc, float* h, int64_t n) {
  F16 i, f, g, o, c_prev;
  LoadN<kPart>(i, gi, n);
  LoadN<kPart>(f, gf, n);
  LoadN<kPart>(g, gg, n);
  LoadN<kPart>(o, go, n);
  LoadN<kPart>(c_prev, cp, n);
  Sigmoid(i);
  Sigmoid(f);
  Tanh(g);
  Sigmoid(o);
  const F16 cv = f * c_prev + i * g;
  F16 t = cv;
  Tanh(t);
  StoreN<kPart>(gi, i, n);
  StoreN<kPart>(gf, f, n);
  StoreN<kPart>(gg, g, n);
  StoreN<kPart>(go, o, n);
  StoreN<kPart>(c, cv, n);
  StoreN<kPart>(tc, t, n);
  const F16 hv = o * t;
  StoreN<kPart>(h, hv, n);
}

}  // namespace

ULMFIT_KERNEL
void LstmCellForwardRows(float* gates, const float* c_prev, float* c, float* tanh_c, float* h,
                         int64_t begin, int64_t end, int64_t hidden) {
  for (int64_t b = begin; b < end; ++b) {
    float* gi = gates + b * 4 * hidden;
    const int64_t r = b * hidden;
    int64_t j = 0;
    for (; j + kLanes <= hidden; j += kLanes) {
      CellForward16<false>(gi + j, gi + hidden + j, gi + 2 * hidden + j, gi + 3 * hidden + j,
                           c_prev + r + j, c + r + j, tanh_c + r + j, h + r + j, kLanes);
    }
    if (j < hidden) {
      CellForward16<true>(gi + j, gi + hidden + j, gi + 2 * hidden + j, gi + 3 * hidden + j,
                          c_prev + r + j, c + r + j, tanh_c + r + j, h + r + j, hidden - j);
    }
  }
}

ULMFIT_KERNEL
void LstmCellBackwardRows(const float* gates, const float* c_prev, const float* tanh_c,
                          const float* grad_out, const float* dh, float* dc, float* dgates,
                          int64_t begin, int64_t end, int64_t hidden) {
  LstmCellBackwardRowsOf(gates, c_prev, tanh_c, grad_out, dh, dc, dgates, begin, end, hidden);
}

}  // namespace ulmfit::cpu_kernels
