#include "infer/language_model.h"

#include <cmath>

namespace ulmfit {

LmEvaluation EvaluateLanguageModel(LanguageModel& model, LmBatcher& batcher,
                                   const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  model->encoder()->ResetState();
  double loss_sum = 0;
  int64_t correct = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < batcher.num_batches(); ++i) {
    const LmBatch batch = batcher.Batch(i);
    const auto input = batch.input.to(device);
    const auto target = batch.target.to(device).reshape({-1});
    const LmOutput out = model->forward(input);
    const auto logits = out.logits.reshape({target.size(0), -1}).to(torch::kFloat);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, target,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(target).sum().item<int64_t>();
    tokens += target.size(0);
  }
  model->encoder()->ResetState();
  if (was_training) model->train();
  LmEvaluation eval;
  eval.tokens = tokens;
  if (tokens > 0) {
    eval.loss = loss_sum / tokens;
    eval.perplexity = std::exp(eval.loss);
    eval.accuracy = static_cast<double>(correct) / tokens;
  }
  return eval;
}

}  // namespace ulmfit
