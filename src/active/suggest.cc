#include "active/suggest.h"

#include <algorithm>
#include <unordered_set>

namespace ulmfit {

SuggestionCollector::SuggestionCollector(const ClassifierEnsemble& model, SuggestOptions options)
    : model_(model),
      options_(options),
      keeper_(options.strategy == Strategy::kDiverse
                  ? options.k * std::max(1, options.candidates_per_query)
                  : options.k) {}

void SuggestionCollector::Add(const std::vector<std::string>& texts,
                              const std::vector<std::string>& ids) {
  if (texts.empty()) return;
  const bool diverse = options_.strategy == Strategy::kDiverse;
  const ClassifierEvaluation out = model_.Predict(texts, options_.batch_size, diverse);
  std::vector<double> scores(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const int64_t index = seen_ + static_cast<int64_t>(i);
    scores[i] = UncertaintyScore(options_.strategy, out.probs[i], options_.seed, index);
    keeper_.Offer(index, scores[i]);
  }
  // Keep the details of this chunk's texts that made the cut; drop the evicted ones.
  std::unordered_set<int64_t> still_kept;
  for (const ScoredIndex& item : keeper_.Items()) still_kept.insert(item.index);
  for (auto it = kept_.begin(); it != kept_.end();) {
    if (still_kept.count(it->first) == 0) {
      features_.erase(it->first);
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
    s.score = scores[i];
    kept_[index] = std::move(s);
    if (diverse) features_[index] = out.features[i];
  }
  seen_ += static_cast<int64_t>(texts.size());
}

std::vector<Suggestion> SuggestionCollector::Finish() const {
  const std::vector<ScoredIndex> items = keeper_.Items();
  std::vector<int64_t> chosen;
  if (options_.strategy == Strategy::kDiverse) {
    std::vector<std::vector<float>> features;
    std::vector<double> scores;
    for (const ScoredIndex& item : items) {
      features.push_back(features_.at(item.index));
      scores.push_back(item.score);
    }
    for (int64_t position : SelectDiverse(features, scores, options_.k, options_.seed)) {
      chosen.push_back(items[static_cast<size_t>(position)].index);
    }
  } else {
    for (const ScoredIndex& item : items) chosen.push_back(item.index);
  }
  std::vector<Suggestion> out;
  for (int64_t index : chosen) out.push_back(kept_.at(index));
  return out;
}

}  // namespace ulmfit
