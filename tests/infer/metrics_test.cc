#include "infer/metrics.h"

#include <gtest/gtest.h>

namespace ulmfit {
namespace {

TEST(MetricsTest, AccuracyMacroF1AndConfusionMatchHandComputation) {
  const std::vector<int64_t> truth = {0, 0, 1, 1, 2};
  const std::vector<int64_t> pred = {0, 0, 1, 0, 1};
  const ClassificationMetrics m = ComputeMetrics(truth, pred, 3, 0.5);
  EXPECT_DOUBLE_EQ(m.accuracy, 3.0 / 5);
  EXPECT_DOUBLE_EQ(m.error_rate, 2.0 / 5);
  EXPECT_DOUBLE_EQ(m.loss, 0.5);
  // class 0: tp 2 fp 1 fn 0 -> 4/5; class 1: tp 1 fp 1 fn 1 -> 1/2; class 2: tp 0 fn 1 -> 0.
  EXPECT_DOUBLE_EQ(m.macro_f1, (0.8 + 0.5 + 0.0) / 3);
  EXPECT_EQ(m.confusion[1][0], 1);
  EXPECT_EQ(m.confusion[2][1], 1);
  EXPECT_EQ(m.confusion[0][0], 2);
  EXPECT_EQ(ConfusionMatrixCsv(m, {"a", "b", "c,d"}),
            "true\\predicted,a,b,\"c,d\"\na,2,0,0\nb,1,1,0\n\"c,d\",0,1,0\n");
}

}  // namespace
}  // namespace ulmfit
