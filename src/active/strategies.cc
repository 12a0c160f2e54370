#include "active/strategies.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>

#include "util/random.h"

namespace ulmfit {
namespace {

// Probabilities from a broken row (NaN, inf, negative) must not crash or dominate a ranking.
double CleanProb(float p) { return std::isfinite(p) && p > 0 ? p : 0.0; }

// NaN scores rank below everything, keeping the order a strict weak ordering.
double RankKey(double score) {
  return std::isnan(score) ? -std::numeric_limits<double>::infinity() : score;
}

// True if (a_score, a_index) ranks before (b_score, b_index): score desc, then index asc.
bool Better(double a_score, int64_t a_index, double b_score, int64_t b_index) {
  const double a = RankKey(a_score), b = RankKey(b_score);
  if (a != b) return a > b;
  return a_index < b_index;
}

bool BetterItem(const ScoredIndex& a, const ScoredIndex& b) {
  return Better(a.score, a.index, b.score, b.index);
}

double Entropy(const std::vector<float>& probs) {
  double h = 0;
  for (float raw : probs) {
    const double p = CleanProb(raw);
    if (p > 0) h -= p * std::log(p);
  }
  return h;
}

double SquaredDistance(const double* a, const double* b, size_t dim) {
  double d = 0;
  for (size_t i = 0; i < dim; ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
  return d;
}

}  // namespace

absl::StatusOr<Strategy> ParseStrategy(std::string_view name) {
  // Plain std::string concatenation: absl::StrCat takes absl::string_view, which is not
  // std::string_view in this Abseil build.
  Strategy strategy;
  if (ParseEnum(name, &strategy)) return strategy;
  std::string valid;
  for (const std::string& n : EnumNames<Strategy>()) valid += (valid.empty() ? "" : ", ") + n;
  return absl::InvalidArgumentError("unknown active-learning strategy \"" + std::string(name) +
                                    "\"; valid: " + valid);
}

std::string_view StrategyName(Strategy s) {
  for (const EnumEntry<Strategy>& entry : EnumTable<Strategy>::kEntries) {
    if (entry.value == s) return entry.name;
  }
  return "unknown";
}

double UncertaintyScore(Strategy s, const std::vector<float>& probs, uint64_t seed,
                        int64_t example_index) {
  switch (s) {
    case Strategy::kRandom:
      // Hashing the seed first keeps (seed, index) pairs such as (1, 0) and (0, 1) apart.
      return UnitUniform(SplitMix64(SplitMix64(seed) ^ static_cast<uint64_t>(example_index)));
    case Strategy::kEntropy:
    case Strategy::kDiverse:
    case Strategy::kBald:
    case Strategy::kBadge:
      return Entropy(probs);
    case Strategy::kKMeans:
      return 0;
    case Strategy::kLeastConfidence: {
      if (probs.empty()) return 0;
      double top = 0;
      for (float p : probs) top = std::max(top, CleanProb(p));
      return 1 - top;
    }
    case Strategy::kMargin: {
      // With one class there is nothing to confuse it with.
      if (probs.size() < 2) return 0;
      double top1 = 0, top2 = 0;
      for (float raw : probs) {
        const double p = CleanProb(raw);
        if (p > top1) {
          top2 = top1;
          top1 = p;
        } else if (p > top2) {
          top2 = p;
        }
      }
      return 1 - (top1 - top2);
    }
  }
  return 0;
}

std::vector<int64_t> TopK(const std::vector<double>& scores, int64_t k) {
  const int64_t n = static_cast<int64_t>(scores.size());
  k = std::clamp<int64_t>(k, 0, n);
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
    return Better(scores[a], a, scores[b], b);
  });
  order.resize(k);
  return order;
}

void TopKeeper::Offer(int64_t index, double score) {
  if (capacity_ == 0) return;
  const ScoredIndex item{index, score};
  // With BetterItem as "less", the heap's top is the worst item kept.
  if (static_cast<int64_t>(heap_.size()) < capacity_) {
    heap_.push_back(item);
    std::push_heap(heap_.begin(), heap_.end(), BetterItem);
  } else if (BetterItem(item, heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), BetterItem);
    heap_.back() = item;
    std::push_heap(heap_.begin(), heap_.end(), BetterItem);
  }
}

std::vector<ScoredIndex> TopKeeper::Items() const {
  std::vector<ScoredIndex> items = heap_;
  std::sort(items.begin(), items.end(), BetterItem);
  return items;
}

std::vector<int> KMeans(const std::vector<std::vector<float>>& points, int k, uint64_t seed,
                        int max_iterations) {
  const size_t n = points.size();
  if (n == 0 || k <= 0) return {};
  if (static_cast<size_t>(k) > n) k = static_cast<int>(n);
  size_t dim = 0;
  for (const auto& p : points) dim = std::max(dim, p.size());
  // One flat, zero-padded, NaN-free copy in double, so the distance loop stays simple.
  std::vector<double> x(n * dim, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t d = 0; d < points[i].size(); ++d) {
      const float v = points[i][d];
      x[i * dim + d] = std::isfinite(v) ? v : 0.0;
    }
  }
  const auto point = [&](size_t i) { return x.data() + i * dim; };

  // k-means++ seeding: each new centre is drawn with probability proportional to its squared
  // distance from the nearest centre so far, which spreads the centres over the data.
  std::mt19937_64 rng(seed);
  std::vector<double> centres;
  centres.reserve(k * dim);
  const size_t first = rng() % n;
  centres.insert(centres.end(), point(first), point(first) + dim);
  std::vector<double> nearest(n);
  for (size_t i = 0; i < n; ++i) nearest[i] = SquaredDistance(point(i), point(first), dim);
  for (int c = 1; c < k; ++c) {
    double total = 0;
    for (double d : nearest) total += d;
    size_t pick = 0;
    if (total > 0) {
      double target = UnitUniform(rng()) * total;
      for (size_t i = 0; i < n; ++i) {
        if (nearest[i] <= 0) continue;
        pick = i;  // if rounding never takes target below 0, the last eligible point wins
        target -= nearest[i];
        if (target < 0) break;
      }
    } else {
      pick = rng() % n;  // every point already coincides with a centre
    }
    centres.insert(centres.end(), point(pick), point(pick) + dim);
    for (size_t i = 0; i < n; ++i) {
      nearest[i] = std::min(nearest[i], SquaredDistance(point(i), point(pick), dim));
    }
  }

  // Lloyd iterations. An empty cluster keeps its previous centre.
  std::vector<int> assignment(n, -1);
  std::vector<double> sums(k * dim);
  std::vector<int64_t> counts(k);
  for (int iteration = 0; iteration < std::max(1, max_iterations); ++iteration) {
    bool changed = false;
    for (size_t i = 0; i < n; ++i) {
      int best = 0;
      double best_distance = SquaredDistance(point(i), centres.data(), dim);
      for (int c = 1; c < k; ++c) {
        const double d = SquaredDistance(point(i), centres.data() + c * dim, dim);
        if (d < best_distance) {  // ties go to the lower cluster id
          best = c;
          best_distance = d;
        }
      }
      changed |= assignment[i] != best;
      assignment[i] = best;
    }
    if (!changed) break;
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      const int c = assignment[i];
      ++counts[c];
      for (size_t d = 0; d < dim; ++d) sums[c * dim + d] += point(i)[d];
    }
    for (int c = 0; c < k; ++c) {
      if (counts[c] == 0) continue;
      for (size_t d = 0; d < dim; ++d) centres[c * dim + d] = sums[c * dim + d] / counts[c];
    }
  }
  return assignment;
}

std::vector<int64_t> SelectDiverse(const std::vector<std::vector<float>>& features,
                                   const std::vector<double>& scores, int64_t k, uint64_t seed) {
  const size_t n = std::min(features.size(), scores.size());
  if (k <= 0 || n == 0) return {};
  const std::vector<double> pool_scores(scores.begin(), scores.begin() + n);
  if (static_cast<size_t>(k) >= n) return TopK(pool_scores, k);

  // Normalising makes distance depend on direction only (cosine), not on feature magnitude.
  std::vector<std::vector<float>> unit(features.begin(), features.begin() + n);
  for (auto& v : unit) {
    double norm = 0;
    for (float& f : v) {
      if (!std::isfinite(f)) f = 0;
      norm += static_cast<double>(f) * f;
    }
    if (norm > 0) {
      const double inv = 1 / std::sqrt(norm);
      for (float& f : v) f = static_cast<float>(f * inv);
    }
  }
  const std::vector<int> cluster = KMeans(unit, static_cast<int>(k), seed);

  // Walking candidates best first, the first one seen in each cluster is that cluster's best.
  const std::vector<int64_t> ranked = TopK(pool_scores, static_cast<int64_t>(n));
  std::vector<char> cluster_taken(k, 0), used(n, 0);
  std::vector<int64_t> picked;
  for (int64_t i : ranked) {
    if (cluster_taken[cluster[i]]) continue;
    cluster_taken[cluster[i]] = 1;
    used[i] = 1;
    picked.push_back(i);
  }
  // Empty clusters leave gaps; fill them with the best candidates not yet taken.
  for (int64_t i : ranked) {
    if (static_cast<int64_t>(picked.size()) >= k) break;
    if (!used[i]) picked.push_back(i);
  }
  std::sort(picked.begin(), picked.end(), [&](int64_t a, int64_t b) {
    return Better(pool_scores[a], a, pool_scores[b], b);
  });
  return picked;
}

namespace {

// Flat, zero-padded, NaN-free copies in double, so the distance loops stay simple.
struct FlatPoints {
  size_t n = 0, dim = 0;
  std::vector<double> x;
  const double* operator[](size_t i) const { return x.data() + i * dim; }
};

FlatPoints Flatten(const std::vector<std::vector<float>>& points, bool normalise) {
  FlatPoints flat;
  flat.n = points.size();
  for (const auto& p : points) flat.dim = std::max(flat.dim, p.size());
  flat.x.assign(flat.n * flat.dim, 0.0);
  for (size_t i = 0; i < flat.n; ++i) {
    double norm = 0;
    for (size_t d = 0; d < points[i].size(); ++d) {
      const float v = points[i][d];
      const double clean = std::isfinite(v) ? v : 0.0;
      flat.x[i * flat.dim + d] = clean;
      norm += clean * clean;
    }
    if (normalise && norm > 0) {
      const double inv = 1 / std::sqrt(norm);
      for (size_t d = 0; d < flat.dim; ++d) flat.x[i * flat.dim + d] *= inv;
    }
  }
  return flat;
}

}  // namespace

double BaldScore(const std::vector<std::vector<float>>& passes) {
  if (passes.empty()) return 0;
  size_t classes = 0;
  for (const auto& p : passes) classes = std::max(classes, p.size());
  std::vector<double> mean(classes, 0.0);
  double mean_entropy = 0;
  for (const auto& p : passes) {
    for (size_t c = 0; c < p.size(); ++c) mean[c] += CleanProb(p[c]);
    mean_entropy += Entropy(p);
  }
  const double t = static_cast<double>(passes.size());
  mean_entropy /= t;
  double entropy_of_mean = 0;
  for (double& m : mean) {
    m /= t;
    if (m > 0) entropy_of_mean -= m * std::log(m);
  }
  // Jensen makes this >= 0; rounding may leave a tiny negative.
  return std::max(0.0, entropy_of_mean - mean_entropy);
}

std::vector<float> GradientEmbedding(const std::vector<float>& probs,
                                     const std::vector<float>& hidden) {
  size_t top = 0;
  for (size_t c = 1; c < probs.size(); ++c) {
    if (CleanProb(probs[c]) > CleanProb(probs[top])) top = c;
  }
  std::vector<float> out(probs.size() * hidden.size());
  for (size_t c = 0; c < probs.size(); ++c) {
    const double g = CleanProb(probs[c]) - (c == top ? 1.0 : 0.0);
    for (size_t h = 0; h < hidden.size(); ++h) {
      const float v = std::isfinite(hidden[h]) ? hidden[h] : 0.0f;
      out[c * hidden.size() + h] = static_cast<float>(g * v);
    }
  }
  return out;
}

std::vector<int64_t> KMeansPlusPlusSelect(const std::vector<std::vector<float>>& points,
                                          int64_t k, uint64_t seed) {
  const FlatPoints flat = Flatten(points, /*normalise=*/false);
  const size_t n = flat.n;
  if (k <= 0 || n == 0) return {};
  k = std::min<int64_t>(k, static_cast<int64_t>(n));
  std::vector<double> nearest(n, std::numeric_limits<double>::infinity());
  std::vector<char> taken(n, 0);
  std::vector<int64_t> picked;
  // The largest gradient first (ties: the lower position), as BADGE does.
  size_t first = 0;
  double best_norm = -1;
  for (size_t i = 0; i < n; ++i) {
    double norm = 0;
    for (size_t d = 0; d < flat.dim; ++d) norm += flat[i][d] * flat[i][d];
    if (norm > best_norm) {
      best_norm = norm;
      first = i;
    }
  }
  std::mt19937_64 rng(seed);
  size_t pick = first;
  while (true) {
    taken[pick] = 1;
    picked.push_back(static_cast<int64_t>(pick));
    if (static_cast<int64_t>(picked.size()) >= k) break;
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
      if (taken[i]) continue;
      nearest[i] = std::min(nearest[i], SquaredDistance(flat[i], flat[pick], flat.dim));
      total += nearest[i];
    }
    size_t next = n;
    if (total > 0) {
      double target = UnitUniform(rng()) * total;
      for (size_t i = 0; i < n; ++i) {
        if (taken[i] || nearest[i] <= 0) continue;
        next = i;  // if rounding never takes target below 0, the last eligible point wins
        target -= nearest[i];
        if (target < 0) break;
      }
    }
    if (next == n) {  // every point left coincides with a pick: the first untaken one
      for (size_t i = 0; i < n && next == n; ++i) {
        if (!taken[i]) next = i;
      }
    }
    pick = next;
  }
  return picked;
}

std::vector<int64_t> SelectNearestToCentres(const std::vector<std::vector<float>>& features,
                                            int64_t k, uint64_t seed) {
  const size_t n = features.size();
  if (k <= 0 || n == 0) return {};
  std::vector<int64_t> picked;
  if (static_cast<size_t>(k) >= n) {
    for (size_t i = 0; i < n; ++i) picked.push_back(static_cast<int64_t>(i));
    return picked;
  }
  const FlatPoints flat = Flatten(features, /*normalise=*/true);
  std::vector<std::vector<float>> unit(n, std::vector<float>(flat.dim));
  for (size_t i = 0; i < n; ++i) {
    for (size_t d = 0; d < flat.dim; ++d) unit[i][d] = static_cast<float>(flat[i][d]);
  }
  const std::vector<int> cluster = KMeans(unit, static_cast<int>(k), seed);
  std::vector<double> centres(k * flat.dim, 0.0);
  std::vector<int64_t> counts(k, 0);
  for (size_t i = 0; i < n; ++i) {
    ++counts[cluster[i]];
    for (size_t d = 0; d < flat.dim; ++d) centres[cluster[i] * flat.dim + d] += flat[i][d];
  }
  std::vector<int64_t> best(k, -1);
  std::vector<double> best_distance(k, std::numeric_limits<double>::infinity());
  for (size_t i = 0; i < n; ++i) {
    const int c = cluster[i];
    std::vector<double> centre(centres.begin() + c * flat.dim,
                               centres.begin() + (c + 1) * flat.dim);
    for (double& v : centre) v /= static_cast<double>(counts[c]);
    const double d = SquaredDistance(flat[i], centre.data(), flat.dim);
    if (d < best_distance[c]) {  // ties: the lower position
      best_distance[c] = d;
      best[c] = static_cast<int64_t>(i);
    }
  }
  std::vector<char> taken(n, 0);
  for (int64_t b : best) {
    if (b >= 0) {
      taken[b] = 1;
      picked.push_back(b);
    }
  }
  // Empty clusters: the points farthest from everything chosen so far.
  while (static_cast<int64_t>(picked.size()) < k) {
    size_t far = n;
    double far_distance = -1;
    for (size_t i = 0; i < n; ++i) {
      if (taken[i]) continue;
      double d = std::numeric_limits<double>::infinity();
      for (int64_t p : picked) d = std::min(d, SquaredDistance(flat[i], flat[p], flat.dim));
      if (d > far_distance) {
        far_distance = d;
        far = i;
      }
    }
    taken[far] = 1;
    picked.push_back(static_cast<int64_t>(far));
  }
  std::sort(picked.begin(), picked.end());
  return picked;
}

std::vector<int64_t> SelectBalanced(const std::vector<double>& scores,
                                    const std::vector<int64_t>& predicted, int64_t k) {
  const size_t n = std::min(scores.size(), predicted.size());
  const std::vector<double> pool_scores(scores.begin(), scores.begin() + n);
  const std::vector<int64_t> ranked = TopK(pool_scores, static_cast<int64_t>(n));
  // Each class's candidates best first; classes in the order their best candidate ranks.
  std::vector<int64_t> class_order;
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (int64_t i : ranked) {
    auto& list = by_class[predicted[i]];
    if (list.empty()) class_order.push_back(predicted[i]);
    list.push_back(i);
  }
  std::vector<int64_t> picked;
  k = std::clamp<int64_t>(k, 0, static_cast<int64_t>(n));
  for (size_t turn = 0; static_cast<int64_t>(picked.size()) < k; ++turn) {
    for (int64_t c : class_order) {
      const auto& list = by_class[c];
      if (turn < list.size() && static_cast<int64_t>(picked.size()) < k) {
        picked.push_back(list[turn]);
      }
    }
  }
  return picked;
}

ViewsNeeded NeedsViews(Strategy s) {
  ViewsNeeded needed;
  switch (s) {
    case Strategy::kRandom:
      break;
    case Strategy::kKMeans:
      needed.features = true;
      break;
    case Strategy::kDiverse:
      needed.probs = needed.features = true;
      break;
    case Strategy::kBadge:
      needed.probs = needed.last_hidden = true;
      break;
    case Strategy::kBald:
      needed.probs = needed.mc_passes = true;
      break;
    case Strategy::kLeastConfidence:
    case Strategy::kMargin:
    case Strategy::kEntropy:
      needed.probs = true;
      break;
  }
  return needed;
}

std::vector<int64_t> SelectBatch(Strategy strategy, const CandidateViews& views,
                                 const SelectOptions& options) {
  const size_t n = views.ids.size();
  const int64_t k = std::clamp<int64_t>(options.k, 0, static_cast<int64_t>(n));
  if (k == 0) return {};
  switch (strategy) {
    case Strategy::kKMeans:
      return SelectNearestToCentres(views.features, k, options.seed);
    case Strategy::kBadge: {
      std::vector<std::vector<float>> gradients(n);
      for (size_t i = 0; i < n; ++i) {
        gradients[i] = GradientEmbedding(views.probs.at(i), views.last_hidden.at(i));
      }
      return KMeansPlusPlusSelect(gradients, k, options.seed);
    }
    case Strategy::kDiverse: {
      std::vector<double> scores(n);
      for (size_t i = 0; i < n; ++i) scores[i] = Entropy(views.probs.at(i));
      const std::vector<int64_t> top =
          TopK(scores, k * std::max(1, options.candidates_per_query));
      std::vector<std::vector<float>> features;
      std::vector<double> top_scores;
      for (int64_t i : top) {
        features.push_back(views.features.at(i));
        top_scores.push_back(scores[i]);
      }
      std::vector<int64_t> picked;
      for (int64_t p : SelectDiverse(features, top_scores, k, options.seed)) {
        picked.push_back(top[p]);
      }
      return picked;
    }
    default:
      break;
  }
  std::vector<double> scores(n);
  std::vector<int64_t> predicted(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (strategy == Strategy::kBald) {
      scores[i] = BaldScore(views.mc_probs.at(i));
    } else {
      static const std::vector<float> kNone;
      scores[i] = UncertaintyScore(strategy, strategy == Strategy::kRandom ? kNone : views.probs.at(i),
                                   options.seed, views.ids[i]);
    }
    if (i < views.probs.size()) {
      const auto& p = views.probs[i];
      predicted[i] = std::max_element(p.begin(), p.end()) - p.begin();
    }
  }
  if (options.balanced && strategy != Strategy::kRandom) {
    return SelectBalanced(scores, predicted, k);
  }
  return TopK(scores, k);
}

}  // namespace ulmfit
