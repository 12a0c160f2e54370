// The LM decoder + cross-entropy alone, forward and backward, on the CPU (run by hand; not a
// test): unfused (linear, then cross_entropy) against LinearCrossEntropy at several block
// sizes, with the three matrix products alone as the floor. Same inputs, same threads, rounds
// interleaved so that a noisy machine hits every variant alike; best round reported.
//
//   bench_decoder_loss [--rows 2240] [--in 128] [--vocab 30000] [--rounds 5]
//                      [--blocks 16,32,64,128,256,2240]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "model/linear_cross_entropy.h"
#include "util/cpu_env.h"

namespace ulmfit {
namespace {

using Clock = std::chrono::steady_clock;

struct Variant {
  std::string name;
  std::function<void()> run;
  double best_ms = 1e30;
};

int Main(int argc, char** argv) {
  int64_t rows = 2240, in = 128, vocab = 30000;
  int rounds = 5;
  std::vector<int64_t> blocks = {16, 32, 64, 128, 256, 2240};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--rows") rows = std::atoll(value);
    else if (flag == "--in") in = std::atoll(value);
    else if (flag == "--vocab") vocab = std::atoll(value);
    else if (flag == "--rounds") rounds = std::atoi(value);
    else if (flag == "--blocks") {
      blocks.clear();
      for (char* p = std::strtok(const_cast<char*>(value), ","); p; p = std::strtok(nullptr, ","))
        blocks.push_back(std::atoll(p));
    } else {
      std::fprintf(stderr, "bench_decoder_loss: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  ConfigureThreads(0);  // as training does: one per physical core
  std::printf("%s\n", DescribeComputeEnvironment().c_str());
  torch::manual_seed(1);
  const torch::Tensor x0 = torch::randn({rows, in});
  const torch::Tensor w0 = torch::randn({vocab, in}) * 0.1;
  const torch::Tensor b0 = torch::zeros({vocab});
  const torch::Tensor target = torch::randint(vocab, {rows}, torch::kLong);
  torch::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true),
                b = b0.clone().requires_grad_(true);
  auto step = [&](const std::function<torch::Tensor()>& loss) {
    x.mutable_grad() = torch::Tensor();
    w.mutable_grad() = torch::Tensor();
    b.mutable_grad() = torch::Tensor();
    loss().backward();
  };
  std::vector<Variant> variants;
  variants.push_back({"unfused (linear + cross_entropy)", [&] {
                        step([&] {
                          return torch::nn::functional::cross_entropy(torch::linear(x, w, b),
                                                                      target);
                        });
                      }});
  for (int64_t block : blocks) {
    variants.push_back({"LinearCrossEntropy, " + std::to_string(block) + "-row blocks", [&, block] {
                          step([&] { return LinearCrossEntropy(x, w, b, target, block); });
                        }});
  }
  torch::Tensor logits = torch::empty({rows, vocab});
  variants.push_back({"the 3 products alone (floor)", [&] {
                        torch::NoGradGuard no_grad;
                        torch::mm_out(logits, x0, w0.t());
                        const torch::Tensor dx = logits.mm(w0);
                        const torch::Tensor dw = logits.t().mm(x0);
                      }});
  for (auto& v : variants) v.run();  // warm-up: first-touch pages, thread pools
  for (int r = 0; r < rounds; ++r) {
    for (auto& v : variants) {
      const auto t0 = Clock::now();
      v.run();
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      v.best_ms = std::min(v.best_ms, ms);
    }
  }
  const double gflop = 3.0 * 2.0 * rows * in * vocab / 1e9;
  std::printf("rows %lld, in %lld, vocab %lld, %d rounds, %.1f GFLOP of products\n",
              static_cast<long long>(rows), static_cast<long long>(in),
              static_cast<long long>(vocab), rounds, gflop);
  std::printf("| variant | best ms | GFLOP/s of products |\n|---|---|---|\n");
  for (const auto& v : variants) {
    std::printf("| %s | %.1f | %.0f |\n", v.name.c_str(), v.best_ms, gflop / v.best_ms * 1e3);
  }
  std::printf("peak RSS %.0f MB (the unfused variant's logits and gradients included)\n",
              bench::MaxRssMb());
  return 0;
}

}  // namespace
}  // namespace ulmfit

int main(int argc, char** argv) {
  ulmfit::EnsureFastCpuEnvironment(argc, argv);
  return ulmfit::Main(argc, argv);
}
