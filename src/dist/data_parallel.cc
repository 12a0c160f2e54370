#include "dist/data_parallel.h"

#include <chrono>
#include <unordered_set>

#include "util/progress.h"

namespace ulmfit {
namespace {

// Sums over the ranks in the autograd graph (see CrossRankSum). The World travels as an
// integer because autograd keeps only IValues in its context.
struct CrossRankSumFunction : public torch::autograd::Function<CrossRankSumFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               int64_t world_address) {
    ctx->saved_data["world"] = world_address;
    return Reduce(reinterpret_cast<World*>(world_address), x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    World* world = reinterpret_cast<World*>(ctx->saved_data["world"].toInt());
    return {Reduce(world, grads[0]), torch::Tensor()};
  }
  static torch::Tensor Reduce(World* world, const torch::Tensor& x) {
    torch::Tensor sum = x.detach().to(world->device()).contiguous().clone();
    world->AllReduce(sum);
    return sum.to(x.device());
  }
};

}  // namespace

std::vector<torch::Tensor> UniqueParameters(const torch::nn::Module& module) {
  std::vector<torch::Tensor> unique;
  std::unordered_set<const void*> seen;
  for (const auto& p : module.parameters()) {
    if (seen.insert(p.unsafeGetTensorImpl()).second) unique.push_back(p);
  }
  return unique;
}

void BroadcastModule(World& world, torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> targets = UniqueParameters(module);
  for (const auto& b : module.buffers()) targets.push_back(b);
  std::vector<torch::Tensor> staged;
  for (const auto& t : targets) staged.push_back(t.detach().to(world.device()).contiguous().clone());
  world.Broadcast(staged, 0);
  for (size_t i = 0; i < targets.size(); ++i) targets[i].copy_(staged[i]);
}

GradientSync::GradientSync(World& world, const torch::nn::Module& module, int64_t bucket_bytes)
    : world_(world), params_(UniqueParameters(module)), bucket_bytes_(bucket_bytes) {}

void GradientSync::AverageGradients() {
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (auto& p : params_) {
    if (!p.requires_grad()) continue;
    // A parameter this rank's batch did not reach still takes part with zeros, so every rank
    // reduces the same buffers.
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  // Buckets: consecutive gradients of one dtype and device, up to bucket_bytes_ each.
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    const int64_t size = grads[i].numel() * static_cast<int64_t>(grads[i].element_size());
    const bool fits = !buckets.empty() && bytes + size <= bucket_bytes_ &&
                      grads[buckets.back().front()].scalar_type() == grads[i].scalar_type() &&
                      grads[buckets.back().front()].device() == grads[i].device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += size;
  }
  std::vector<torch::Tensor> flats;
  std::vector<std::function<void()>> pending;
  flats.reserve(buckets.size());
  for (const auto& bucket : buckets) {
    std::vector<torch::Tensor> views;
    for (size_t i : bucket) views.push_back(grads[i].reshape({-1}));
    flats.push_back(torch::cat(views).to(world_.device()));
    std::vector<torch::Tensor> one{flats.back()};
    pending.push_back(world_.AllReduceAsync(one));
  }
  for (size_t b = 0; b < buckets.size(); ++b) {
    pending[b]();
    // Averaged only now: dividing before the sum completes would race with it.
    flats[b].div_(world_.size());
    int64_t offset = 0;
    for (size_t i : buckets[b]) {
      const int64_t n = grads[i].numel();
      grads[i].copy_(flats[b].narrow(0, offset, n).view_as(grads[i]));
      offset += n;
    }
  }
  seconds_ += SecondsSince(start);
}

torch::Tensor CrossRankSum(World& world, const torch::Tensor& x) {
  return CrossRankSumFunction::apply(x, reinterpret_cast<int64_t>(&world));
}

}  // namespace ulmfit
