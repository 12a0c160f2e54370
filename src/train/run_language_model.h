// The language model a run directory holds, for the tools that use one outside training
// (ulmfit lm-eval, export-fastai): stage 2's if it finished, else stage 1's.
#pragma once

#include <string>

#include <torch/torch.h>

#include "config/config.h"
#include "infer/language_model.h"
#include "model/awd_lstm.h"
#include "text/tokenizer.h"
#include "util/status.h"

namespace ulmfit {

struct RunLanguageModel {
  Config config;          // the run's resolved.yaml
  ModelConfig model;      // the architecture (that of the run stage 1 came from)
  Tokenizer tokenizer;
  LanguageModel lm;       // eval mode, on the requested device
  std::string weights;    // the file it was loaded from
};

// Loads <run_dir>/finetune/lm.pt (or pretrain/lm.pt), its tokenizer and settings. Errors name
// the run directory and say which stage to run first.
absl::StatusOr<RunLanguageModel> LoadRunLanguageModel(const std::string& run_dir,
                                                      const torch::Device& device);

// The model's loss, perplexity and accuracy on `documents` (rules and tokenizer of the run, one
// stream per batch row, `bptt` tokens a step), for `ulmfit lm-eval`.
absl::StatusOr<LmEvaluation> EvaluateOnDocuments(RunLanguageModel& run,
                                                 const std::vector<std::string>& documents,
                                                 int64_t batch_size, int64_t bptt,
                                                 const torch::Device& device);

}  // namespace ulmfit
