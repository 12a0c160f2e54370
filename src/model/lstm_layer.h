// One LSTM layer over a whole sequence, time-major, with torch.nn.LSTM's gate order (i, f, g, o)
// and two biases. The AWD-LSTM passes its dropped W_hh in here.
//
// CUDA (and any dtype other than float/double): the fused `torch::lstm` kernel (cuDNN).
// CPU float/double: our own autograd function. libtorch's CPU LSTM records every time step as
// separate autograd ops, so backward computes W_hh's gradient as T rank-`batch` products and
// sums them with T full-matrix adds (on the full model, 36% of a training step went to those adds
// alone). Ours keeps the activated gates and cell states, runs the sequential part of backward
// with one fused pointwise pass per step, and gets W_ih / W_hh / bias gradients from single
// GEMMs over all T*batch rows, as cuDNN does.
#pragma once

#include <torch/torch.h>

#include <tuple>

namespace ulmfit {

// x: (T, B, in); h0, c0: (1, B, H); w_ih: (4H, in); w_hh: (4H, H); b_ih, b_hh: (4H)
// -> {output (T, B, H), h_T (1, B, H), c_T (1, B, H)}. Differentiable w.r.t. every input.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> LstmLayer(
    const torch::Tensor& x, const torch::Tensor& h0, const torch::Tensor& c0,
    const torch::Tensor& w_ih, const torch::Tensor& w_hh, const torch::Tensor& b_ih,
    const torch::Tensor& b_hh);

// The same through libtorch's own kernel on every device (the reference for tests and bench).
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> LstmLayerLibtorch(
    const torch::Tensor& x, const torch::Tensor& h0, const torch::Tensor& c0,
    const torch::Tensor& w_ih, const torch::Tensor& w_hh, const torch::Tensor& b_ih,
    const torch::Tensor& b_hh);

}  // namespace ulmfit
