#include "model/classifier.h"

#include <algorithm>
#include <limits>
#include <string>

namespace ulmfit {

ClassifierOptions ClassifierOptions::FromConfig(const ModelConfig& model,
                                                const ClassifierConfig& clas, int64_t vocab_size,
                                                int64_t num_classes, int64_t pad_id) {
  // The encoder's sizes come from the LM; its dropouts are the classifier's own.
  ModelConfig m = model;
  m.dropout = clas.dropout;
  m.drop_mult = clas.drop_mult;
  ClassifierOptions o;
  o.encoder = AwdLstmOptions::FromConfig(m, vocab_size, pad_id);
  o.num_classes = num_classes;
  o.hidden = clas.hidden;
  o.head_p = clas.dropout.output * clas.drop_mult;  // fastai: output_p is scaled by drop_mult
  o.head_p2 = clas.head_dropout;                    // fastai: the lin_ftrs ps are not
  o.bptt = clas.bptt;
  o.max_len = clas.max_len;
  return o;
}

torch::Tensor MaskedConcatPool(const torch::Tensor& output, const torch::Tensor& pad_mask) {
  TORCH_CHECK(output.dim() == 3, "MaskedConcatPool expects (seq, batch, emb) output, got ",
              output.sizes());
  TORCH_CHECK(pad_mask.dim() == 2 && pad_mask.size(0) == output.size(0) &&
                  pad_mask.size(1) == output.size(1),
              "MaskedConcatPool: pad_mask ", pad_mask.sizes(), " does not match output ",
              output.sizes());
  const torch::Tensor mask = pad_mask.to(torch::kBool);
  const torch::Tensor mask3 = mask.unsqueeze(-1);  // (seq, batch, 1)
  const int64_t seq = output.size(0), batch = output.size(1), emb = output.size(2);

  // (batch, 1): non-pad steps per row; rows without any pool to zeros instead of NaN/-inf.
  const torch::Tensor count = mask.logical_not().sum(0).unsqueeze(-1);
  const torch::Tensor empty = count.eq(0);

  // mean: (batch, emb)
  torch::Tensor mean =
      output.masked_fill(mask3, 0).sum(0) / count.clamp_min(1).to(output.scalar_type());
  // max: (batch, emb); pads can never win.
  torch::Tensor max = std::get<0>(
      output.masked_fill(mask3, -std::numeric_limits<double>::infinity()).max(/*dim=*/0));
  max = max.masked_fill(empty, 0);
  // last: the output at each row's last non-pad step, which with trailing pads is not always
  // seq - 1. (batch,) index = max over non-pad positions.
  const torch::Tensor positions =
      torch::arange(seq, torch::TensorOptions().dtype(torch::kLong).device(output.device()))
          .unsqueeze(1);  // (seq, 1)
  const torch::Tensor last_idx =
      std::get<0>(positions.masked_fill(mask, -1).max(/*dim=*/0)).clamp_min(0);  // (batch,)
  torch::Tensor last =
      output.gather(0, last_idx.view({1, batch, 1}).expand({1, batch, emb})).squeeze(0);
  last = last.masked_fill(empty, 0);
  // (batch, 3*emb)
  return torch::cat({last, max, mean}, /*dim=*/1);
}

// ---------------------------------------------------------------------------------------------
// PoolingLinearClassifier

PoolingLinearClassifierImpl::PoolingLinearClassifierImpl(int64_t in_features, int64_t hidden,
                                                         int64_t num_classes, double p1,
                                                         double p2)
    : p1_(p1), p2_(p2) {
  TORCH_CHECK(in_features > 0 && hidden > 0 && num_classes > 0,
              "PoolingLinearClassifier: sizes must be positive, got ", in_features, ", ", hidden,
              ", ", num_classes);
  bn1 = register_module("bn1", torch::nn::BatchNorm1d(in_features));
  lin1 = register_module("lin1", torch::nn::Linear(in_features, hidden));
  bn2 = register_module("bn2", torch::nn::BatchNorm1d(hidden));
  lin2 = register_module("lin2", torch::nn::Linear(hidden, num_classes));
  // fastai's BatchNorm: weight 1, bias 1e-3. The linears keep PyTorch's default init.
  torch::NoGradGuard no_grad;
  for (auto* bn : {&bn1, &bn2}) {
    (*bn)->weight.fill_(1.0);
    (*bn)->bias.fill_(1e-3);
  }
}

torch::Tensor SyncedBatchNorm(torch::nn::BatchNorm1dImpl& bn, const torch::Tensor& x,
                              const CrossProcessSum& sum) {
  const auto& options = bn.options;
  const torch::Tensor input = x.to(torch::kFloat);  // BatchNorm runs in float32 under autocast
  const int64_t features = input.size(1);
  // Two passes, as BatchNorm itself: the mean first, then the squared deviations from it (one
  // pass of sums and sums of squares loses digits when the mean is large).
  const torch::Tensor count = torch::full({1}, static_cast<double>(input.size(0)), input.options());
  const torch::Tensor sums = sum(torch::cat({input.sum(0), count}));
  const torch::Tensor n = sums.narrow(0, features, 1);
  const torch::Tensor mean = sums.narrow(0, 0, features) / n;
  const torch::Tensor centered = input - mean;
  const torch::Tensor var = sum(centered.pow(2).sum(0)) / n;  // biased, for normalizing
  torch::Tensor y = centered / torch::sqrt(var + options.eps());
  if (options.affine()) y = y * bn.weight + bn.bias;
  if (options.track_running_stats()) {
    torch::NoGradGuard no_grad;
    const double momentum = options.momentum().value_or(0.1);
    const double total = n.item<double>();
    // The running variance is the unbiased one, as BatchNorm keeps it.
    const torch::Tensor unbiased = var.detach() * (total / std::max(total - 1, 1.0));
    bn.running_mean.mul_(1 - momentum).add_(mean.detach(), momentum);
    bn.running_var.mul_(1 - momentum).add_(unbiased, momentum);
    bn.num_batches_tracked.add_(1);
  }
  return y.to(x.scalar_type());
}

torch::Tensor PoolingLinearClassifierImpl::Normalize(torch::nn::BatchNorm1d& bn,
                                                     const torch::Tensor& x) {
  if (!batch_sum_ || !is_training()) return bn->forward(x);
  return SyncedBatchNorm(*bn, x, batch_sum_);
}

torch::Tensor PoolingLinearClassifierImpl::LastLayerInput(const torch::Tensor& pooled) {
  const bool train = is_training();
  // (batch, in) -> (batch, hidden)
  torch::Tensor x = Normalize(bn1, pooled);
  if (p1_ > 0) x = torch::dropout(x, p1_, train);
  x = torch::relu(lin1->forward(x));
  x = Normalize(bn2, x);
  if (p2_ > 0) x = torch::dropout(x, p2_, train);
  return x;
}

torch::Tensor PoolingLinearClassifierImpl::forward(const torch::Tensor& pooled) {
  // (batch, hidden) -> (batch, classes)
  return lin2->forward(LastLayerInput(pooled));
}

// ---------------------------------------------------------------------------------------------
// TextClassifier

TextClassifierImpl::TextClassifierImpl(const ClassifierOptions& options) : options_(options) {
  const int64_t bptt = options_.bptt;
  TORCH_CHECK(bptt >= 1, "TextClassifier: bptt must be >= 1, got ", bptt);
  // The last chunk boundary before any document's final token is at least seq_len - bptt, so
  // a window of 2*bptt - 1 tokens always starts at or before it.
  TORCH_CHECK(options_.max_len >= 2 * bptt - 1, "TextClassifier: max_len (", options_.max_len,
              ") must be at least 2*bptt - 1 (", 2 * bptt - 1,
              ") so that every document's last tokens are pooled");
  TORCH_CHECK(options_.encoder.pad_id >= 0 && options_.encoder.pad_id < options_.encoder.vocab_size,
              "TextClassifier: pad_id ", options_.encoder.pad_id, " is not in the vocabulary");
  encoder_ = register_module("encoder", AwdLstm(options_.encoder));
  head_ = register_module(
      "head", PoolingLinearClassifier(3 * options_.encoder.emb_size, options_.hidden,
                                      options_.num_classes, options_.head_p, options_.head_p2));
}

ClassifierOutput TextClassifierImpl::forward(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.scalar_type() == torch::kLong,
              "TextClassifier expects (seq_len, batch) int64 tokens, got ", tokens.sizes(), " ",
              tokens.scalar_type());
  const int64_t seq_len = tokens.size(0), batch = tokens.size(1);
  TORCH_CHECK(seq_len > 0 && batch > 0, "TextClassifier: empty batch ", tokens.sizes());
  const int64_t bptt = options_.bptt;
  const int64_t num_chunks = (seq_len + bptt - 1) / bptt;

  const torch::Tensor pad_mask = tokens.eq(options_.encoder.pad_id);  // (seq, batch)
  // Leading pads per row = the position where its text starts (seq_len when it has none).
  // One small transfer to the CPU decides every chunk's batch.
  const torch::Tensor lead =
      pad_mask.logical_not().cumsum(0).eq(0).sum(0).to(torch::kCPU, torch::kLong);
  const auto lead_a = lead.accessor<int64_t, 1>();
  std::vector<int64_t> start_chunk(batch);
  for (int64_t b = 0; b < batch; ++b) {
    start_chunk[b] = lead_a[b] >= seq_len ? num_chunks : lead_a[b] / bptt;
    TORCH_CHECK(b == 0 || start_chunk[b] >= start_chunk[b - 1], "TextClassifier: row ", b,
                " starts in chunk ", start_chunk[b], ", before row ", b - 1, " (chunk ",
                start_chunk[b - 1],
                "); rows must be sorted longest first and padded pad-first in whole bptt chunks");
  }
  TORCH_CHECK(start_chunk[0] < num_chunks, "TextClassifier: every row of the batch is padding");

  encoder_->ResetState();
  std::vector<torch::Tensor> kept;  // (chunk_len, batch, emb) each
  int64_t pool_from = -1;           // first position of the pooled window
  int64_t real_bs = 0;
  // Chunks before the first row starts hold only pads: skipping them leaves the state at zero,
  // as if the rows began there.
  for (int64_t k = start_chunk[0]; k < num_chunks; ++k) {
    const int64_t i = k * bptt;
    const int64_t len = std::min(bptt, seq_len - i);
    // Rows whose text has begun by this chunk: a prefix of the batch that only grows, so the
    // encoder zero-pads its carried state for the newcomers. Rows that have already ended stay
    // in (their trailing pads are masked out).
    while (real_bs < batch && start_chunk[real_bs] <= k) ++real_bs;
    const torch::Tensor chunk = tokens.slice(0, i, i + len).slice(1, 0, real_bs);
    if (seq_len - i > options_.max_len) {
      // fastai runs these and throws the outputs away; without a graph they cost no memory.
      torch::NoGradGuard no_grad;
      encoder_->forward(chunk);
      continue;
    }
    if (pool_from < 0) pool_from = i;
    torch::Tensor out = encoder_->forward(chunk).raw;  // (len, real_bs, emb)
    // Rows that have not started get zero outputs (and are pads in the mask).
    if (real_bs < batch) out = torch::constant_pad_nd(out, {0, 0, 0, batch - real_bs});
    kept.push_back(out);
  }
  TORCH_CHECK(!kept.empty(), "TextClassifier: no chunk inside max_len");  // max_len >= bptt

  ClassifierOutput result;
  // (pooled_len, batch, emb) and its (pooled_len, batch) mask
  const torch::Tensor output = kept.size() == 1 ? kept.front() : torch::cat(kept, /*dim=*/0);
  result.features = MaskedConcatPool(output, pad_mask.slice(0, pool_from));
  result.logits = head_->forward(result.features);
  result.raw = kept.back();
  result.dropped = result.raw;
  return result;
}

std::vector<std::vector<torch::Tensor>> TextClassifierImpl::LayerGroups() const {
  std::vector<std::vector<torch::Tensor>> groups = encoder_->LayerGroups();  // [emb], [rnn_l]...
  groups.push_back(head_->parameters());
  return groups;
}

void TextClassifierImpl::LoadEncoderFrom(const LanguageModel& lm) {
  const auto src_params = lm->named_parameters();
  const auto src_buffers = lm->named_buffers();
  torch::NoGradGuard no_grad;
  auto copy_all = [](const torch::OrderedDict<std::string, torch::Tensor>& src,
                     torch::OrderedDict<std::string, torch::Tensor> dst, const char* kind) {
    for (auto& item : dst) {
      const std::string key = "encoder." + item.key();
      const torch::Tensor* from = src.find(key);
      TORCH_CHECK(from != nullptr, "TextClassifier::LoadEncoderFrom: the language model has no ",
                  kind, " '", key, "'");
      TORCH_CHECK(from->sizes() == item.value().sizes(), "TextClassifier::LoadEncoderFrom: '",
                  key, "' has shape ", from->sizes(), " in the language model but ",
                  item.value().sizes(),
                  " in the classifier (vocabulary and model sizes must match)");
      item.value().copy_(*from);
    }
  };
  copy_all(src_params, encoder_->named_parameters(), "parameter");
  copy_all(src_buffers, encoder_->named_buffers(), "buffer");
}

}  // namespace ulmfit
