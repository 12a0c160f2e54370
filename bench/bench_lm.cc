// LM training-speed benchmark (run by hand; not a test). For each model it times full training
// steps as pretraining runs them (train mode, every dropout on, CE + AR/TAR, backward, gradient
// clipping, AdamW step) on random tokens, and reports tokens/s, the model's matmul FLOP/s as a
// fraction of a float32 matmul peak measured in the same process, the time split between
// forward / backward / optimizer, and peak memory. The peak is a 2048^2 product timed for a
// quarter of a second after each timed step, the median taken: on a shared machine one timing
// at the start moved by 2x between runs, and the model's steps with it.
//
//   bench_lm [--device cpu|cuda] [--steps N] [--warmup N] [--model full|small|both]
//            [--threads N] [--vocab V] [--bs B] [--bptt T] [--layer 0|1] [--fused-loss 0|1]
//            [--cpu-bf16 0|1] [--fused-adamw 0|1] [--profile 0|1]
// --fused-loss 0 times the decoder and loss unfused (linear, then cross_entropy), as before.
// --cpu-bf16 1 times the steps as run.cpu_bf16 trains them (products in bfloat16, on a CPU
// with AVX512_BF16 or AMX); the FLOP/s are then those of bfloat16 products.
// --fused-adamw 0 times libtorch's AdamW step instead of the trainers' one-pass FusedAdamW.
// --profile 1 runs as many steps again under libtorch's profiler and prints, per step, where the
// time went: each libtorch op's own time, and ulmfit's named parts (ulmfit::...) whole.
//
// FLOPs counted: per token and layer 2*(in*4h + h*4h) for the input and recurrent projections,
// plus 2*emb*vocab for the decoder; training = 3x forward (forward, grad wrt input, wrt weight).
// Pointwise gate math, softmax, embedding and the optimizer are not counted.
#include <sys/resource.h>
#include <torch/torch.h>

#include <ATen/record_function.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define ULMFIT_HAVE_LEGACY_PROFILER 1
#endif


#include "bench_util.h"
#include "model/awd_lstm.h"
#include "model/cpu_bf16.h"
#include "model/lstm_layer.h"
#include "train/fused_adamw.h"
#include "train/training_loop.h"
#include "util/cpu_env.h"

namespace ulmfit {
namespace {
using bench::CudaPeakMb;
using bench::MaxRssMb;
using bench::ResetCudaPeak;
using bench::Sync;

struct Flags {
  std::string device = "cpu";
  int steps = 3;
  int warmup = 1;
  std::string model = "both";
  int threads = 0;
  int64_t vocab = 30000;
  int64_t bs = 64;
  int64_t bptt = 70;
  bool layer = true;  // also time one LSTM layer, ours vs libtorch's kernel
  bool fused_loss = true;  // the CPU decoder + loss as one LinearCrossEntropy, as training does
  bool cpu_bf16 = false;   // run.cpu_bf16
  bool fused_adamw = true;  // the trainers' one-pass AdamW (train/fused_adamw.h), or libtorch's
  bool profile = false;    // per-op time of extra steps under libtorch's profiler
};

struct ModelShape {
  const char* name;
  int emb, hidden, layers;
};

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// GFLOP/s of (m x k) @ (k x n) in float32, repeated until `seconds` have passed.
double MatmulGflops(int64_t m, int64_t k, int64_t n, const torch::Device& device,
                    double seconds = 0.5) {
  torch::NoGradGuard no_grad;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
  torch::Tensor a = torch::randn({m, k}, opts), b = torch::randn({k, n}, opts);
  torch::Tensor c = torch::mm(a, b);  // warm up (allocations, BLAS thread pool)
  Sync(device);
  int iters = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  while (elapsed < seconds || iters < 3) {
    torch::mm_out(c, a, b);
    ++iters;
    if (iters % 4 == 0 || !device.is_cuda()) {
      Sync(device);
      elapsed = Seconds(start, Clock::now());
    }
  }
  Sync(device);
  elapsed = Seconds(start, Clock::now());
  return 2.0 * m * k * n * iters / elapsed / 1e9;
}

struct Usage {
  double cpu_s;       // user + system CPU seconds of the whole process
  double minor_faults;
};

Usage ProcessUsage() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec * 1e-6; };
  return {sec(u.ru_utime) + sec(u.ru_stime), static_cast<double>(u.ru_minflt)};
}

// Runs `steps` training steps under libtorch's (legacy, CPU) profiler and prints the time per
// step by what spent it: a libtorch op's own time (its children's excluded), or the whole of a
// part ulmfit names with RECORD_FUNCTION("ulmfit::...") (the products and kernels inside it
// included), so the table adds up to the profiled steps.
template <typename Step>
void ProfileSteps(const ModelShape& shape, int steps, Step&& train_step) {
#ifdef ULMFIT_HAVE_LEGACY_PROFILER
  namespace prof = torch::autograd::profiler;
  std::map<std::string, std::pair<double, int64_t>> by_name;  // key -> (us, calls)
  double wall_us = 0;
  {
    prof::TLSLegacyProfilerGuard guard(
        torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU),
        [&](const prof::thread_event_lists& lists) {
          for (const auto& events : lists) {
            struct Open {
              const prof::LegacyEvent* push;
              double child_us;
              std::string key;
            };
            std::vector<Open> stack;
            for (const auto& e : events) {
              if (e.kind() == prof::EventKind::PushRange) {
                std::string name = e.name();
                // Inside a named ulmfit part, everything counts as that part.
                std::string key = !stack.empty() && stack.back().key.rfind("ulmfit::", 0) == 0
                                      ? stack.back().key
                                      : name;
                stack.push_back({&e, 0.0, key});
              } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
                const Open open = stack.back();
                stack.pop_back();
                const double total = open.push->cpuElapsedUs(e);
                auto& slot = by_name[open.key];
                const bool part = open.key.rfind("ulmfit::", 0) == 0;
                const bool own_part = part && open.key == open.push->name();
                if (!part) slot.first += total - open.child_us;  // self time
                if (own_part) slot.first += total;              // whole named part
                if (!part || own_part) ++slot.second;
                if (!stack.empty()) stack.back().child_us += total;
              }
            }
          }
        });
    const auto start = Clock::now();
    for (int i = 0; i < steps; ++i) train_step();
    wall_us = 1e6 * Seconds(start, Clock::now());
  }
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(by_name.begin(),
                                                                     by_name.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::printf("\n%s model, %d steps under the profiler: %.0f ms a step (the profiler adds its own)\n"
              "| op or ulmfit part | calls/step | ms/step | share |\n|---|---|---|---|\n",
              shape.name, steps, wall_us / 1e3 / steps);
  double listed = 0;
  for (size_t i = 0; i < rows.size() && i < 24; ++i) {
    const auto& [name, v] = rows[i];
    listed += v.first;
    std::printf("| %s | %.0f | %.1f | %.1f%% |\n", name.c_str(),
                static_cast<double>(v.second) / steps, v.first / 1e3 / steps,
                100.0 * v.first / wall_us);
  }
  std::printf("| (the rest: other ops, and time outside any op) | | %.1f | %.1f%% |\n",
              (wall_us - listed) / 1e3 / steps, 100.0 * (wall_us - listed) / wall_us);
  std::fflush(stdout);
#else
  (void)train_step;
  std::printf("\n%s: --profile needs libtorch's legacy profiler header, absent here\n",
              shape.name);
  (void)steps;
#endif
}

void BenchModel(const ModelShape& shape, const Flags& flags, const torch::Device& device) {
  ModelConfig mc;  // fastai LM dropouts, drop_mult 1
  mc.emb_size = shape.emb;
  mc.hidden_size = shape.hidden;
  mc.num_layers = shape.layers;
  torch::manual_seed(0);
  LanguageModel model(LanguageModelOptions::FromConfig(mc, flags.vocab, /*pad_id=*/1));
  model->to(device);
  model->train();
  auto adam = torch::optim::AdamWOptions(1e-3).betas({0.8, 0.99}).eps(1e-5).weight_decay(0.01);
  std::unique_ptr<torch::optim::AdamW> optimizer_owner =
      flags.fused_adamw ? std::make_unique<FusedAdamW>(model->parameters(), adam)
                        : std::make_unique<torch::optim::AdamW>(model->parameters(), adam);
  torch::optim::AdamW& optimizer = *optimizer_owner;

  const int64_t bs = flags.bs, bptt = flags.bptt, vocab = flags.vocab;
  double fwd_flops = 2.0 * shape.emb * vocab;  // decoder, per token
  for (int l = 0; l < shape.layers; ++l) {
    const double in = l == 0 ? shape.emb : shape.hidden;
    const double h = l == shape.layers - 1 ? shape.emb : shape.hidden;
    fwd_flops += 2.0 * (in * 4 * h + h * 4 * h);
  }
  const double step_flops = 3.0 * fwd_flops * bs * bptt;

  ResetCudaPeak(device);
  // One training step as pretraining runs it; returns the forward / backward / optimizer times.
  auto train_step = [&]() -> std::array<double, 3> {
    torch::Tensor data =
        torch::randint(vocab, {bptt + 1, bs}, torch::TensorOptions().dtype(torch::kLong))
            .to(device);
    torch::Tensor input = data.slice(0, 0, bptt), target = data.slice(0, 1, bptt + 1);
    Sync(device);
    const auto t0 = Clock::now();
    ClearGradients(optimizer);  // as the trainers do
    LmOutput out;
    torch::Tensor loss;
    {
      CpuBf16Scope bf16(flags.cpu_bf16);
      loss = model->ForwardLoss(input, target.reshape({-1}), &out, flags.fused_loss);
      loss = loss + ArTarLoss(out, 2.0, 1.0);  // after ForwardLoss has filled `out`
    }
    Sync(device);
    const auto t1 = Clock::now();
    loss.backward();
    Sync(device);
    const auto t2 = Clock::now();
    {
      RECORD_FUNCTION("ulmfit::clip_grad_norm", std::vector<c10::IValue>());
      torch::nn::utils::clip_grad_norm_(model->parameters(), 0.1);
    }
    {
      RECORD_FUNCTION("ulmfit::adamw_step", std::vector<c10::IValue>());
      optimizer.step();
    }
    Sync(device);
    const auto t3 = Clock::now();
    return {Seconds(t0, t1), Seconds(t1, t2), Seconds(t2, t3)};
  };
  double t_fwd = 0, t_bwd = 0, t_opt = 0, t_total = 0;
  double cpu_s = 0, faults = 0;
  std::vector<double> square;  // the 2048^2 product's GFLOP/s after each timed step
  for (int step = 0; step < flags.warmup + flags.steps; ++step) {
    const Usage before = ProcessUsage();
    const auto [fwd, bwd, opt] = train_step();
    if (step >= flags.warmup) {
      const Usage after = ProcessUsage();
      cpu_s += after.cpu_s - before.cpu_s;
      faults += after.minor_faults - before.minor_faults;
      t_fwd += fwd;
      t_bwd += bwd;
      t_opt += opt;
      t_total += fwd + bwd + opt;
      square.push_back(MatmulGflops(2048, 2048, 2048, device, 0.25));
    }
  }
  std::sort(square.begin(), square.end());
  const double peak_square = square.size() % 2 == 1
                                 ? square[square.size() / 2]
                                 : 0.5 * (square[square.size() / 2 - 1] + square[square.size() / 2]);
  const double n = flags.steps;
  // CPU seconds per step are less sensitive than wall time to other processes on the machine;
  // page faults per step show whether freed tensor memory is being reused.
  const double cpu_per_step = cpu_s / n;
  const double faults_per_step = faults / n;
  const double tokens_per_s = bs * bptt * n / t_total;
  const double model_gflops = step_flops * n / t_total / 1e9;
  // The recurrent product of the widest layer, (bs x h) @ (h x 4h): the LSTM's own shape.
  const double peak_recurrent = MatmulGflops(bs, shape.hidden, 4 * shape.hidden, device);
  std::printf(
      "| %s %d/%d/%d | %s | %d | %.0f | %.0f (%.0f/%.0f/%.0f) | %.1f | %.0fk | %.1f | %.1f | %.0f "
      "(%.0f-%.0f) | %.1f | %.0f%% | %.0f | %s |\n",
      shape.name, shape.emb, shape.hidden, shape.layers, device.str().c_str(),
      torch::get_num_threads(), tokens_per_s, 1e3 * t_total / n, 1e3 * t_fwd / n,
      1e3 * t_bwd / n, 1e3 * t_opt / n, cpu_per_step, faults_per_step / 1e3, step_flops / 1e9,
      model_gflops, peak_square, square.front(), square.back(), peak_recurrent,
      100.0 * model_gflops / peak_square, MaxRssMb(), CudaPeakMb(device).c_str());
  std::fflush(stdout);
  if (flags.profile) ProfileSteps(shape, flags.steps, train_step);
}

// One inner layer (hidden -> hidden) forward + backward at the benchmark's shape, our LstmLayer
// against libtorch's kernel (they differ on CPU only); best of 3 after a warm-up.
void BenchLayer(const ModelShape& shape, const Flags& flags, const torch::Device& device) {
  const int64_t h = shape.hidden;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
  torch::Tensor x = torch::randn({flags.bptt, flags.bs, h}, opts).requires_grad_(true);
  torch::Tensor h0 = torch::zeros({1, flags.bs, h}, opts);
  torch::Tensor w_ih = (torch::randn({4 * h, h}, opts) * 0.03).requires_grad_(true);
  torch::Tensor w_hh = (torch::randn({4 * h, h}, opts) * 0.03).requires_grad_(true);
  torch::Tensor b_ih = torch::zeros({4 * h}, opts).requires_grad_(true);
  torch::Tensor b_hh = torch::zeros({4 * h}, opts).requires_grad_(true);
  double best[2] = {1e30, 1e30};
  for (int rep = 0; rep < 4; ++rep) {
    for (int which = 0; which < 2; ++which) {
      Sync(device);
      const auto t0 = Clock::now();
      auto fn = which == 0 ? LstmLayer : LstmLayerLibtorch;
      auto out = std::get<0>(fn(x, h0, h0, w_ih, w_hh, b_ih, b_hh));
      out.sum().backward();
      Sync(device);
      if (rep > 0) best[which] = std::min(best[which], Seconds(t0, Clock::now()));
    }
  }
  const double flops = 3.0 * 2.0 * flags.bptt * flags.bs * (2.0 * h * 4 * h);
  std::printf("| %s layer %d->%d | %s | %.0f (%.1f GFLOP/s) | %.0f (%.1f GFLOP/s) | %.2fx |\n",
              shape.name, shape.hidden, shape.hidden, device.str().c_str(), 1e3 * best[0],
              flops / best[0] / 1e9, 1e3 * best[1], flops / best[1] / 1e9, best[1] / best[0]);
  std::fflush(stdout);
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--device" && (v = value())) {
      f->device = v;
    } else if (arg == "--steps" && (v = value())) {
      f->steps = std::atoi(v);
    } else if (arg == "--warmup" && (v = value())) {
      f->warmup = std::atoi(v);
    } else if (arg == "--model" && (v = value())) {
      f->model = v;
    } else if (arg == "--threads" && (v = value())) {
      f->threads = std::atoi(v);
    } else if (arg == "--vocab" && (v = value())) {
      f->vocab = std::atoll(v);
    } else if (arg == "--bs" && (v = value())) {
      f->bs = std::atoll(v);
    } else if (arg == "--bptt" && (v = value())) {
      f->bptt = std::atoll(v);
    } else if (arg == "--layer" && (v = value())) {
      f->layer = std::atoi(v) != 0;
    } else if (arg == "--fused-loss" && (v = value())) {
      f->fused_loss = std::atoi(v) != 0;
    } else if (arg == "--cpu-bf16" && (v = value())) {
      f->cpu_bf16 = std::atoi(v) != 0;
    } else if (arg == "--fused-adamw" && (v = value())) {
      f->fused_adamw = std::atoi(v) != 0;
    } else if (arg == "--profile" && (v = value())) {
      f->profile = std::atoi(v) != 0;
    } else {
      std::fprintf(stderr, "bench_lm: bad argument '%s'\n", arg.c_str());
      return false;
    }
  }
  return f->steps > 0 && f->warmup >= 0 &&
         (f->model == "full" || f->model == "small" || f->model == "both");
}

}  // namespace
}  // namespace ulmfit

int main(int argc, char** argv) {
  ulmfit::EnsureFastCpuEnvironment(argc, argv);
  ulmfit::Flags flags;
  if (!ulmfit::ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: bench_lm [--device cpu|cuda] [--steps N] [--warmup N] "
                 "[--model full|small|both] [--threads N] [--vocab V] [--bs B] [--bptt T] "
                 "[--layer 0|1] [--fused-loss 0|1] [--cpu-bf16 0|1] [--fused-adamw 0|1] "
                 "[--profile 0|1]\n");
    return 2;
  }
  ulmfit::ConfigureThreads(flags.threads);
  const torch::Device device(flags.device);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    std::fprintf(stderr, "bench_lm: CUDA is not available\n");
    return 1;
  }
  std::printf("%s\n", ulmfit::DescribeComputeEnvironment().c_str());
  std::printf("vocab %lld, batch %lld, bptt %lld, %d warmup + %d timed steps\n\n",
              static_cast<long long>(flags.vocab), static_cast<long long>(flags.bs),
              static_cast<long long>(flags.bptt), flags.warmup, flags.steps);
  std::printf("mm2048 at the start: %.0f GFLOP/s\n\n",
              ulmfit::MatmulGflops(2048, 2048, 2048, device));
  std::printf(
      "| model emb/hid/layers | device | threads | tokens/s | step ms (fwd/bwd/opt) | "
      "CPU s/step | page faults/step | GFLOP/step | model GFLOP/s | "
      "mm2048 GFLOP/s (median, range) | "
      "recurrent mm GFLOP/s | of mm2048 | max RSS MB | CUDA peak MB |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  const ulmfit::ModelShape full{"full", 400, 1152, 3}, small{"small", 128, 512, 2};
  if (flags.model != "small") ulmfit::BenchModel(full, flags, device);
  if (flags.model != "full") ulmfit::BenchModel(small, flags, device);
  if (flags.layer) {
    std::printf("\n| LSTM layer fwd+bwd | device | ours ms | libtorch ms | speedup |\n"
                "|---|---|---|---|---|\n");
    if (flags.model != "small") ulmfit::BenchLayer(full, flags, device);
    if (flags.model != "full") ulmfit::BenchLayer(small, flags, device);
  }
  return 0;
}
