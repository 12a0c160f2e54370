// The pipeline's stages as the CLI runs them. Each stage reads the typed Config, writes its
// outputs under run.output_dir, and skips itself when its outputs already exist.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "text/tokenizer.h"
#include "train/lm_trainer.h"
#include "train/stage_records.h"
#include "util/status.h"

namespace ulmfit {

// Stage 1: reads the general corpus, trains or loads the tokenizer (<output_dir>/tokenizer),
// pretrains the LM and writes <output_dir>/pretrain/lm.pt.
absl::StatusOr<StageResult> RunPretrain(const Config& config, bool resume);

// Stage 2: fine-tunes the pretrained LM (this run's stage 1, or finetune.pretrained) on all of
// the task's text and writes <output_dir>/finetune/lm.pt.
absl::StatusOr<StageResult> RunFinetune(const Config& config, bool resume);

// Stage 3: trains the classifier on the fine-tuned encoder and writes the self-contained model
// directory <output_dir>/model (weights, tokenizer, labels, resolved config).
absl::StatusOr<StageResult> RunClassify(const Config& config, bool resume);
// The same, with the fine-tuned LM and tokenizer taken from another run directory
// (<lm_run_dir>/finetune/lm.pt, <lm_run_dir>/tokenizer/spm.model): active learning retrains
// classifiers on growing labelled sets over one fine-tuned LM.
absl::StatusOr<StageResult> RunClassifyFrom(const Config& config, bool resume,
                                            const std::string& lm_run_dir);
// The fine-tuned language model stage 3 starts from, and the settings of the run that made it.
struct FineTunedModel {
  Config config;        // that run's config (this one, or classifier.language_model's)
  ModelConfig model;    // its architecture
  std::string weights;  // <run>/finetune/lm.pt
  std::string tokenizer;
};
// Finds <lm_run_dir>/finetune/lm.pt and its tokenizer; an error says to run stage 2 first.
absl::StatusOr<FineTunedModel> FindFineTunedModel(const Config& config,
                                                  const std::string& lm_run_dir);

// The run directory whose fine-tuned LM the classifier starts from: classifier.language_model,
// or this run's own.
std::string LanguageModelRun(const Config& config);

// Says how many pieces a trained tokenizer has when the text gave fewer than `asked`.
void LogTokenizerSize(const std::string& stage, const Tokenizer& tokenizer, int asked);

// An error when task.test has a label that task.train never has: checked before any stage
// trains, not found when stage 3 is done.
absl::Status CheckTestLabels(const Config& config);

// An error naming `where` (a run's resolved.yaml) and `key` (the setting that pointed at it)
// unless `other`, that run's config, reads text in the same direction as `config`.
absl::Status CheckSameDirection(const Config& other, const Config& config,
                                const std::string& where, const std::string& key);

// The architecture of the pretrained LM stages 2 and 3 build on: this config's model section,
// or that of the run named by finetune.pretrained.
absl::StatusOr<ModelConfig> PretrainedModelConfig(const Config& config);

// Learning-rate multipliers of the LM's layer groups [rnn0, ..., rnn{n-1}, embedding+decoder]
// for finetune.discriminative: kFactor (1/lr_factor^k below the top), kScripts (the paper
// scripts' 1/6, 1/3, 1, 1/2 for 3 layers) or kNone.
std::vector<double> LmGroupLrMultipliers(Discriminative discriminative, double lr_factor,
                                         int num_layers);

// Copies a pretrained LM into `target`, whose tokenizer may differ: rows of pieces both
// vocabularies share are copied, new pieces get the mean embedding row and mean decoder bias.
absl::Status CopyMatchedLanguageModel(const std::string& weights_path, const Tokenizer& from,
                                      const Tokenizer& to, const ModelConfig& model,
                                      LanguageModel& target);

}  // namespace ulmfit
