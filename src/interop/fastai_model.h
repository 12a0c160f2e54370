// fastai's AWD-LSTM weight files <-> ulmfit's LanguageModel (model/awd_lstm.h).
//
// fastai keys (fastai/text/models/awdlstm.py; v1 fastai/text/models/awd_lstm.py): a language
// model is SequentialRNN(AWD_LSTM, LinearDecoder), hence the "0." and "1." prefixes:
//   0.encoder.weight [V, E]  and  0.encoder_dp.emb.weight (the same Embedding, reached twice)
//   0.rnns.{l}.weight_hh_l0_raw [4H, H]     WeightDropout's raw W_hh: the real weight
//   0.rnns.{l}.module.weight_ih_l0 [4H, in], .bias_ih_l0 [4H], .bias_hh_l0 [4H]   (nn.LSTM)
//   0.rnns.{l}.module.weight_hh_l0          v1 only: a dropped copy of the raw W_hh; never used
//   1.decoder.weight [V, E] (tied: the embedding), 1.decoder.bias [V]
// learn.save_encoder writes the "0." part without its prefix; a classifier holds it under
// "0.module.". The LSTM gate order is PyTorch's (i, f, g, o) with two biases, which is also
// ulmfit's WeightDropLstm's, so tensors map one to one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "interop/torch_file.h"
#include "model/awd_lstm.h"
#include "util/status.h"

namespace ulmfit {

struct ImportedLanguageModel {
  // emb_size, hidden_size, num_layers, tie_weights and out_bias as the file's shapes say; the
  // other fields keep their defaults.
  ModelConfig config;
  int64_t vocab_size = 0;
  // ulmfit parameter names (encoder.emb.weight, encoder.rnns.{l}.weight_ih, ...), float32.
  NamedTensors tensors;
  // False for an encoder alone (save_encoder, a classifier): `tensors` then holds encoder.*
  // only, and a LanguageModel built from `config` keeps its initial decoder bias.
  bool has_decoder = true;
  // Keys not imported: v1's dropped module.weight_hh_l0, a classifier's head, ...
  std::vector<std::string> unused_keys;
};

// Maps a fastai state dict (LM, encoder or classifier) onto ulmfit's names, checking every
// shape. Errors name the file and the key, e.g. "lstm_fwd.pth: no '0.rnns.2.weight_hh_l0_raw';
// not a fastai AWD-LSTM language model (found keys: ...)". With vocab_size >= 0 the embedding
// must have that many rows ("itos.pkl has 60000 tokens but the embedding has 60002 rows").
absl::StatusOr<ImportedLanguageModel> ImportFastaiLanguageModel(
    const NamedTensors& state, const std::string& weights_name, int64_t vocab_size = -1,
    const std::string& vocab_name = "the vocabulary");

// Copies the imported tensors into a model built from imported.config and vocab_size.
absl::Status LoadImportedLanguageModel(const ImportedLanguageModel& imported,
                                       LanguageModelImpl& model);

enum class FastaiLayout {
  kLanguageModel,  // learn.save of a language model: 0.encoder.weight ... 1.decoder.bias
  kEncoder,        // learn.save_encoder: encoder.weight, encoder_dp.emb.weight, rnns.0...
};

// fastai v2's key names and order (its load_pretrained matches keys by position), as CPU
// float32 tensors; tied weights are one tensor under several names.
NamedTensors ExportFastaiLanguageModel(const LanguageModelImpl& model, FastaiLayout layout);

}  // namespace ulmfit
