// Using a language model: its loss, perplexity and next-token accuracy on text, and loading the
// language model a run directory holds (ulmfit lm-eval).
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/config.h"
#include "data/lm_batcher.h"
#include "model/awd_lstm.h"
#include "text/tokenizer.h"
#include "util/status.h"

namespace ulmfit {

// Cross-entropy loss, accuracy and perplexity of the model on `batcher` (eval mode, no grad).
struct LmEvaluation {
  double loss = 0;
  double perplexity = 0;
  double accuracy = 0;
  int64_t tokens = 0;
};
LmEvaluation EvaluateLanguageModel(LanguageModel& model, LmBatcher& batcher,
                                   const torch::Device& device);

}  // namespace ulmfit
