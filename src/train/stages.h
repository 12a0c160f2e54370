// The pipeline's stages as the CLI runs them. Each stage reads the typed Config, writes its
// outputs under run.output_dir, and skips itself when its outputs already exist.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "text/tokenizer.h"
#include "train/lm_trainer.h"
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
// The run directory whose fine-tuned LM the classifier starts from: classifier.language_model,
// or this run's own.
std::string LanguageModelRun(const Config& config);

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

// True (and says so on stderr) when `output`, a stage's final file, already exists and was made
// with the same settings: stages are skipped once done, so one command continues a pipeline.
// A stage is stale when the settings it (or a stage before it) depends on have changed since
// (see StageSettings): then it says which key changed, deletes `stage_dirs` and returns false,
// so the stage and the ones after it run again.
bool StageAlreadyDone(const Config& config, const std::string& stage, const std::string& output,
                      const std::vector<std::string>& stage_dirs);
// Records the settings a finished stage was made with, next to its `output`.
absl::Status MarkStageDone(const Config& config, const std::string& stage,
                           const std::string& output);
// The resolved settings that `stage` ("pretrain", "finetune", "classify") depends on, as YAML:
// its own section and those of the stages before it, without the keys that only say where or
// how fast it runs (output_dir, device, threads, cache_dir, logging, checkpoint interval).
std::string StageSettings(const Config& config, const std::string& stage);

// The token-id cache shared by all runs: text.cache_dir, else $ULMFIT_CACHE_DIR, else
// $XDG_CACHE_HOME/ulmfit, else ~/.cache/ulmfit.
std::string DefaultCacheDir(const TextConfig& text);

}  // namespace ulmfit
