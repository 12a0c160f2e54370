// Choosing the texts a person should label next: a trained classifier scores a pool of
// unlabelled texts with an uncertainty strategy (active/strategies.h) and the best k are kept.
// Pools stream through in chunks, so memory stays flat however large the pool is.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "active/strategies.h"
#include "infer/classifier.h"

namespace ulmfit {

struct SuggestOptions {
  Strategy strategy = Strategy::kMargin;
  int64_t k = 20;                    // texts to suggest
  int candidates_per_query = 10;     // diverse: cluster the k * N most uncertain texts
  uint64_t seed = 0;                 // random scores, k-means and BADGE seeding, MC masks
  int batch_size = 64;
  int mc_passes = 10;                // bald: dropout passes per text
  bool balanced = false;             // score-ranked strategies: one predicted class at a time
};

// badge and kmeans choose among every text of the pool up to this many; a larger pool keeps
// this many (badge: the largest gradients; kmeans: a uniform sample), so memory stays flat.
inline constexpr int64_t kMaxDiversityCandidates = 20000;

struct Suggestion {
  int64_t index = 0;          // position in the pool, 0-based
  std::string id;             // the pool's id column, or the 1-based line number
  std::string text;
  double score = 0;           // the strategy's score (higher = more useful to label)
  int64_t predicted = 0;      // the model's label id
  std::vector<float> probs;   // class probabilities
};

class SuggestionCollector {
 public:
  SuggestionCollector(const ClassifierEnsemble& model, SuggestOptions options);

  // Scores the next chunk of the pool; `ids` may be empty (ids are then 1-based positions).
  void Add(const std::vector<std::string>& texts, const std::vector<std::string>& ids);
  // The chosen texts, most useful first. Scores depend only on the model, the texts and the
  // seed, not on how the pool was chunked.
  std::vector<Suggestion> Finish() const;
  int64_t seen() const { return seen_; }

 private:
  const ClassifierEnsemble& model_;
  SuggestOptions options_;
  TopKeeper keeper_;
  int64_t seen_ = 0;
  // The kept candidates' details, and the views their strategy selects by, by pool index.
  std::unordered_map<int64_t, Suggestion> kept_;
  std::unordered_map<int64_t, std::vector<float>> features_;
  std::unordered_map<int64_t, std::vector<float>> last_hidden_;
};

}  // namespace ulmfit
