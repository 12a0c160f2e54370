#include "train/fastai_runs.h"

#include <filesystem>

#include <fmt/format.h>

#include "config/config_loader.h"
#include "infer/classifier.h"
#include "interop/fastai_model.h"
#include "interop/torch_file.h"
#include "interop/vocab.h"
#include "model/weights.h"
#include "text/rules.h"
#include "text/tokenizer.h"
#include "text/tokenizer_file.h"
#include "train/run_language_model.h"
#include "train/stage_records.h"
#include "util/files.h"
#include "util/progress.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> Pieces(const Tokenizer& tokenizer) {
  std::vector<std::string> pieces;
  for (int id = 0; id < tokenizer.vocab_size(); ++id) pieces.push_back(tokenizer.IdToPiece(id));
  return pieces;
}

// A language model holding a trained classifier's encoder (its decoder stays as initialised:
// only the encoder is exported from a classifier).
absl::StatusOr<std::pair<LanguageModel, std::vector<std::string>>> ClassifierEncoder(
    const std::string& model_dir) {
  ASSIGN_OR_RETURN(Classifier classifier, Classifier::Load(model_dir, torch::kCPU));
  LanguageModel lm(LanguageModelOptions::FromConfig(
      classifier.config().model, classifier.tokenizer().vocab_size(), kPadId));
  torch::NoGradGuard no_grad;
  auto source = classifier.model()->encoder()->named_parameters();
  for (auto& item : lm->encoder()->named_parameters()) item.value().copy_(source[item.key()]);
  return std::make_pair(lm, Pieces(classifier.tokenizer()));
}

}  // namespace

absl::Status ImportFastaiRun(const FastaiImportOptions& options) {
  ASSIGN_OR_RETURN(const NamedTensors state, ReadStateDict(options.weights));
  ASSIGN_OR_RETURN(std::vector<std::string> itos, ReadVocab(options.vocab));
  ASSIGN_OR_RETURN(const ImportedLanguageModel imported,
                   ImportFastaiLanguageModel(state, options.weights,
                                             static_cast<int64_t>(itos.size()), options.vocab));
  const fs::path run_dir(options.output_dir);
  RETURN_IF_ERROR(EnsureWritableDir((run_dir / "pretrain").string(), "--output"));
  RETURN_IF_ERROR(EnsureWritableDir((run_dir / "tokenizer").string(), "--output"));
  const std::string vocab_path = (run_dir / "tokenizer" / kWordVocabularyFile).string();
  ASSIGN_OR_RETURN(const Tokenizer tokenizer,
                   Tokenizer::FromWordVocabulary(std::move(itos), options.vocab));
  RETURN_IF_ERROR(tokenizer.SaveWordVocabulary(vocab_path));

  LanguageModel lm(LanguageModelOptions::FromConfig(imported.config, imported.vocab_size, kPadId));
  RETURN_IF_ERROR(LoadImportedLanguageModel(imported, *lm));
  if (!imported.has_decoder) {
    LogInfo(fmt::format("import-fastai: {} holds an encoder only; the decoder is the tied "
                        "embedding with a zero bias until stage 2 trains it", options.weights));
  }
  const std::string weights = (run_dir / "pretrain" / "lm.pt").string();
  RETURN_IF_ERROR(SaveModuleWeights(*lm, weights));

  // The run as if its stage 1 had made this model: the architecture, the word tokenizer, and
  // the weights file it came from as stage 1's data.
  Config config;
  ApplyPreset("fastai", &config);
  config.run.output_dir = options.output_dir;
  config.model = imported.config;
  config.model.backwards = options.backwards;
  config.text.tokenizer = TokenizerKind::kWords;
  config.text.vocab_size = static_cast<int>(imported.vocab_size);
  config.pretrain.data.train = fs::absolute(options.weights).string();
  RETURN_IF_ERROR(ValidateConfig(config));
  RETURN_IF_ERROR(WriteFileAtomic((run_dir / "resolved.yaml").string(), ConfigToYaml(config)));
  RETURN_IF_ERROR(MarkStageDone(config, "pretrain", weights));
  LogInfo(fmt::format("import-fastai: {} ({} tokens, {}/{}/{} emb/hidden/layers{}) -> {}; use "
                      "it with finetune.pretrained: {}",
                      options.weights, imported.vocab_size, imported.config.emb_size,
                      imported.config.hidden_size, imported.config.num_layers,
                      options.backwards ? ", backwards" : "", options.output_dir,
                      options.output_dir));
  return absl::OkStatus();
}

std::string DefaultVocabPath(const std::string& weights_path) {
  fs::path path(weights_path);
  const std::string stem = path.extension() == ".pth" || path.extension() == ".pt"
                               ? path.stem().string()
                               : path.filename().string();
  return (path.parent_path() / (stem + "_itos.pkl")).string();
}

absl::StatusOr<FastaiExportResult> ExportFastaiRun(const FastaiExportOptions& options) {
  FastaiExportResult result;
  result.weights = options.output;
  result.vocab = options.vocab_output.empty() ? DefaultVocabPath(options.output)
                                              : options.vocab_output;
  LanguageModel lm{nullptr};
  std::vector<std::string> itos;
  const fs::path dir(options.model);
  const fs::path classifier_dir = fs::exists(dir / "model" / kClassifierWeightsFile)
                                      ? dir / "model"
                                      : dir;
  const bool has_lm = fs::exists(dir / "finetune" / "lm.pt") || fs::exists(dir / "pretrain" / "lm.pt");
  if (!has_lm && fs::exists(classifier_dir / kClassifierWeightsFile)) {
    if (!options.encoder_only) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: a classifier holds an encoder but no language model decoder; export it with "
          "--encoder (fastai's load_encoder reads that)", options.model));
    }
    ASSIGN_OR_RETURN(auto encoder, ClassifierEncoder(classifier_dir.string()));
    lm = encoder.first;
    itos = std::move(encoder.second);
    result.source = (classifier_dir / kClassifierWeightsFile).string();
  } else {
    ASSIGN_OR_RETURN(RunLanguageModel run, LoadRunLanguageModel(options.model, torch::kCPU));
    lm = run.lm;
    itos = Pieces(run.tokenizer);
    result.source = run.weights;
  }
  result.vocab_size = static_cast<int64_t>(itos.size());
  const NamedTensors tensors = ExportFastaiLanguageModel(
      *lm, options.encoder_only ? FastaiLayout::kEncoder : FastaiLayout::kLanguageModel);
  if (const fs::path parent = fs::path(options.output).parent_path(); !parent.empty()) {
    RETURN_IF_ERROR(EnsureWritableDir(parent.string(), "--output"));
  }
  RETURN_IF_ERROR(WriteStateDict(options.output, tensors));
  RETURN_IF_ERROR(WriteVocabPickle(result.vocab, itos));
  return result;
}

}  // namespace ulmfit
