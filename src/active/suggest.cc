#include "active/suggest.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "util/random.h"

namespace ulmfit {
namespace {

// The strategies that choose a batch among many candidates (not simply the k best scores).
bool SelectsAmongCandidates(Strategy s) {
  return s == Strategy::kDiverse || s == Strategy::kBadge || s == Strategy::kKMeans;
}

int64_t KeeperCapacity(const SuggestOptions& o) {
  const int64_t spread = o.k * std::max(1, o.candidates_per_query);
  if (o.strategy == Strategy::kBadge || o.strategy == Strategy::kKMeans) {
    return std::max(spread, kMaxDiversityCandidates);
  }
  return o.strategy == Strategy::kDiverse || o.balanced ? spread : o.k;
}

}  // namespace

SuggestionCollector::SuggestionCollector(const ClassifierEnsemble& model, SuggestOptions options)
    : model_(model), options_(options), keeper_(KeeperCapacity(options)) {}

void SuggestionCollector::Add(const std::vector<std::string>& texts,
                              const std::vector<std::string>& ids) {
  if (texts.empty()) return;
  const Strategy strategy = options_.strategy;
  const ViewsNeeded needed = NeedsViews(strategy);
  // random needs no forward pass, but the CSV shows the model's guess: always predict.
  const ClassifierEvaluation out =
      model_.Predict(texts, options_.batch_size, needed.features || needed.last_hidden);
  std::vector<std::vector<std::vector<float>>> mc;
  if (needed.mc_passes) {
    torch::manual_seed(options_.seed + static_cast<uint64_t>(seen_));
    mc = model_.McDropout(texts, options_.batch_size, options_.mc_passes);
  }
  std::vector<double> scores(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const int64_t index = seen_ + static_cast<int64_t>(i);
    switch (strategy) {
      case Strategy::kBald:
        scores[i] = BaldScore(mc[i]);
        break;
      case Strategy::kBadge: {
        // The gradient's length: BADGE's uncertainty, which decides who is kept in a big pool.
        double norm = 0;
        for (float g : GradientEmbedding(out.probs[i], out.last_hidden[i])) norm += g * g;
        scores[i] = std::sqrt(norm);
        break;
      }
      case Strategy::kKMeans:  // a uniform sample of a pool too big to cluster whole
        scores[i] = UncertaintyScore(Strategy::kRandom, {}, options_.seed, index);
        break;
      default:
        scores[i] = UncertaintyScore(strategy, out.probs[i], options_.seed, index);
    }
    keeper_.Offer(index, scores[i]);
  }
  // Keep the details of this chunk's texts that made the cut; drop the evicted ones.
  std::unordered_set<int64_t> still_kept;
  for (const ScoredIndex& item : keeper_.Items()) still_kept.insert(item.index);
  for (auto it = kept_.begin(); it != kept_.end();) {
    if (still_kept.count(it->first) == 0) {
      features_.erase(it->first);
      last_hidden_.erase(it->first);
      it = kept_.erase(it);
    } else {
      ++it;
    }
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    const int64_t index = seen_ + static_cast<int64_t>(i);
    if (still_kept.count(index) == 0) continue;
    Suggestion s;
    s.index = index;
    s.id = ids.empty() ? std::to_string(index + 1) : ids[i];
    s.text = texts[i];
    s.predicted = out.predicted[i];
    s.probs = out.probs[i];
    s.score = strategy == Strategy::kKMeans ? 0 : scores[i];
    kept_[index] = std::move(s);
    if (needed.features) features_[index] = out.features[i];
    if (needed.last_hidden) last_hidden_[index] = out.last_hidden[i];
  }
  seen_ += static_cast<int64_t>(texts.size());
}

std::vector<Suggestion> SuggestionCollector::Finish() const {
  const std::vector<ScoredIndex> items = keeper_.Items();
  std::vector<int64_t> chosen;
  if (SelectsAmongCandidates(options_.strategy) || options_.balanced) {
    CandidateViews views;
    std::vector<double> scores;
    std::vector<int64_t> predicted;
    for (const ScoredIndex& item : items) {
      const Suggestion& s = kept_.at(item.index);
      views.ids.push_back(item.index);
      views.probs.push_back(s.probs);
      if (features_.count(item.index)) views.features.push_back(features_.at(item.index));
      if (last_hidden_.count(item.index)) views.last_hidden.push_back(last_hidden_.at(item.index));
      scores.push_back(item.score);
      predicted.push_back(s.predicted);
    }
    SelectOptions select;
    select.k = options_.k;
    select.seed = options_.seed;
    select.candidates_per_query = options_.candidates_per_query;
    // Score-ranked strategies were scored as they streamed; only the balancing is left.
    const std::vector<int64_t> positions =
        SelectsAmongCandidates(options_.strategy) ? SelectBatch(options_.strategy, views, select)
                                                  : SelectBalanced(scores, predicted, options_.k);
    for (int64_t position : positions) chosen.push_back(items.at(position).index);
  } else {
    for (const ScoredIndex& item : items) chosen.push_back(item.index);
  }
  std::vector<Suggestion> out;
  for (int64_t index : chosen) out.push_back(kept_.at(index));
  return out;
}

}  // namespace ulmfit
