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
//   bald, badge:      the entropy, as a fallback order (their selections need more than one
//                     probability vector: BaldScore, GradientEmbedding + KMeansPlusPlusSelect)
//   kmeans:           0 (it does not rank by uncertainty; SelectNearestToCentres)
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

// BALD (Houlsby et al. 2011; Gal, Islam & Ghahramani, ICML 2017): the mutual information between
// the prediction and the model's weights, estimated from T stochastic (MC dropout) passes:
// H(mean_t p_t) - mean_t H(p_t). High when the passes disagree with each other, not merely when
// each is unsure. Empty `passes` scores 0; NaN entries count as 0.
double BaldScore(const std::vector<std::vector<float>>& passes);

// BADGE (Ash et al., ICLR 2020): the gradient of the cross-entropy at the model's own predicted
// label with respect to the last linear layer's weights, (p - onehot(argmax p)) x h, flattened
// class-major (C * H values). Its norm is the model's uncertainty, its direction what the
// example would teach.
std::vector<float> GradientEmbedding(const std::vector<float>& probs,
                                     const std::vector<float>& hidden);

// BADGE's selection: k-means++ seeding used as a sampler. The first pick is the point of largest
// norm, each next one drawn with probability proportional to its squared distance from the
// nearest pick so far, so the batch is both uncertain (large gradients) and diverse. Returns k
// distinct positions (all of them when k >= size) in pick order; deterministic for a seed.
std::vector<int64_t> KMeansPlusPlusSelect(const std::vector<std::vector<float>>& points,
                                          int64_t k, uint64_t seed);

// Cold start without any label (Yu et al., ACL 2023 section 3; Chang et al. 2021): k-means with k
// clusters over the L2-normalised features, then from each cluster the point nearest its centre
// (the most typical text of each region of the pool). Empty clusters are filled with the points
// farthest from every centre chosen so far. Returns k distinct positions (all when k >= size),
// ascending; deterministic for a seed.
std::vector<int64_t> SelectNearestToCentres(const std::vector<std::vector<float>>& features,
                                            int64_t k, uint64_t seed);

// Class balance while few labels exist: the best-scored candidate predicted as each class in
// turn (classes in order of their best candidate), then round after round, so a model that
// still predicts one class for most of the pool cannot spend a whole batch on it. Returns k
// positions (all when k >= size) in pick order.
std::vector<int64_t> SelectBalanced(const std::vector<double>& scores,
                                    const std::vector<int64_t>& predicted, int64_t k);

// What a model says about each candidate text; a strategy reads the views it needs
// (NeedsViews) and the others may stay empty.
struct CandidateViews {
  std::vector<int64_t> ids;                     // pool positions: random's scores, tie-breaks
  std::vector<std::vector<float>> probs;        // class probabilities
  std::vector<std::vector<float>> features;     // diverse: the classifier's pooled features;
                                                // kmeans: the fine-tuned LM's (no head needed)
  std::vector<std::vector<float>> last_hidden;  // badge: the head's last layer input
  std::vector<std::vector<std::vector<float>>> mc_probs;  // bald: T dropout passes each
};

struct ViewsNeeded {
  bool probs = false, features = false, last_hidden = false, mc_passes = false;
};
ViewsNeeded NeedsViews(Strategy s);

struct SelectOptions {
  int64_t k = 20;
  uint64_t seed = 0;
  int candidates_per_query = 10;  // diverse: cluster the k * N most uncertain
  bool balanced = false;          // score-ranked strategies: SelectBalanced by predicted class
};

// Positions (into the views) of the k candidates `strategy` picks: best first for the
// score-ranked strategies, pick order for badge, ascending for kmeans.
std::vector<int64_t> SelectBatch(Strategy strategy, const CandidateViews& views,
                                 const SelectOptions& options);

}  // namespace ulmfit
