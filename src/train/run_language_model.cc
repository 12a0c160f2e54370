#include "train/run_language_model.h"

#include <filesystem>

#include <fmt/format.h>

#include "config/config_loader.h"
#include "data/lm_batcher.h"
#include "data/token_cache.h"
#include "model/weights.h"
#include "text/rules.h"
#include "text/tokenizer_file.h"
#include "train/stages.h"
#include "util/files.h"

namespace ulmfit {
namespace fs = std::filesystem;

absl::StatusOr<RunLanguageModel> LoadRunLanguageModel(const std::string& run_dir,
                                                      const torch::Device& device) {
  const fs::path dir(run_dir);
  std::string weights = (dir / "finetune" / "lm.pt").string();
  if (!fs::exists(weights)) weights = (dir / "pretrain" / "lm.pt").string();
  if (!fs::exists(weights)) {
    return absl::NotFoundError(fmt::format(
        "{}: no language model here (neither finetune/lm.pt nor pretrain/lm.pt); name a run "
        "directory whose stage 1 or 2 finished", run_dir));
  }
  const std::string resolved = (dir / "resolved.yaml").string();
  absl::StatusOr<Config> config = LoadConfig(resolved);
  if (!config.ok()) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: not a finished ulmfit run ({})", run_dir, std::string(config.status().message())));
  }
  config->run.output_dir = run_dir;
  ASSIGN_OR_RETURN(const ModelConfig model, PretrainedModelConfig(*config));
  ASSIGN_OR_RETURN(Tokenizer tokenizer,
                   Tokenizer::Load(TokenizerFileIn((dir / "tokenizer").string())));
  LanguageModel lm(LanguageModelOptions::FromConfig(model, tokenizer.vocab_size(), kPadId));
  RETURN_IF_ERROR(LoadModuleWeights(*lm, weights));
  lm->to(device);
  lm->eval();
  return RunLanguageModel{*std::move(config), model, std::move(tokenizer), lm, weights};
}

absl::StatusOr<LmEvaluation> EvaluateOnDocuments(RunLanguageModel& run,
                                                 const std::vector<std::string>& documents,
                                                 int64_t batch_size, int64_t bptt,
                                                 const torch::Device& device) {
  const RuleOptions rules{run.config.text.rules, run.config.text.lowercase};
  const std::string cache_dir = DefaultCacheDir(run.config.text);
  RETURN_IF_ERROR(EnsureWritableDir(cache_dir, "text.cache_dir"));
  ASSIGN_OR_RETURN(const TokenizedCorpus ids, TokenizeCorpus(documents, run.tokenizer, rules,
                                                             cache_dir, run.config.text.threads));
  LmBatcherOptions options;
  // Fewer streams than asked when the text is short, so that every stream has tokens.
  options.batch_size = std::max<int64_t>(
      1, std::min<int64_t>(batch_size, static_cast<int64_t>(ids.ids.size()) / 2));
  options.bptt = bptt;
  options.backwards = run.config.model.backwards;
  options.shuffle = false;
  LmBatcher batcher(&ids.ids, &ids.offsets, options);
  batcher.StartEpoch(0);
  if (batcher.num_batches() == 0) {
    return absl::InvalidArgumentError("the text has too few tokens to evaluate (fewer than 2)");
  }
  return EvaluateLanguageModel(run.lm, batcher, device);
}

}  // namespace ulmfit
