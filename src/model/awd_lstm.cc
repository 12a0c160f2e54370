#include "model/awd_lstm.h"

#include <cmath>

#include "model/linear_cross_entropy.h"
#include "model/lstm_layer.h"

namespace ulmfit {

AwdLstmOptions AwdLstmOptions::FromConfig(const ModelConfig& m, int64_t vocab_size,
                                          int64_t pad_id) {
  AwdLstmOptions o;
  o.vocab_size = vocab_size;
  o.emb_size = m.emb_size;
  o.hidden_size = m.hidden_size;
  o.num_layers = m.num_layers;
  o.embed_p = m.dropout.embed * m.drop_mult;
  o.input_p = m.dropout.input * m.drop_mult;
  o.weight_p = m.dropout.weight * m.drop_mult;
  o.hidden_p = m.dropout.hidden * m.drop_mult;
  o.pad_id = pad_id;
  return o;
}

LanguageModelOptions LanguageModelOptions::FromConfig(const ModelConfig& m, int64_t vocab_size,
                                                      int64_t pad_id) {
  LanguageModelOptions o;
  o.encoder = AwdLstmOptions::FromConfig(m, vocab_size, pad_id);
  o.output_p = m.dropout.output * m.drop_mult;
  o.tie_weights = m.tie_weights;
  o.out_bias = m.out_bias;
  return o;
}

torch::Tensor LockedDropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  // x: (seq_len, batch, features); mask: (1, batch, features), broadcast over time.
  torch::Tensor mask =
      torch::empty({1, x.size(1), x.size(2)}, x.options()).bernoulli_(1 - p).div_(1 - p);
  return x * mask;
}

// ---------------------------------------------------------------------------------------------
// WeightDropLstm

WeightDropLstmImpl::WeightDropLstmImpl(int64_t input_size, int64_t hidden_size, double weight_p)
    : input_size_(input_size), hidden_size_(hidden_size), weight_p_(weight_p) {
  // Gate order (i, f, g, o), as torch.nn.LSTM, so fastai/PyTorch weights load unchanged.
  weight_ih = register_parameter("weight_ih", torch::empty({4 * hidden_size, input_size}));
  weight_hh_raw = register_parameter("weight_hh_raw", torch::empty({4 * hidden_size, hidden_size}));
  bias_ih = register_parameter("bias_ih", torch::empty({4 * hidden_size}));
  bias_hh = register_parameter("bias_hh", torch::empty({4 * hidden_size}));
  reset_parameters();
}

void WeightDropLstmImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size_));
  for (auto& p : parameters()) p.uniform_(-bound, bound);
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> WeightDropLstmImpl::forward(
    const torch::Tensor& input, const torch::Tensor& h0, const torch::Tensor& c0) {
  // DropConnect: one element-wise mask on W_hh per call, shared by all time steps; the raw
  // parameter is never modified and receives the gradient through the dropout.
  const torch::Tensor w_hh = (is_training() && weight_p_ > 0)
                                 ? torch::dropout(weight_hh_raw, weight_p_, /*train=*/true)
                                 : weight_hh_raw;
  // input: (seq, batch, in) -> output (seq, batch, hidden), h_n/c_n (1, batch, hidden).
  return LstmLayer(input, h0, c0, weight_ih, w_hh, bias_ih, bias_hh);
}

// ---------------------------------------------------------------------------------------------
// AwdLstm

AwdLstmImpl::AwdLstmImpl(const AwdLstmOptions& options) : options_(options) {
  TORCH_CHECK(options_.vocab_size > 0, "AwdLstm: vocab_size must be positive");
  TORCH_CHECK(options_.num_layers >= 1, "AwdLstm: num_layers must be >= 1");
  auto emb_opts = torch::nn::EmbeddingOptions(options_.vocab_size, options_.emb_size);
  if (options_.pad_id >= 0 && options_.pad_id < options_.vocab_size) {
    emb_opts.padding_idx(options_.pad_id);
  }
  emb_ = register_module("emb", torch::nn::Embedding(emb_opts));
  {
    // fastai overwrites the whole matrix, pad row included (the pad row just gets no gradient
    // from the lookup).
    torch::NoGradGuard no_grad;
    emb_->weight.uniform_(-0.1, 0.1);
  }
  rnns_ = register_module("rnns", torch::nn::ModuleList());
  for (int64_t l = 0; l < options_.num_layers; ++l) {
    const int64_t in = l == 0 ? options_.emb_size : options_.hidden_size;
    const int64_t out = l == options_.num_layers - 1 ? options_.emb_size : options_.hidden_size;
    layers_.push_back(WeightDropLstm(in, out, options_.weight_p));
    rnns_->push_back(layers_.back());
  }
}

torch::Tensor AwdLstmImpl::Embed(const torch::Tensor& tokens) {
  const torch::Tensor& weight = emb_->weight;
  const int64_t pad = emb_->options.padding_idx().value_or(-1);
  // tokens: (seq, batch) -> (seq, batch, emb)
  torch::Tensor x = torch::embedding(weight, tokens, pad);
  if (is_training() && options_.embed_p > 0) {
    // fastai multiplies the whole (vocab, emb) matrix by a (vocab, 1) row mask before the
    // lookup. Scaling the looked-up rows by the same mask, gathered per token, is the same
    // function with the same gradient, without touching the full matrix twice per step.
    const double p = options_.embed_p;
    torch::Tensor row_mask =
        torch::empty({weight.size(0)}, weight.options()).bernoulli_(1 - p).div_(1 - p);
    x = x * row_mask.index({tokens}).unsqueeze(-1);
  }
  return x;
}

void AwdLstmImpl::PrepareState(int64_t batch, const torch::Tensor& like) {
  const int64_t n = options_.num_layers;
  if (state_.empty()) {
    state_.reserve(2 * n);
    for (int64_t l = 0; l < n; ++l) {
      const int64_t h = layers_[l]->hidden_size();
      state_.push_back(torch::zeros({1, batch, h}, like.options()));
      state_.push_back(torch::zeros({1, batch, h}, like.options()));
    }
    return;
  }
  const int64_t old = state_[0].size(1);
  if (old == batch) return;
  for (auto& s : state_) {
    if (batch < old) {
      s = s.slice(/*dim=*/1, 0, batch).contiguous();
    } else {
      s = torch::cat({s, torch::zeros({1, batch - old, s.size(2)}, s.options())}, /*dim=*/1);
    }
  }
}

EncoderOutput AwdLstmImpl::forward(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2, "AwdLstm expects (seq_len, batch) tokens, got ",
              tokens.sizes());
  const bool train = is_training();
  // tokens: (seq, batch) -> (seq, batch, emb)
  torch::Tensor x = Embed(tokens);
  x = LockedDropout(x, options_.input_p, train);
  PrepareState(tokens.size(1), layers_[0]->weight_ih);

  const int64_t n = options_.num_layers;
  for (int64_t l = 0; l < n; ++l) {
    // (seq, batch, in_l) -> (seq, batch, hidden_l)
    auto [out, h, c] = layers_[l]->forward(x, state_[2 * l], state_[2 * l + 1]);
    // Truncated BPTT: the next window starts from these values but does not backprop into them.
    state_[2 * l] = h.detach();
    state_[2 * l + 1] = c.detach();
    x = l == n - 1 ? out : LockedDropout(out, options_.hidden_p, train);
  }
  return {x, x};
}

void AwdLstmImpl::ResetState() { state_.clear(); }

std::vector<torch::Tensor> AwdLstmImpl::GetState() const {
  std::vector<torch::Tensor> out;
  out.reserve(state_.size());
  for (const auto& s : state_) out.push_back(s.detach());
  return out;
}

void AwdLstmImpl::SetState(const std::vector<torch::Tensor>& state) {
  if (state.empty()) {
    ResetState();
    return;
  }
  const int64_t n = options_.num_layers;
  TORCH_CHECK(static_cast<int64_t>(state.size()) == 2 * n, "AwdLstm::SetState: expected ",
              2 * n, " tensors, got ", state.size());
  const int64_t batch = state[0].size(1);
  std::vector<torch::Tensor> next;
  next.reserve(state.size());
  for (int64_t i = 0; i < 2 * n; ++i) {
    const int64_t h = layers_[i / 2]->hidden_size();
    TORCH_CHECK(state[i].dim() == 3 && state[i].size(0) == 1 && state[i].size(1) == batch &&
                    state[i].size(2) == h,
                "AwdLstm::SetState: tensor ", i, " has shape ", state[i].sizes(),
                ", expected [1, ", batch, ", ", h, "]");
    next.push_back(state[i].detach().to(emb_->weight.device()).contiguous());
  }
  state_ = std::move(next);
}

std::vector<std::vector<torch::Tensor>> AwdLstmImpl::LayerGroups() const {
  std::vector<std::vector<torch::Tensor>> groups;
  groups.push_back({emb_->weight});
  for (const auto& layer : layers_) groups.push_back(layer->parameters());
  return groups;
}

// ---------------------------------------------------------------------------------------------
// LinearDecoder and LanguageModel

LinearDecoderImpl::LinearDecoderImpl(int64_t in_features, int64_t vocab_size,
                                     const torch::Tensor& tied_weight, bool with_bias) {
  if (tied_weight.defined()) {
    TORCH_CHECK(tied_weight.dim() == 2 && tied_weight.size(0) == vocab_size &&
                    tied_weight.size(1) == in_features,
                "LinearDecoder: tied weight has shape ", tied_weight.sizes());
    weight = tied_weight;  // shared TensorImpl: Module::to() on the owner moves both
  } else {
    weight = register_parameter("weight", torch::empty({vocab_size, in_features}));
    torch::NoGradGuard no_grad;
    weight.uniform_(-0.1, 0.1);
  }
  if (with_bias) bias = register_parameter("bias", torch::zeros({vocab_size}));
}

torch::Tensor LinearDecoderImpl::forward(const torch::Tensor& x) {
  // x: (seq, batch, emb) -> (seq, batch, vocab); one addmm over seq*batch rows.
  return torch::linear(x, weight, bias);
}

LanguageModelImpl::LanguageModelImpl(const LanguageModelOptions& options) : options_(options) {
  encoder_ = register_module("encoder", AwdLstm(options_.encoder));
  decoder_ = register_module(
      "decoder",
      LinearDecoder(options_.encoder.emb_size, options_.encoder.vocab_size,
                    options_.tie_weights ? encoder_->embedding_weight() : torch::Tensor(),
                    options_.out_bias));
}

LmOutput LanguageModelImpl::forward(const torch::Tensor& tokens) {
  // tokens: (seq, batch) -> raw (seq, batch, emb)
  EncoderOutput enc = encoder_->forward(tokens);
  // (seq, batch, emb), one mask per sequence
  torch::Tensor dropped = LockedDropout(enc.raw, options_.output_p, is_training());
  // (seq, batch, emb) -> (seq, batch, vocab)
  torch::Tensor logits = decoder_->forward(dropped);
  return {logits, enc.raw, dropped};
}

torch::Tensor LanguageModelImpl::ForwardLoss(const torch::Tensor& tokens,
                                             const torch::Tensor& target, LmOutput* out,
                                             bool fuse) {
  const torch::Tensor& weight = decoder_->weight;
  if (!fuse || !weight.device().is_cpu() || weight.scalar_type() != torch::kFloat) {
    // CUDA (or autocast): the decoder in the autocast dtype, the loss in float32.
    *out = forward(tokens);
    return torch::nn::functional::cross_entropy(
        out->logits.reshape({target.size(0), -1}).to(torch::kFloat), target);
  }
  EncoderOutput enc = encoder_->forward(tokens);
  torch::Tensor dropped = LockedDropout(enc.raw, options_.output_p, is_training());
  *out = {torch::Tensor(), enc.raw, dropped};
  return LinearCrossEntropy(dropped.reshape({target.size(0), -1}), weight, decoder_->bias,
                            target);
}

std::vector<std::vector<torch::Tensor>> LanguageModelImpl::LayerGroups() const {
  auto enc_groups = encoder_->LayerGroups();  // [emb], [rnn0], [rnn1], ...
  std::vector<std::vector<torch::Tensor>> groups(enc_groups.begin() + 1, enc_groups.end());
  std::vector<torch::Tensor> last = enc_groups.front();
  if (!options_.tie_weights) last.push_back(decoder_->weight);
  if (decoder_->bias.defined()) last.push_back(decoder_->bias);
  groups.push_back(std::move(last));
  return groups;
}

torch::Tensor ArTarLoss(const LmOutput& out, double alpha, double beta) {
  torch::Tensor loss = torch::zeros({}, out.raw.options().dtype(torch::kFloat));
  if (alpha != 0) loss = loss + alpha * out.dropped.to(torch::kFloat).pow(2).mean();
  if (beta != 0 && out.raw.size(0) > 1) {
    torch::Tensor raw = out.raw.to(torch::kFloat);
    // (seq-1, batch, emb): consecutive time steps
    loss = loss + beta * (raw.slice(0, 1) - raw.slice(0, 0, -1)).pow(2).mean();
  }
  return loss;
}

}  // namespace ulmfit
