// Hand-written float32 kernels for the CPU training step's pointwise work: the decoder's
// softmax + cross-entropy gradient and the LSTM cell. Each is one pass over data that libtorch
// would walk with several ops (and as many thread wake-ups and trips to memory); bench_lm and
// bench_decoder_loss measure what that buys (docs/results.md, "CPU kernels").
//
// They work on plain row ranges so that the callers choose the threads (at::parallel_for). The
// exp behind sigmoid, tanh and softmax is Cephes' expf polynomial, within 2 ulp of std::exp;
// each kernel is compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time.
#pragma once

#include <cstdint>

namespace ulmfit::cpu_kernels {

// Rows [begin, end) of the (rows x vocab) logits `z` of the decoder: adds `bias` (may be null),
// writes each row's cross-entropy against `target` to loss[row] (natural log, not averaged), and
// when `grad_scale` > 0 turns the row into grad_scale * (softmax(row) - onehot(target)) in place
// and adds it to `bias_grad` (vocab floats; may be null). With grad_scale == 0 the row is left
// holding the biased logits minus their max.
void SoftmaxCrossEntropyRows(float* z, int64_t begin, int64_t end, int64_t vocab,
                             const float* bias, const int64_t* target, float grad_scale,
                             float* loss, float* bias_grad);

// One LSTM step, batch rows [begin, end). gates: (batch, 4h) pre-activations [i f g o], replaced
// by their activations; c_prev: (batch, h); writes c = f*c_prev + i*g, tanh_c = tanh(c) and
// h = o*tanh(c), each (batch, h). All contiguous.
void LstmCellForwardRows(float* gates, const float* c_prev, float* c, float* tanh_c, float* h,
                         int64_t begin, int64_t end, int64_t hidden);

// Backward through one step's pointwise math, batch rows [begin, end): from the activated gates,
// c_{t-1}, tanh(c_t), the output's gradient and dh (dL/dh_t from step t+1), writes the
// pre-activation gate gradients and replaces dc (dL/dc_t from step t+1) by dL/dc_{t-1}.
// Plain loops (products and sums only, which compilers vectorise themselves): float's build is
// LstmCellBackwardRows, any other type calls this directly. The arrays must not overlap.
template <typename T>
inline __attribute__((always_inline)) void LstmCellBackwardRowsOf(
    const T* gates, const T* c_prev, const T* tanh_c, const T* grad_out, const T* dh, T* dc,
    T* dgates, int64_t begin, int64_t end, int64_t hidden) {
  for (int64_t b = begin; b < end; ++b) {
    const T* gi = gates + b * 4 * hidden;
    const T* gf = gi + hidden;
    const T* gg = gi + 2 * hidden;
    const T* go = gi + 3 * hidden;
    T* di = dgates + b * 4 * hidden;
    T* df = di + hidden;
    T* dg = di + 2 * hidden;
    T* d_o = di + 3 * hidden;
    const int64_t r = b * hidden;
    // The arrays never overlap: say so, or the compiler keeps this loop scalar.
#if defined(__clang__)
#pragma clang loop vectorize(assume_safety)
#elif defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (int64_t j = 0; j < hidden; ++j) {
      const T i = gi[j], f = gf[j], g = gg[j], o = go[j], tc = tanh_c[r + j];
      const T dh_t = grad_out[r + j] + dh[r + j];
      const T dc_t = dc[r + j] + dh_t * o * (1 - tc * tc);
      di[j] = dc_t * g * i * (1 - i);
      df[j] = dc_t * c_prev[r + j] * f * (1 - f);
      dg[j] = dc_t * i * (1 - g * g);
      d_o[j] = dh_t * tc * o * (1 - o);
      dc[r + j] = dc_t * f;
    }
  }
}

// LstmCellBackwardRowsOf<float>, built for AVX-512, AVX2 and baseline x86-64.
void LstmCellBackwardRows(const float* gates, const float* c_prev, const float* tanh_c,
                          const float* grad_out, const float* dh, float* dc, float* dgates,
                          int64_t begin, int64_t end, int64_t hidden);

}  // namespace ulmfit::cpu_kernels
