// AWD-LSTM (Merity et al. 2017) as fastai builds it (fastai/text/models/awdlstm.py): an embedding
// with whole-row dropout, variational ("locked") dropout on the embedding output and between
// layers, and n separate 1-layer LSTMs whose hidden-to-hidden matrix gets DropConnect. Each layer
// runs as one call over the whole sequence with the dropped W_hh passed in: cuDNN through
// `torch::lstm` on CUDA, our own sequence-level autograd function on CPU (model/lstm_layer.h).
//
// All tensors are time-major: tokens (seq_len, batch), activations (seq_len, batch, features).
//
// Parameter names are checkpoint keys, a file format; do not rename:
//   AwdLstm:        emb.weight, rnns.{l}.weight_ih, rnns.{l}.weight_hh_raw, rnns.{l}.bias_ih,
//                   rnns.{l}.bias_hh
//   LanguageModel:  encoder.<the above>, decoder.bias (out_bias), decoder.weight (untied only)
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "config/config.h"

namespace ulmfit {

struct AwdLstmOptions {
  int64_t vocab_size = 0;
  int64_t emb_size = 400;       // also the last layer's hidden size (tied decoder)
  int64_t hidden_size = 1152;   // inner layers
  int64_t num_layers = 3;
  // Dropout probabilities, already multiplied by drop_mult. 0 = off.
  double embed_p = 0;   // whole embedding rows
  double input_p = 0;   // variational, on the embedding output
  double weight_p = 0;  // DropConnect on each W_hh
  double hidden_p = 0;  // variational, between LSTM layers
  int64_t pad_id = 1;   // embedding row that gets no gradient from the lookup (fastai pad_token)

  static AwdLstmOptions FromConfig(const ModelConfig& m, int64_t vocab_size, int64_t pad_id);
};

// The last LSTM layer's output, (seq_len, batch, emb_size). The last layer gets no hidden_p
// dropout (fastai), so the encoder's `dropped` is the same tensor as `raw`; heads on top (the LM
// decoder, a classifier) apply their own dropout and report it in their own `dropped`.
struct EncoderOutput {
  torch::Tensor raw;
  torch::Tensor dropped;
};

// Variational dropout for time-major input: one mask of shape (1, batch, features), shared by
// every time step, scaled by 1/(1-p). Identity when !training or p == 0.
torch::Tensor LockedDropout(const torch::Tensor& x, double p, bool training);

// One 1-layer LSTM with DropConnect on W_hh (fastai WeightDropout around nn.LSTM).
class WeightDropLstmImpl : public torch::nn::Module {
 public:
  WeightDropLstmImpl(int64_t input_size, int64_t hidden_size, double weight_p);

  // input: (seq_len, batch, input_size); h0, c0: (1, batch, hidden_size)
  // -> {output (seq_len, batch, hidden_size), h_n (1, batch, hidden), c_n (1, batch, hidden)}
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& input,
                                                                  const torch::Tensor& h0,
                                                                  const torch::Tensor& c0);

  // Uniform(-1/sqrt(hidden), 1/sqrt(hidden)) on every parameter, as torch.nn.LSTM.
  void reset_parameters();

  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }

  torch::Tensor weight_ih, weight_hh_raw, bias_ih, bias_hh;

 private:
  int64_t input_size_;
  int64_t hidden_size_;
  double weight_p_;
};
TORCH_MODULE(WeightDropLstm);

class AwdLstmImpl : public torch::nn::Module {
 public:
  explicit AwdLstmImpl(const AwdLstmOptions& options);

  // tokens: (seq_len, batch) int64 -> EncoderOutput of (seq_len, batch, emb_size).
  // Starts from the carried hidden state (zeros after ResetState) and carries the new, detached
  // state to the next call (truncated BPTT). A different batch size slices or zero-pads it.
  EncoderOutput forward(const torch::Tensor& tokens);

  // The next forward starts from zeros, sized to its batch.
  void ResetState();
  // [h0, c0, h1, c1, ...], each (1, batch, hidden_l), detached; empty after ResetState.
  std::vector<torch::Tensor> GetState() const;
  // Inverse of GetState (an empty vector resets). Moves the tensors to the model's device.
  void SetState(const std::vector<torch::Tensor>& state);

  // Parameter groups for discriminative learning rates / freezing, classifier order (fastai
  // awd_lstm_clas_split): [emb.weight], [rnns.0.*], [rnns.1.*], ...
  std::vector<std::vector<torch::Tensor>> LayerGroups() const;

  const AwdLstmOptions& options() const { return options_; }
  // The embedding matrix (vocab, emb_size); the LM decoder ties to it.
  const torch::Tensor& embedding_weight() const { return emb_->weight; }
  const WeightDropLstm& rnn(int64_t layer) const { return layers_.at(layer); }

  // The first stage of forward: lookup with embedding dropout (whole rows, training only),
  // before input_p. tokens: (seq_len, batch) -> (seq_len, batch, emb_size).
  torch::Tensor Embed(const torch::Tensor& tokens);

 private:
  // Makes state_ match `batch` rows (zeros, slice or zero-pad), fastai _change_hidden.
  void PrepareState(int64_t batch, const torch::Tensor& like);

  AwdLstmOptions options_;
  torch::nn::Embedding emb_{nullptr};
  torch::nn::ModuleList rnns_{nullptr};
  std::vector<WeightDropLstm> layers_;  // typed handles to rnns_
  std::vector<torch::Tensor> state_;    // [h0, c0, h1, c1, ...] or empty
};
TORCH_MODULE(AwdLstm);

struct LanguageModelOptions {
  AwdLstmOptions encoder;
  double output_p = 0;     // variational dropout before the decoder, already times drop_mult
  bool tie_weights = true; // decoder weight = encoder embedding weight
  bool out_bias = true;

  static LanguageModelOptions FromConfig(const ModelConfig& m, int64_t vocab_size,
                                         int64_t pad_id);
};

struct LmOutput {
  torch::Tensor logits;   // (seq_len, batch, vocab)
  torch::Tensor raw;      // encoder's last-layer output (seq_len, batch, emb): TAR
  torch::Tensor dropped;  // the same after output_p dropout, the decoder's input: AR
};

// Linear emb -> vocab whose weight is either its own parameter ("weight") or, when tied, the
// encoder's embedding tensor, which is then deliberately not registered here, so
// parameters() lists it once.
class LinearDecoderImpl : public torch::nn::Module {
 public:
  LinearDecoderImpl(int64_t in_features, int64_t vocab_size, const torch::Tensor& tied_weight,
                    bool with_bias);
  // x: (..., in_features) -> (..., vocab_size)
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight, bias;  // bias undefined when disabled
};
TORCH_MODULE(LinearDecoder);

class LanguageModelImpl : public torch::nn::Module {
 public:
  explicit LanguageModelImpl(const LanguageModelOptions& options);

  // tokens: (seq_len, batch) int64 -> logits (seq_len, batch, vocab) plus AR/TAR inputs.
  LmOutput forward(const torch::Tensor& tokens);

  // The training loss's language-model part, the mean cross-entropy of `target` (seq_len *
  // batch next tokens), with the AR/TAR inputs in `out`. On a CPU in float32 with `fuse`, the
  // decoder and the loss run as one LinearCrossEntropy (model/linear_cross_entropy.h) and
  // out->logits stays undefined: one graph at a time (backward before the next call).
  torch::Tensor ForwardLoss(const torch::Tensor& tokens, const torch::Tensor& target,
                            LmOutput* out, bool fuse = true);

  // fastai awd_lstm_lm_split: [rnn0], [rnn1], ..., [embedding + decoder bias]; every parameter
  // exactly once (the tied decoder weight is the embedding). An untied decoder weight goes into
  // the last group.
  std::vector<std::vector<torch::Tensor>> LayerGroups() const;

  const LanguageModelOptions& options() const { return options_; }
  AwdLstm& encoder() { return encoder_; }
  LinearDecoder& decoder() { return decoder_; }

 private:
  LanguageModelOptions options_;
  AwdLstm encoder_{nullptr};
  LinearDecoder decoder_{nullptr};
};
TORCH_MODULE(LanguageModel);

// AR + TAR (Merity et al. 2017, section 4.2; fastai/callback/rnn.py, RNNRegularizer), time-major:
// alpha * dropped.pow(2).mean() + beta * (raw[1:] - raw[:-1]).pow(2).mean(). Computed in float32
// so it is safe under autocast; TAR is skipped for seq_len < 2.
torch::Tensor ArTarLoss(const LmOutput& out, double alpha, double beta);

}  // namespace ulmfit
