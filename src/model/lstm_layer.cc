#include "model/lstm_layer.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/version.h>

#include <algorithm>
#include <optional>
#include <string>

#include "model/cpu_bf16.h"
#include "model/cpu_kernels.h"

namespace ulmfit {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#if TORCH_VERSION_MAJOR >= 2
// cuDNN wants all of a layer's weights in one flat buffer. The dropped W_hh is a fresh tensor each
// call, so cuDNN copies the four weights into a buffer itself (a few MB, microseconds) and warns
// on every call. fastai silences the same warning; this drops only that message for the duration
// of the call and passes every other warning on.
class CudnnFlatWeightWarningFilter : public c10::WarningHandler {
 public:
  CudnnFlatWeightWarningFilter() : next_(c10::WarningUtils::get_warning_handler()) {
    c10::WarningUtils::set_warning_handler(this);
  }
  ~CudnnFlatWeightWarningFilter() override { c10::WarningUtils::set_warning_handler(next_); }
  void process(const c10::Warning& warning) override {
    if (warning.msg().find("single contiguous chunk of memory") != std::string::npos) return;
    next_->process(warning);
  }

 private:
  c10::WarningHandler* next_;
};
#else
struct CudnnFlatWeightWarningFilter {};  // libtorch 1.x here is CPU-only: nothing to filter
#endif

// Rows per parallel task: about 32k elements, libtorch's own grain for pointwise ops.
int64_t RowGrain(int64_t row_elems) { return std::max<int64_t>(1, 32768 / row_elems); }

// c = f * c_prev + i * g for one step. gates: (B, 4H) activated [i f g o]; c_prev, c: (B, H).
void CellForward(const Tensor& gates, const Tensor& c_prev, Tensor& c) {
  const int64_t batch = c.size(0), h = c.size(1);
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "lstm_cell_forward", [&] {
    const scalar_t* gp = gates.data_ptr<scalar_t>();
    const scalar_t* cp = c_prev.data_ptr<scalar_t>();
    scalar_t* cn = c.data_ptr<scalar_t>();
    at::parallel_for(0, batch, RowGrain(h), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const scalar_t* gi = gp + b * 4 * h;
        const scalar_t* gf = gi + h;
        const scalar_t* gg = gi + 2 * h;
        const scalar_t* cpb = cp + b * h;
        scalar_t* cnb = cn + b * h;
        for (int64_t j = 0; j < h; ++j) cnb[j] = gf[j] * cpb[j] + gi[j] * gg[j];
      }
    });
  });
}

// float takes the build of the kernel made for this CPU (AVX-512, AVX2 or baseline).
template <typename T>
void CellBackwardRows(const T* gates, const T* c_prev, const T* tanh_c, const T* grad_out,
                      const T* dh, T* dc, T* dgates, int64_t begin, int64_t end, int64_t h) {
  cpu_kernels::LstmCellBackwardRowsOf(gates, c_prev, tanh_c, grad_out, dh, dc, dgates, begin,
                                      end, h);
}

void CellBackwardRows(const float* gates, const float* c_prev, const float* tanh_c,
                      const float* grad_out, const float* dh, float* dc, float* dgates,
                      int64_t begin, int64_t end, int64_t h) {
  cpu_kernels::LstmCellBackwardRows(gates, c_prev, tanh_c, grad_out, dh, dc, dgates, begin, end,
                                    h);
}

// Backward through one step's pointwise math. Reads the activated gates, c_{t-1}, tanh(c_t), the
// output gradient and dh (from step t+1); writes the pre-activation gate gradients and replaces
// dc (dL/dc_t from step t+1) by dL/dc_{t-1}. All (B, H) or (B, 4H), contiguous.
void CellBackward(const Tensor& gates, const Tensor& c_prev, const Tensor& tanh_c,
                  const Tensor& grad_out, const Tensor& dh, Tensor& dc, Tensor& dgates) {
  const int64_t batch = dc.size(0), h = dc.size(1);
  AT_DISPATCH_FLOATING_TYPES(dc.scalar_type(), "lstm_cell_backward", [&] {
    const scalar_t* gp = gates.data_ptr<scalar_t>();
    const scalar_t* cpp = c_prev.data_ptr<scalar_t>();
    const scalar_t* tcp = tanh_c.data_ptr<scalar_t>();
    const scalar_t* gop = grad_out.data_ptr<scalar_t>();
    const scalar_t* dhp = dh.data_ptr<scalar_t>();
    scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* dgp = dgates.data_ptr<scalar_t>();
    at::parallel_for(0, batch, RowGrain(4 * h), [&](int64_t begin, int64_t end) {
      CellBackwardRows(gp, cpp, tcp, gop, dhp, dcp, dgp, begin, end, h);
    });
  });
}

class LstmCpuFunction : public torch::autograd::Function<LstmCpuFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& h0,
                               const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                               const Tensor& b_ih, const Tensor& b_hh) {
    const int64_t steps = x.size(0), batch = x.size(1), in = x.size(2), h = w_hh.size(1);
    // run.cpu_bf16: the products in bfloat16 (model/cpu_bf16.h); backward does as forward did.
    const bool bf16 = CpuBf16Enabled() && x.scalar_type() == torch::kFloat;
    ctx->saved_data["bf16"] = bf16;
    // (T*B, 4H): every step's input projection in one GEMM, both biases folded in.
    const Tensor x2 = x.reshape({steps * batch, in});
    Tensor gates;
    {
      RECORD_FUNCTION("ulmfit::lstm_input_products", std::vector<c10::IValue>());
      gates = (bf16 ? MmBf16(x2, w_ih.t()).to(torch::kFloat).add_(b_ih + b_hh)
                    : torch::addmm(b_ih + b_hh, x2, w_ih.t()))
                  .view({steps, batch, 4 * h});
    }
    Tensor cells = torch::empty({steps, batch, h}, x.options());
    Tensor tanh_c = torch::empty_like(cells);
    Tensor out = torch::empty_like(cells);
    Tensor h_prev = h0[0].contiguous(), c_prev = c0[0].contiguous();
    const Tensor w_hh_t = bf16 ? w_hh.to(torch::kBFloat16).t() : w_hh.t();
    for (int64_t t = 0; t < steps; ++t) {
      Tensor g = gates[t];  // (B, 4H), contiguous
      {
        RECORD_FUNCTION("ulmfit::lstm_recurrent_products", std::vector<c10::IValue>());
        if (bf16) {
          g.add_(MmBf16(h_prev, w_hh_t));
        } else {
          g.addmm_(h_prev, w_hh_t);
        }
      }
      Tensor c = cells[t], tc = tanh_c[t], h_t = out[t];
      RECORD_FUNCTION("ulmfit::lstm_cell_forward", std::vector<c10::IValue>());
      if (x.scalar_type() == torch::kFloat) {
        // Activations, cell, tanh and output in one pass (model/cpu_kernels.h).
        float *gp = g.data_ptr<float>(), *cp = c.data_ptr<float>();
        float *tcp = tc.data_ptr<float>(), *hp = h_t.data_ptr<float>();
        const float* cpp = c_prev.data_ptr<float>();
        at::parallel_for(0, batch, RowGrain(4 * h), [&](int64_t begin, int64_t end) {
          cpu_kernels::LstmCellForwardRows(gp, cpp, cp, tcp, hp, begin, end, h);
        });
      } else {
        g.narrow(1, 0, 2 * h).sigmoid_();  // i, f
        g.narrow(1, 2 * h, h).tanh_();     // g
        g.narrow(1, 3 * h, h).sigmoid_();  // o
        CellForward(g, c_prev, c);
        torch::tanh_out(tc, c);
        torch::mul_out(h_t, g.narrow(1, 3 * h, h), tc);
      }
      h_prev = h_t;
      c_prev = c;
    }
    ctx->save_for_backward({x, h0, c0, w_ih, w_hh, gates, cells, tanh_c, out});
    // Clones: outputs of a custom function must not be views of one another.
    return {out, out[steps - 1].unsqueeze(0).clone(), cells[steps - 1].unsqueeze(0).clone()};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &h0 = saved[1], &c0 = saved[2], &w_ih = saved[3],
                 &w_hh = saved[4], &gates = saved[5], &cells = saved[6], &tanh_c = saved[7],
                 &out = saved[8];
    const int64_t steps = x.size(0), batch = x.size(1), in = x.size(2), h = w_hh.size(1);
    const Tensor grad_out = grads[0].contiguous();                // (T, B, H)
    Tensor dh = grads[1][0].contiguous().clone();                 // (B, H): dL/dh_t from t+1
    Tensor dc = grads[2][0].contiguous().clone();                 // (B, H): dL/dc_t from t+1
    Tensor dgates = torch::empty({steps, batch, 4 * h}, x.options());  // pre-activation grads
    const Tensor c0_b = c0[0].contiguous();
    const bool bf16 = ctx->saved_data["bf16"].toBool();
    auto mm = [bf16](const Tensor& a, const Tensor& b) {
      return bf16 ? MmBf16(a, b).to(torch::kFloat) : a.mm(b);
    };
    const Tensor w_hh_b = bf16 ? w_hh.to(torch::kBFloat16) : w_hh;
    for (int64_t t = steps - 1; t >= 0; --t) {
      Tensor dg = dgates[t];
      {
        RECORD_FUNCTION("ulmfit::lstm_cell_backward", std::vector<c10::IValue>());
        CellBackward(gates[t], t > 0 ? cells[t - 1] : c0_b, tanh_c[t], grad_out[t], dh, dc, dg);
      }
      // (B, 4H) @ (4H, H) -> dL/dh_{t-1}
      RECORD_FUNCTION("ulmfit::lstm_recurrent_products_backward", std::vector<c10::IValue>());
      if (bf16) {
        dh.copy_(MmBf16(dg, w_hh_b));
      } else {
        torch::mm_out(dh, dg, w_hh);
      }
    }
    // Weight and input gradients: single GEMMs over all T*B rows.
    RECORD_FUNCTION("ulmfit::lstm_weight_and_input_grads", std::vector<c10::IValue>());
    const Tensor dg2 = dgates.view({steps * batch, 4 * h});
    Tensor dx, dw_ih, dw_hh, db_ih, db_hh;
    if (ctx->needs_input_grad(0)) dx = mm(dg2, w_ih).view({steps, batch, in});
    if (ctx->needs_input_grad(3)) dw_ih = mm(dg2.t(), x.reshape({steps * batch, in}));
    if (ctx->needs_input_grad(4)) {
      // sum_t dgates_t^T h_{t-1}, with h_{-1} = h0
      dw_hh = mm(dgates[0].t(), h0[0]);
      if (steps > 1) {
        const int64_t rows = (steps - 1) * batch;
        dw_hh.add_(mm(dg2.narrow(0, batch, rows).t(),
                      out.view({steps * batch, h}).narrow(0, 0, rows)));
      }
    }
    if (ctx->needs_input_grad(5) || ctx->needs_input_grad(6)) {
      db_ih = dg2.sum(0);
      db_hh = db_ih.clone();  // separate tensors: each becomes its parameter's .grad
    }
    return {dx, dh.unsqueeze(0), dc.unsqueeze(0), dw_ih, dw_hh, db_ih, db_hh};
  }
};

}  // namespace

std::tuple<Tensor, Tensor, Tensor> LstmLayerLibtorch(const Tensor& x, const Tensor& h0,
                                                     const Tensor& c0, const Tensor& w_ih,
                                                     const Tensor& w_hh, const Tensor& b_ih,
                                                     const Tensor& b_hh) {
  std::optional<CudnnFlatWeightWarningFilter> filter;
  if (x.is_cuda()) filter.emplace();
  // `train` only decides whether cuDNN keeps what backward needs (inter-layer dropout is 0), so it
  // follows grad mode.
  return torch::lstm(x, {h0, c0}, {w_ih, w_hh, b_ih, b_hh}, /*has_biases=*/true,
                     /*num_layers=*/1, /*dropout=*/0.0,
                     /*train=*/torch::GradMode::is_enabled(), /*bidirectional=*/false,
                     /*batch_first=*/false);
}

std::tuple<Tensor, Tensor, Tensor> LstmLayer(const Tensor& x, const Tensor& h0, const Tensor& c0,
                                             const Tensor& w_ih, const Tensor& w_hh,
                                             const Tensor& b_ih, const Tensor& b_hh) {
  const auto dtype = x.scalar_type();
  if (x.device().is_cpu() && x.size(0) > 0 &&
      (dtype == torch::kFloat || dtype == torch::kDouble)) {
    variable_list outs = LstmCpuFunction::apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh);
    return {outs[0], outs[1], outs[2]};
  }
  return LstmLayerLibtorch(x, h0, c0, w_ih, w_hh, b_ih, b_hh);
}

}  // namespace ulmfit
