// fastai interop at the level of run directories (docs/fastai.md): a fastai AWD-LSTM language
// model imported as a finished stage 1, and a run's language model or a classifier's encoder
// exported as a fastai v2 state dict with its vocabulary.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace ulmfit {

struct FastaiImportOptions {
  std::string weights;     // lstm_fwd.pth: a fastai LM (or encoder) state dict
  std::string vocab;       // itos_wt103.pkl, or a text file with one token per line
  std::string output_dir;  // the run directory to write
  bool backwards = false;  // a backward model (lstm_bwd.pth): model.backwards in the run
};

// Writes <output_dir>/pretrain/lm.pt, tokenizer/words.vocab and resolved.yaml (the model
// section as the file's shapes say, text.tokenizer: words, pretrain.data.train naming the
// weights it came from), and records stage 1 as done: `finetune.pretrained: <output_dir>` then
// uses it like any stage-1 output.
absl::Status ImportFastaiRun(const FastaiImportOptions& options);

struct FastaiExportOptions {
  std::string model;          // a run directory, or a classifier's model directory
  std::string output;         // FILE.pth
  std::string vocab_output;   // empty: FILE.pth with _itos.pkl for .pth
  bool encoder_only = false;  // fastai's save_encoder layout (a classifier has only this)
};

struct FastaiExportResult {
  std::string weights;  // what was written
  std::string vocab;
  std::string source;   // the ulmfit file the weights came from
  int64_t vocab_size = 0;
};

// The language model of a run (stage 2's if it finished, else stage 1's) or the encoder of a
// classifier, with fastai v2's key names, in the zip format that torch.load reads, plus its
// vocabulary as a pickled list of str (itos).
absl::StatusOr<FastaiExportResult> ExportFastaiRun(const FastaiExportOptions& options);

// The vocabulary file written beside `weights_path`: lm.pth -> lm_itos.pkl.
std::string DefaultVocabPath(const std::string& weights_path);

}  // namespace ulmfit
