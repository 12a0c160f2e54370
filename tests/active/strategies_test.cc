#include "active/strategies.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>

namespace ulmfit {
namespace {

double Score(Strategy s, const std::vector<float>& probs) {
  return UncertaintyScore(s, probs, 0, 0);
}

TEST(ActiveStrategiesTest, ScoresMatchHandComputation) {
  const std::vector<float> p = {0.7f, 0.2f, 0.1f};
  EXPECT_NEAR(Score(Strategy::kLeastConfidence, p), 0.3, 1e-6);
  EXPECT_NEAR(Score(Strategy::kMargin, p), 1 - (0.7 - 0.2), 1e-6);
  // -(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1) = 0.24967 + 0.32189 + 0.23026
  EXPECT_NEAR(Score(Strategy::kEntropy, p), 0.8018186, 1e-6);
  EXPECT_DOUBLE_EQ(Score(Strategy::kDiverse, p), Score(Strategy::kEntropy, p));

  // A confident (one-hot) prediction is worth nothing to label.
  const std::vector<float> one_hot = {0, 1, 0};
  EXPECT_DOUBLE_EQ(Score(Strategy::kLeastConfidence, one_hot), 0);
  EXPECT_DOUBLE_EQ(Score(Strategy::kMargin, one_hot), 0);
  EXPECT_DOUBLE_EQ(Score(Strategy::kEntropy, one_hot), 0);

  // Uniform over C = 4 classes is the most uncertain: 1 - 1/C, margin 1, entropy ln C.
  const std::vector<float> uniform = {0.25f, 0.25f, 0.25f, 0.25f};
  EXPECT_DOUBLE_EQ(Score(Strategy::kLeastConfidence, uniform), 0.75);
  EXPECT_DOUBLE_EQ(Score(Strategy::kMargin, uniform), 1);
  EXPECT_NEAR(Score(Strategy::kEntropy, uniform), std::log(4.0), 1e-12);

  const std::vector<float> one_class = {1};
  EXPECT_DOUBLE_EQ(Score(Strategy::kLeastConfidence, one_class), 0);
  EXPECT_DOUBLE_EQ(Score(Strategy::kMargin, one_class), 0);
  EXPECT_DOUBLE_EQ(Score(Strategy::kEntropy, one_class), 0);
}

TEST(ActiveStrategiesTest, EmptyAndNanProbabilitiesAreHandled) {
  for (Strategy s : {Strategy::kLeastConfidence, Strategy::kMargin, Strategy::kEntropy,
                     Strategy::kDiverse}) {
    EXPECT_DOUBLE_EQ(Score(s, {}), 0) << StrategyName(s);
  }
  // The NaN counts as 0, leaving (0.6, 0.4): 0.4, 1 - 0.2, -(0.6 ln 0.6 + 0.4 ln 0.4).
  const std::vector<float> p = {std::numeric_limits<float>::quiet_NaN(), 0.6f, 0.4f};
  EXPECT_NEAR(Score(Strategy::kLeastConfidence, p), 0.4, 1e-6);
  EXPECT_NEAR(Score(Strategy::kMargin, p), 0.8, 1e-6);
  EXPECT_NEAR(Score(Strategy::kEntropy, p), 0.6730117, 1e-6);
}

TEST(ActiveStrategiesTest, MarginAndLeastConfidenceRankDifferently) {
  // a: two classes nearly tied but the top one fairly sure; b: spread out but a clear winner.
  const std::vector<std::vector<float>> probs = {
      {0.5f, 0.49f, 0.01f},  // least_conf 0.5, margin 0.99
      {0.4f, 0.3f, 0.3f},    // least_conf 0.6, margin 0.9
      {0.9f, 0.05f, 0.05f},  // least_conf 0.1, margin 0.15
  };
  auto rank = [&](Strategy s) {
    std::vector<double> scores;
    for (const auto& p : probs) scores.push_back(Score(s, p));
    return TopK(scores, 3);
  };
  EXPECT_EQ(rank(Strategy::kLeastConfidence), (std::vector<int64_t>{1, 0, 2}));
  EXPECT_EQ(rank(Strategy::kMargin), (std::vector<int64_t>{0, 1, 2}));
}

TEST(ActiveStrategiesTest, RandomIsStablePerSeedAndIndexAndRoughlyUniform) {
  const std::vector<float> p = {0.5f, 0.5f};
  EXPECT_EQ(UncertaintyScore(Strategy::kRandom, p, 7, 123),
            UncertaintyScore(Strategy::kRandom, {}, 7, 123));  // ignores the probabilities
  EXPECT_NE(UncertaintyScore(Strategy::kRandom, p, 7, 123),
            UncertaintyScore(Strategy::kRandom, p, 8, 123));
  EXPECT_NE(UncertaintyScore(Strategy::kRandom, p, 1, 0),
            UncertaintyScore(Strategy::kRandom, p, 0, 1));
  double sum = 0;
  int differing = 0;
  const int n = 10000;
  for (int i = 0; i < n; ++i) {
    const double u = UncertaintyScore(Strategy::kRandom, p, 42, i);
    ASSERT_GE(u, 0);
    ASSERT_LT(u, 1);
    sum += u;
    differing += u != UncertaintyScore(Strategy::kRandom, p, 43, i);
  }
  EXPECT_LT(std::abs(sum / n - 0.5), 0.02);
  EXPECT_EQ(differing, n);
}

TEST(ActiveStrategiesTest, TopKOrdersByScoreThenIndex) {
  const std::vector<double> scores = {0.5, 0.9, 0.5, 0.1, 0.9};
  EXPECT_EQ(TopK(scores, 3), (std::vector<int64_t>{1, 4, 0}));
  EXPECT_EQ(TopK(scores, 10), (std::vector<int64_t>{1, 4, 0, 2, 3}));
  EXPECT_TRUE(TopK(scores, 0).empty());
  EXPECT_TRUE(TopK(scores, -1).empty());
  EXPECT_TRUE(TopK({}, 3).empty());
  EXPECT_EQ(TopK({std::nan(""), 0.2}, 2), (std::vector<int64_t>{1, 0}));
}

TEST(ActiveStrategiesTest, TopKeeperMatchesTopKWhateverTheOfferOrder) {
  std::mt19937_64 rng(5);
  std::vector<double> scores(1000);
  // Two decimals, so there are plenty of ties for the index rule to break.
  for (double& s : scores) s = std::round(std::uniform_real_distribution<>(0, 1)(rng) * 100) / 100;
  std::vector<int64_t> offer_order(scores.size());
  for (size_t i = 0; i < offer_order.size(); ++i) offer_order[i] = i;
  std::shuffle(offer_order.begin(), offer_order.end(), rng);
  for (int64_t capacity : {0, 1, 7, 100, 999, 1000, 1500}) {
    TopKeeper keeper(capacity);
    for (int64_t i : offer_order) keeper.Offer(i, scores[i]);
    const std::vector<ScoredIndex> items = keeper.Items();
    const std::vector<int64_t> expected = TopK(scores, capacity);
    ASSERT_EQ(items.size(), expected.size()) << capacity;
    for (size_t r = 0; r < items.size(); ++r) {
      EXPECT_EQ(items[r].index, expected[r]) << capacity << " rank " << r;
      EXPECT_EQ(items[r].score, scores[expected[r]]);
    }
  }
}

TEST(ActiveStrategiesTest, KMeansFindsWellSeparatedBlobsDeterministically) {
  std::mt19937_64 rng(1);
  std::normal_distribution<float> noise(0, 0.3f);
  const float centres[3][2] = {{0, 0}, {10, 0}, {0, 10}};
  std::vector<std::vector<float>> points;
  std::vector<int> blob;
  for (int i = 0; i < 60; ++i) {
    const int b = i % 3;  // interleaved, so blob order is not index order
    points.push_back({centres[b][0] + noise(rng), centres[b][1] + noise(rng)});
    blob.push_back(b);
  }
  for (uint64_t seed = 0; seed < 5; ++seed) {
    const std::vector<int> assignment = KMeans(points, 3, seed);
    ASSERT_EQ(assignment.size(), points.size());
    // Same clusters up to relabelling: one label per blob, three distinct labels.
    std::set<int> labels;
    for (int b = 0; b < 3; ++b) {
      const int label = assignment[b];
      labels.insert(label);
      for (size_t i = b; i < points.size(); i += 3) EXPECT_EQ(assignment[i], label) << seed;
    }
    EXPECT_EQ(labels.size(), 3u) << seed;
    EXPECT_EQ(KMeans(points, 3, seed), assignment);
  }
  EXPECT_TRUE(KMeans({}, 3, 0).empty());
  EXPECT_TRUE(KMeans(points, 0, 0).empty());
  EXPECT_EQ(KMeans({{1, 2}, {3, 4}}, 5, 0).size(), 2u);  // k capped at the point count
  // Short points are zero-padded and NaN counts as 0: {NaN} and {10} sit at (0,0) and (10,0).
  const std::vector<int> padded = KMeans({{0, 0}, {std::nanf("")}, {10}, {10, 0}}, 2, 0);
  EXPECT_EQ(padded[0], padded[1]);
  EXPECT_EQ(padded[2], padded[3]);
  EXPECT_NE(padded[0], padded[2]);
}

TEST(ActiveStrategiesTest, SelectDiverseSkipsNearDuplicates) {
  // Candidates 0..9 are near-copies of one text (best score at 3); 10..12 are three different
  // texts with lower scores. Magnitudes differ on purpose: only direction should matter.
  std::vector<std::vector<float>> features;
  std::vector<double> scores;
  for (int i = 0; i < 10; ++i) {
    features.push_back({3.0f, 0.01f * i, 0, 0});
    scores.push_back(0.8 + 0.01 * ((i * 3) % 10));  // 0.80 0.83 0.86 0.89 0.82 ...
  }
  features.push_back({0, 5, 0, 0});
  features.push_back({0, 0, 0.5f, 0});
  features.push_back({0, 0, 0, 2});
  scores.insert(scores.end(), {0.5, 0.4, 0.3});

  // Plain TopK suggests three copies of the same text.
  EXPECT_EQ(TopK(scores, 3), (std::vector<int64_t>{3, 6, 9}));
  for (uint64_t seed = 0; seed < 10; ++seed) {
    const std::vector<int64_t> picked = SelectDiverse(features, scores, 3, seed);
    ASSERT_EQ(picked.size(), 3u) << seed;
    EXPECT_EQ(picked[0], 3) << seed;  // the best duplicate, and only that one
    EXPECT_GE(picked[1], 10) << seed;
    EXPECT_GE(picked[2], 10) << seed;
    EXPECT_GT(scores[picked[1]], scores[picked[2]]) << seed;
    EXPECT_EQ(SelectDiverse(features, scores, 3, seed), picked);
  }
}

TEST(ActiveStrategiesTest, SelectDiverseEdgeCases) {
  const std::vector<double> scores = {0.2, 0.9, 0.5, 0.7, 0.1};
  // Identical features collapse into one cluster; the empty ones are filled by score.
  const std::vector<std::vector<float>> same(5, std::vector<float>{1, 1});
  EXPECT_EQ(SelectDiverse(same, scores, 3, 0), (std::vector<int64_t>{1, 3, 2}));
  // Asking for at least the whole pool returns all of it, best first.
  const std::vector<std::vector<float>> distinct = {{1, 0}, {0, 1}, {1, 1}, {-1, 0}, {0, -1}};
  EXPECT_EQ(SelectDiverse(distinct, scores, 9, 0), (std::vector<int64_t>{1, 3, 2, 0, 4}));
  EXPECT_TRUE(SelectDiverse(distinct, scores, 0, 0).empty());
  EXPECT_TRUE(SelectDiverse({}, {}, 3, 0).empty());
}

TEST(ActiveStrategiesTest, ParseStrategyRoundTripsAndListsValidNames) {
  for (Strategy s : {Strategy::kLeastConfidence, Strategy::kMargin, Strategy::kEntropy,
                     Strategy::kRandom, Strategy::kDiverse}) {
    const absl::StatusOr<Strategy> parsed = ParseStrategy(StrategyName(s));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, s);
  }
  const absl::StatusOr<Strategy> bad = ParseStrategy("foo");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(bad.status().message());
  EXPECT_NE(message.find("\"foo\""), std::string::npos) << message;
  for (const char* name : {"least_confidence", "margin", "entropy", "random", "diverse"}) {
    EXPECT_NE(message.find(name), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace ulmfit

namespace ulmfit {
namespace {

TEST(ActiveStrategiesTest, BaldIsTheDisagreementBetweenPasses) {
  // Two confident passes that disagree: H(mean) = ln 2, each pass's entropy 0.
  EXPECT_NEAR(BaldScore({{1, 0}, {0, 1}}), std::log(2.0), 1e-9);
  // Passes that agree on being unsure carry no information about the weights.
  EXPECT_NEAR(BaldScore({{0.5f, 0.5f}, {0.5f, 0.5f}}), 0, 1e-9);
  EXPECT_NEAR(BaldScore({{0.7f, 0.3f}}), 0, 1e-9);
  // mean (0.6, 0.4): H = 0.673012; pass entropies H(0.9,0.1) = 0.325083, H(0.3,0.7) = 0.610864.
  EXPECT_NEAR(BaldScore({{0.9f, 0.1f}, {0.3f, 0.7f}}), 0.673012 - (0.325083 + 0.610864) / 2,
              1e-5);
  EXPECT_DOUBLE_EQ(BaldScore({}), 0);
}

TEST(ActiveStrategiesTest, GradientEmbeddingIsProbabilityMinusOneHotTimesHidden) {
  // Predicted class 0: g = p - e0 = (-0.3, 0.2, 0.1); rows of g_c * h, class-major.
  const std::vector<float> g = GradientEmbedding({0.7f, 0.2f, 0.1f}, {1, 2});
  const std::vector<float> expected = {-0.3f, -0.6f, 0.2f, 0.4f, 0.1f, 0.2f};
  ASSERT_EQ(g.size(), expected.size());
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], expected[i], 1e-6) << i;
  // A sure prediction has no gradient.
  for (float v : GradientEmbedding({0, 1}, {3, 4})) EXPECT_FLOAT_EQ(v, 0);
}

TEST(ActiveStrategiesTest, KMeansPlusPlusSelectStartsAtTheLargestAndSpreadsOut) {
  // Three tight groups far apart; the largest-norm point (index 5) comes first.
  const std::vector<std::vector<float>> points = {
      {0, 0}, {0.01f, 0}, {10, 0}, {10, 0.01f}, {0, 12}, {0.01f, 12}};
  for (uint64_t seed : {1, 2, 3}) {
    const std::vector<int64_t> picked = KMeansPlusPlusSelect(points, 3, seed);
    ASSERT_EQ(picked.size(), 3u);
    EXPECT_EQ(picked[0], 5);
    std::set<int64_t> groups;
    for (int64_t p : picked) groups.insert(p / 2);
    EXPECT_EQ(groups.size(), 3u) << "seed " << seed;
    EXPECT_EQ(picked, KMeansPlusPlusSelect(points, 3, seed));
  }
  // Identical points still give distinct picks; k past the size gives all of them.
  const std::vector<std::vector<float>> same(4, std::vector<float>{1, 1});
  const std::vector<int64_t> all = KMeansPlusPlusSelect(same, 9, 5);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 4u);
  EXPECT_TRUE(KMeansPlusPlusSelect(points, 0, 1).empty());
}

TEST(ActiveStrategiesTest, NearestToCentresTakesTheMostTypicalTextOfEachCluster) {
  // Two directions (cosine geometry): around (1, 0) and around (0, 1); the middle of each
  // group (indices 1 and 4) is nearest its centre. Lengths do not matter after normalising.
  const std::vector<std::vector<float>> features = {
      {1, 0.2f}, {5, 0}, {1, -0.2f}, {0.2f, 1}, {0, 3}, {-0.2f, 1}};
  for (uint64_t seed : {1, 2, 3, 4}) {
    EXPECT_EQ(SelectNearestToCentres(features, 2, seed), (std::vector<int64_t>{1, 4}))
        << "seed " << seed;
  }
  EXPECT_EQ(SelectNearestToCentres(features, 10, 1).size(), 6u);
  // Duplicates leave clusters empty; the batch is still k distinct texts.
  const std::vector<std::vector<float>> dup = {{1, 0}, {1, 0}, {1, 0}, {0, 1}};
  const std::vector<int64_t> picked = SelectNearestToCentres(dup, 3, 1);
  EXPECT_EQ(std::set<int64_t>(picked.begin(), picked.end()).size(), 3u);
}

TEST(ActiveStrategiesTest, BalancedSelectionTakesEachPredictedClassInTurn) {
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6, 0.5};
  const std::vector<int64_t> predicted = {0, 0, 0, 1, 2};
  EXPECT_EQ(SelectBalanced(scores, predicted, 3), (std::vector<int64_t>{0, 3, 4}));
  EXPECT_EQ(SelectBalanced(scores, predicted, 4), (std::vector<int64_t>{0, 3, 4, 1}));
  EXPECT_EQ(SelectBalanced(scores, predicted, 9).size(), 5u);
}

TEST(ActiveStrategiesTest, SelectBatchReadsTheViewsItsStrategyNeeds) {
  CandidateViews views;
  views.ids = {10, 11, 12, 13};
  views.probs = {{0.9f, 0.1f}, {0.55f, 0.45f}, {0.2f, 0.8f}, {0.6f, 0.4f}};
  SelectOptions options;
  options.k = 2;
  EXPECT_EQ(SelectBatch(Strategy::kMargin, views, options), (std::vector<int64_t>{1, 3}));
  // Balanced: the most uncertain of class 0 (1), then of class 1 (2).
  options.balanced = true;
  EXPECT_EQ(SelectBatch(Strategy::kMargin, views, options), (std::vector<int64_t>{1, 2}));
  options.balanced = false;
  // BALD ignores the mean probabilities: only text 2's passes disagree.
  views.mc_probs = {{{0.9f, 0.1f}, {0.9f, 0.1f}},
                    {{0.5f, 0.5f}, {0.5f, 0.5f}},
                    {{1, 0}, {0, 1}},
                    {{0.7f, 0.3f}, {0.5f, 0.5f}}};
  EXPECT_EQ(SelectBatch(Strategy::kBald, views, options), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(NeedsViews(Strategy::kBald).mc_passes);
  EXPECT_TRUE(NeedsViews(Strategy::kBadge).last_hidden);
  EXPECT_FALSE(NeedsViews(Strategy::kRandom).probs);
  // Random needs nothing but the ids, and depends on them, not on the positions.
  CandidateViews bare;
  bare.ids = views.ids;
  options.seed = 3;
  EXPECT_EQ(SelectBatch(Strategy::kRandom, bare, options),
            SelectBatch(Strategy::kRandom, views, options));
}

}  // namespace
}  // namespace ulmfit
