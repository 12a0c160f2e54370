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
void LstmCellBackwardRows(const float* gates, const float* c_prev, const float* tanh_c,
                          const float* grad_out, const float* dh, float* dc, float* dgates,
                          int64_t begin, int64_t end, int64_t hidden);

}  // namespace ulmfit::cpu_kernels
