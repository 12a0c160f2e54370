// The ULMFiT text classifier (Howard & Ruder 2018, section 3.3; fastai/text/models/core.py): the
// AWD-LSTM encoder run over the document in BPT3C chunks, masked concat pooling
// [last, max, mean] over the last max_len tokens, and a two-block head
// BatchNorm -> Dropout -> Linear (-> ReLU), as fastai's SentenceEncoder + PoolingLinearClassifier.
//
// All tensors are time-major: tokens (seq_len, batch), activations (seq_len, batch, features).
//
// Parameter and buffer names are checkpoint keys, a file format; do not rename:
//   TextClassifier:  encoder.<AwdLstm names> (the same keys as in a LanguageModel, so a
//                    fine-tuned encoder loads by name),
//                    head.bn1.{weight,bias,running_mean,running_var,num_batches_tracked},
//                    head.lin1.{weight,bias}, head.bn2.*, head.lin2.{weight,bias}
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "config/config.h"
#include "model/awd_lstm.h"

namespace ulmfit {

struct ClassifierOptions {
  AwdLstmOptions encoder;   // dropouts already multiplied by drop_mult
  int64_t num_classes = 2;
  int64_t hidden = 50;      // head hidden units
  double head_p = 0.4;      // dropout before the first linear (fastai output_p * drop_mult)
  double head_p2 = 0.1;     // dropout before the last linear (fastai ps, not times drop_mult)
  int64_t bptt = 72;        // BPT3C chunk length (must equal the batcher's bptt)
  // Only chunks starting at i with seq_len - i <= max_len get gradients and are pooled.
  // Must be >= 2*bptt - 1 so that every document's last token lies in that window.
  int64_t max_len = 1440;

  // Encoder sizes from model.*, encoder dropouts = classifier.dropout.* x classifier.drop_mult,
  // head_p = classifier.dropout.output x drop_mult, head_p2 = classifier.head_dropout.
  static ClassifierOptions FromConfig(const ModelConfig& model, const ClassifierConfig& clas,
                                      int64_t vocab_size, int64_t num_classes, int64_t pad_id);
};

struct ClassifierOutput {
  torch::Tensor logits;    // (batch, classes)
  torch::Tensor features;  // (batch, 3*emb): pooled [last, max, mean], the head's input
  // The last chunk's encoder output (chunk_len, batch, emb), zero rows for documents that have
  // not started, for AR/TAR. The encoder's last layer has no dropout, so dropped is raw.
  torch::Tensor raw;
  torch::Tensor dropped;
};

// Masked concat pooling. output: (seq, batch, emb) time-major; pad_mask: (seq, batch) bool, true
// at pads -> (batch, 3*emb) = [output at the last non-pad step, max over non-pad steps, mean over
// non-pad steps]. "Last" comes from the mask, so trailing pads are handled. A row with no
// non-pad step pools to zeros.
torch::Tensor MaskedConcatPool(const torch::Tensor& output, const torch::Tensor& pad_mask);

// Sums a tensor over the processes of a data-parallel job, differentiably (dist/data_parallel.h
// CrossRankSum); the model itself knows nothing of processes.
using CrossProcessSum = std::function<torch::Tensor(const torch::Tensor&)>;

// BatchNorm1d in training mode with the statistics of the whole job's batch (PyTorch's
// SyncBatchNorm): `sum` adds up each process's per-feature sums, so a batch split over N
// processes is normalized as the whole batch would be on one, and the running statistics are
// updated alike on every process. With an identity `sum` it is BatchNorm1d's training forward.
torch::Tensor SyncedBatchNorm(torch::nn::BatchNorm1dImpl& bn, const torch::Tensor& x,
                              const CrossProcessSum& sum);

// fastai PoolingLinearClassifier: two LinBnDrop blocks,
// BatchNorm1d(in) -> Dropout(p1) -> Linear(in, hidden) -> ReLU -> BatchNorm1d(hidden) ->
// Dropout(p2) -> Linear(hidden, classes). The linears keep their bias (fastai v1 layout; fastai
// v2 drops it, which a zero bias reproduces).
class PoolingLinearClassifierImpl : public torch::nn::Module {
 public:
  PoolingLinearClassifierImpl(int64_t in_features, int64_t hidden, int64_t num_classes,
                              double p1, double p2);

  // pooled: (batch, in_features) -> logits (batch, num_classes)
  torch::Tensor forward(const torch::Tensor& pooled);
  // The last linear layer's input (batch, hidden), dropout as the module's mode has it: what
  // BADGE's gradient embedding multiplies by (p - onehot).
  torch::Tensor LastLayerInput(const torch::Tensor& pooled);

  // Data-parallel training: BatchNorm in training mode uses the job's batch statistics
  // (SyncedBatchNorm with `sum`); an empty function restores plain BatchNorm.
  void SyncBatchStatistics(CrossProcessSum sum) { batch_sum_ = std::move(sum); }

  torch::nn::BatchNorm1d bn1{nullptr}, bn2{nullptr};
  torch::nn::Linear lin1{nullptr}, lin2{nullptr};

 private:
  torch::Tensor Normalize(torch::nn::BatchNorm1d& bn, const torch::Tensor& x);

  double p1_, p2_;
  CrossProcessSum batch_sum_;
};
TORCH_MODULE(PoolingLinearClassifier);

class TextClassifierImpl : public torch::nn::Module {
 public:
  explicit TextClassifierImpl(const ClassifierOptions& options);

  // tokens: (seq_len, batch) int64, padded as fastai pad_input_chunk(pad_first=True): each row's
  // text starts on a multiple of bptt (whole chunks of pads in front), the remainder pads go
  // after the text, and rows are sorted longest first (checked: a clear error otherwise).
  //
  // BPT3C: ResetState, then for each chunk [i, i+bptt) run the encoder on the rows whose text
  // has started (a prefix of the batch; the encoder slices/zero-pads its carried state to it).
  // Chunks with seq_len - i > max_len run under NoGradGuard (fastai discards their outputs);
  // the others are kept and pooled with the pad mask, then the head.
  //
  // Unlike fastai, which counts the rows whose token at the chunk start is not a pad, a row
  // counts as started once its text has begun, even if it has already ended: with the trailing
  // remainder pads, fastai's count can drop a still-running shorter row in the last chunk.
  ClassifierOutput forward(const torch::Tensor& tokens);

  // fastai awd_lstm_clas_split: [embedding], [rnn0], [rnn1], ..., [head]; every parameter
  // exactly once (num_layers + 2 groups).
  std::vector<std::vector<torch::Tensor>> LayerGroups() const;

  // Copies the encoder weights ("encoder.*") of a language model with the same encoder sizes,
  // e.g. one loaded with LoadModuleWeights from a stage 1/2 checkpoint. A missing key or a shape
  // mismatch is an error naming the parameter.
  void LoadEncoderFrom(const LanguageModel& lm);

  const ClassifierOptions& options() const { return options_; }
  AwdLstm& encoder() { return encoder_; }
  PoolingLinearClassifier& head() { return head_; }

 private:
  ClassifierOptions options_;
  AwdLstm encoder_{nullptr};
  PoolingLinearClassifier head_{nullptr};
};
TORCH_MODULE(TextClassifier);

}  // namespace ulmfit
