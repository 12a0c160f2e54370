#include "interop/fastai_model.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ulmfit {
namespace {

std::string ShapeText(torch::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The state dict by key, remembering which keys were imported.
class StateIndex {
 public:
  StateIndex(const NamedTensors& state, const std::string& name) : state_(state), name_(name) {
    for (const auto& [key, tensor] : state) by_key_.emplace(key, &tensor);
  }

  bool Has(const std::string& key) const { return by_key_.contains(key); }
  void MarkUsed(const std::string& key) { used_.insert(key); }
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": ", what));
  }
  bool HasPrefix(const std::string& prefix) const {
    for (const auto& [key, tensor] : state_) {
      if (absl::StartsWith(key, prefix)) return true;
    }
    return false;
  }

  absl::Status Missing(const std::string& key) const {
    std::vector<std::string> first;
    for (size_t i = 0; i < state_.size() && i < 5; ++i) first.push_back(Quoted(state_[i].first));
    if (state_.size() > 5) first.push_back("...");
    return absl::InvalidArgumentError(absl::StrCat(
        name_, ": no '", key, "'; not a fastai AWD-LSTM language model (found keys: ",
        first.empty() ? "none" : absl::StrJoin(first, ", "), ")"));
  }

  // The first of `keys` present (the others are other fastai versions' names), as float32,
  // with `shape` (-1: any size).
  absl::StatusOr<torch::Tensor> Take(const std::vector<std::string>& keys,
                                     const std::vector<int64_t>& shape) {
    for (const auto& key : keys) {
      auto it = by_key_.find(key);
      if (it == by_key_.end()) continue;
      const torch::Tensor& t = *it->second;
      bool ok = t.dim() == static_cast<int64_t>(shape.size());
      for (size_t d = 0; ok && d < shape.size(); ++d) ok = shape[d] < 0 || t.size(d) == shape[d];
      if (!ok) {
        std::vector<std::string> dims;
        for (int64_t d : shape) dims.push_back(d < 0 ? "*" : std::to_string(d));
        return absl::InvalidArgumentError(absl::StrCat(name_, ": ", Quoted(key), " has shape ",
                                                       ShapeText(t.sizes()), "; expected [",
                                                       absl::StrJoin(dims, ", "), "]"));
      }
      if (!t.is_floating_point()) {
        return absl::InvalidArgumentError(absl::StrCat(name_, ": ", Quoted(key), " holds ",
                                                       c10::toString(t.scalar_type()),
                                                       " values, not floating-point weights"));
      }
      used_.insert(key);
      return t.to(torch::kFloat).contiguous();  // half/bfloat16/double files become float32
    }
    return Missing(keys.front());
  }

  std::vector<std::string> Unused() const {
    std::vector<std::string> out;
    for (const auto& [key, tensor] : state_) {
      if (!used_.contains(key)) out.push_back(key);
    }
    return out;
  }

 private:
  const NamedTensors& state_;
  const std::string& name_;
  absl::flat_hash_map<std::string, const torch::Tensor*> by_key_;
  absl::flat_hash_set<std::string> used_;
};

// Where the AWD_LSTM's keys start: a language model, save_encoder's file, a classifier.
constexpr const char* kEncoderPrefixes[] = {"0.", "", "0.module."};
// The embedding under v2/v1 names, then fastai 0.7's.
const std::vector<std::string> kEmbeddingKeys = {"encoder.weight", "encoder_dp.emb.weight",
                                                 "encoder_with_dropout.embed.weight"};

// One LSTM layer: W_hh from WeightDropout's raw parameter (0.7 kept it inside module), the rest
// from the wrapped nn.LSTM (some files name them without "module.").
absl::Status ImportLayer(StateIndex& index, const std::string& r, int64_t in, int64_t l,
                         ImportedLanguageModel& out, int64_t& hidden) {
  ASSIGN_OR_RETURN(torch::Tensor w_hh, index.Take({r + "weight_hh_l0_raw", r + "module.weight_hh_l0_raw"}, {-1, -1}));
  hidden = w_hh.size(1);
  if (w_hh.size(0) != 4 * hidden) {
    return index.Error(absl::StrCat("'", r, "weight_hh_l0_raw' has shape ",
                                    ShapeText(w_hh.sizes()), "; expected [4 * hidden, hidden]"));
  }
  const int64_t g = 4 * hidden;
  ASSIGN_OR_RETURN(torch::Tensor w_ih, index.Take({r + "module.weight_ih_l0", r + "weight_ih_l0"}, {g, in}));
  ASSIGN_OR_RETURN(torch::Tensor b_ih, index.Take({r + "module.bias_ih_l0", r + "bias_ih_l0"}, {g}));
  ASSIGN_OR_RETURN(torch::Tensor b_hh, index.Take({r + "module.bias_hh_l0", r + "bias_hh_l0"}, {g}));
  const std::string u = absl::StrCat("encoder.rnns.", l, ".");
  out.tensors.emplace_back(u + "weight_ih", w_ih);
  out.tensors.emplace_back(u + "weight_hh_raw", w_hh);
  out.tensors.emplace_back(u + "bias_ih", b_ih);
  out.tensors.emplace_back(u + "bias_hh", b_hh);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ImportedLanguageModel> ImportFastaiLanguageModel(const NamedTensors& state,
                                                                const std::string& weights_name,
                                                                int64_t vocab_size,
                                                                const std::string& vocab_name) {
  StateIndex index(state, weights_name);
  std::string p;
  bool found = false;
  for (const char* prefix : kEncoderPrefixes) {
    for (const auto& key : kEmbeddingKeys) found = found || index.Has(prefix + key);
    if (found) {
      p = prefix;
      break;
    }
  }
  if (!found) return index.Missing("0.encoder.weight");
  for (const auto& [key, tensor] : state) {
    if (absl::StartsWith(key, p + "rnns.") && absl::StrContains(key, "_reverse")) {
      return index.Error(absl::StrCat(Quoted(key), " belongs to a bidirectional AWD-LSTM, which ulmfit does not build"));
    }
  }
  std::vector<std::string> emb_keys;
  for (const auto& key : kEmbeddingKeys) emb_keys.push_back(p + key);
  ImportedLanguageModel out;
  ASSIGN_OR_RETURN(torch::Tensor emb, index.Take(emb_keys, {-1, -1}));
  for (const auto& key : emb_keys) index.MarkUsed(key);  // the same Embedding under other names
  const int64_t rows = emb.size(0), emb_size = emb.size(1);
  if (vocab_size >= 0 && vocab_size != rows) {
    return absl::InvalidArgumentError(absl::StrCat(vocab_name, " has ", vocab_size,
                                                   " tokens but the embedding has ", rows, " rows"));
  }
  out.vocab_size = rows;
  out.tensors.emplace_back("encoder.emb.weight", emb);

  int64_t layers = 0, in = emb_size, inner = emb_size, hidden = 0;
  for (; index.HasPrefix(absl::StrCat(p, "rnns.", layers, ".")); ++layers) {
    const std::string r = absl::StrCat(p, "rnns.", layers, ".");
    RETURN_IF_ERROR(ImportLayer(index, r, in, layers, out, hidden));
    if (layers == 0) inner = hidden;
    if (layers > 0 && index.HasPrefix(absl::StrCat(p, "rnns.", layers + 1, ".")) && hidden != inner) {
      return index.Error(absl::StrCat("'", r, "weight_hh_l0_raw' has hidden size ", hidden,
                               " but layer 0 has ", inner, "; ulmfit's inner layers share one size"));
    }
    in = hidden;
  }
  if (layers == 0) return index.Missing(p + "rnns.0.weight_hh_l0_raw");
  if (hidden != emb_size) {
    return index.Error(absl::StrCat("the last LSTM layer ('", p, "rnns.", layers - 1,
                             ".weight_hh_l0_raw') has size ", hidden, ", not the embedding size ",
                             emb_size, " that a tied AWD-LSTM needs"));
  }
  out.config.emb_size = static_cast<int>(emb_size);
  out.config.hidden_size = static_cast<int>(layers > 1 ? inner : emb_size);
  out.config.num_layers = static_cast<int>(layers);

  out.has_decoder = p == "0." && index.HasPrefix("1.decoder.");
  if (out.has_decoder) {
    out.config.tie_weights = true;
    if (index.Has("1.decoder.weight")) {
      ASSIGN_OR_RETURN(torch::Tensor w, index.Take({"1.decoder.weight"}, {rows, emb_size}));
      out.config.tie_weights = torch::equal(w, emb);
      if (!out.config.tie_weights) out.tensors.emplace_back("decoder.weight", w);
    }
    out.config.out_bias = index.Has("1.decoder.bias");
    if (out.config.out_bias) {
      ASSIGN_OR_RETURN(torch::Tensor b, index.Take({"1.decoder.bias"}, {rows}));
      out.tensors.emplace_back("decoder.bias", b);
    }
  }
  out.unused_keys = index.Unused();
  return out;
}

absl::Status LoadImportedLanguageModel(const ImportedLanguageModel& imported,
                                       LanguageModelImpl& model) {
  auto params = model.named_parameters(/*recurse=*/true);
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : imported.tensors) {
    torch::Tensor* target = params.find(name);
    if (!target) {
      return absl::InvalidArgumentError(absl::StrCat("the model has no parameter '", name,
                                                     "'; build it from the imported config"));
    }
    if (target->sizes() != tensor.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat("'", name, "' has shape ", ShapeText(tensor.sizes()),
                                                     " but the model's is ", ShapeText(target->sizes())));
    }
    target->copy_(tensor);
  }
  return absl::OkStatus();
}

NamedTensors ExportFastaiLanguageModel(const LanguageModelImpl& model, FastaiLayout layout) {
  // One CPU float32 tensor per parameter, so tied names share it (and its storage on export).
  absl::flat_hash_map<std::string, torch::Tensor> p;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    p[item.key()] = item.value().detach().to(torch::kCPU, torch::kFloat);
  }
  const std::string e = layout == FastaiLayout::kLanguageModel ? "0." : "";
  const torch::Tensor& emb = p.at("encoder.emb.weight");
  NamedTensors out = {{e + "encoder.weight", emb}, {e + "encoder_dp.emb.weight", emb}};
  // fastai v2's order: WeightDropout's own raw parameter, then the LSTM's (weight_hh_l0 is no
  // parameter there).
  for (int64_t l = 0; l < model.options().encoder.num_layers; ++l) {
    const std::string u = absl::StrCat("encoder.rnns.", l, ".");
    const std::string r = absl::StrCat(e, "rnns.", l, ".");
    out.emplace_back(r + "weight_hh_l0_raw", p.at(u + "weight_hh_raw"));
    out.emplace_back(r + "module.weight_ih_l0", p.at(u + "weight_ih"));
    out.emplace_back(r + "module.bias_ih_l0", p.at(u + "bias_ih"));
    out.emplace_back(r + "module.bias_hh_l0", p.at(u + "bias_hh"));
  }
  if (layout == FastaiLayout::kLanguageModel) {
    out.emplace_back("1.decoder.weight",
                     model.options().tie_weights ? emb : p.at("decoder.weight"));
    if (model.options().out_bias) out.emplace_back("1.decoder.bias", p.at("decoder.bias"));
  }
  return out;
}

}  // namespace ulmfit
