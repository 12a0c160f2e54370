// Active-learning scores: which unlabelled examples a person should label next.
//
// Pure functions over plain vectors (no libtorch), so the ranking logic is tested in isolation
// and a caller can stream a pool of millions through TopKeeper without holding it in memory.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "config/enums.h"

namespace ulmfit {

// How useful labelling an example would be, from its class probabilities (higher = more
// useful), is chosen by a Strategy; the enum and its names live in config/enums.h, because the
// config (active.strategy, active.strategies) holds them.

// "least_confidence", "margin", "entropy", "random", "diverse"; the error lists the valid names.
absl::StatusOr<Strategy> ParseStrategy(std::string_view name);
std::string_view StrategyName(Strategy s);

// Uncertainty score of one probability vector (not renormalised; NaN, infinite or negative
// entries count as 0 so one bad row cannot poison a ranking). Empty `probs` scores 0.
//   least_confidence: 1 - max_c p_c
//   margin:           1 - (p_top1 - p_top2), so higher = more uncertain; one class scores 0
//   entropy:          -sum_c p_c ln p_c, with 0 ln 0 = 0
//   random:           uniform in [0, 1), a function of (seed, example_index) only, so a fixed
//                     seed gives the same scores whatever the batch order or batch size
//   diverse:          the entropy; the diversity comes from SelectDiverse
// `seed` and `example_index` matter only for kRandom.
double UncertaintyScore(Strategy s, const std::vector<float>& probs, uint64_t seed,
                        int64_t example_index);

// The indices of the k highest scores, by score descending with ties broken by lower index
// (NaN ranks lowest). k > size returns all of them; k <= 0 returns none.
std::vector<int64_t> TopK(const std::vector<double>& scores, int64_t k);

struct ScoredIndex {
  int64_t index = 0;
  double score = 0;
};

// Streaming TopK: keeps the best `capacity` offers by (score desc, index asc) in a heap, so a
// pool of any size needs O(capacity) memory. Items() equals TopK over everything offered.
class TopKeeper {
 public:
  explicit TopKeeper(int64_t capacity) : capacity_(capacity < 0 ? 0 : capacity) {}
  void Offer(int64_t index, double score);
  // Best first; does not consume the keeper.
  std::vector<ScoredIndex> Items() const;
  int64_t size() const { return static_cast<int64_t>(heap_.size()); }

 private:
  int64_t capacity_;
  std::vector<ScoredIndex> heap_;  // the worst kept item on top
};

// Batch-mode diverse selection, so that N near-duplicates are not suggested together: k-means
// with k clusters over the L2-normalised features (cosine geometry), then the best-scoring
// candidate of each cluster; empty clusters (or k > candidates) are filled with the next best
// unused candidates. Returns positions into `features`/`scores` by score descending (ties: lower
// position). Deterministic for a fixed seed. Only the first min(features, scores) candidates
// are considered.
std::vector<int64_t> SelectDiverse(const std::vector<std::vector<float>>& features,
                                   const std::vector<double>& scores, int64_t k, uint64_t seed);

// Euclidean k-means (k-means++ seeding from std::mt19937_64(seed), then Lloyd iterations until
// the assignments stop changing or `max_iterations` passes). Returns each point's cluster in
// [0, k); a cluster may end up empty. k is capped at the number of points; k <= 0 or no points
// returns an empty vector. Shorter points are zero-padded and NaN counts as 0.
std::vector<int> KMeans(const std::vector<std::vector<float>>& points, int k, uint64_t seed,
                        int max_iterations = 50);

}  // namespace ulmfit
