#include "train/schedule.h"

#include <gtest/gtest.h>

namespace ulmfit {
namespace {

// Reference values worked out by hand from Howard & Ruder (2018) eq. 3 with T = 1000,
// cut_frac = 0.1 (cut = 100), ratio = 32.
TEST(ScheduleTest, StlrMatchesPaperEquation) {
  EXPECT_DOUBLE_EQ(StlrFactor(0, 1000, 0.1, 32), 1.0 / 32);
  EXPECT_DOUBLE_EQ(StlrFactor(50, 1000, 0.1, 32), 16.5 / 32);
  EXPECT_DOUBLE_EQ(StlrFactor(100, 1000, 0.1, 32), 1.0);
  EXPECT_DOUBLE_EQ(StlrFactor(550, 1000, 0.1, 32), 16.5 / 32);
  EXPECT_DOUBLE_EQ(StlrFactor(1000, 1000, 0.1, 32), 1.0 / 32);
  // Past the end it stays at the floor instead of going negative.
  EXPECT_DOUBLE_EQ(StlrFactor(5000, 1000, 0.1, 32), 1.0 / 32);
}

TEST(ScheduleTest, StlrScheduleScalesPeakLearningRate) {
  ScheduleConfig config;
  config.kind = ScheduleKind::kStlr;
  config.cut_frac = 0.1;
  config.ratio = 32;
  const LrSchedule schedule(config, 0.01, 0.7, 1000);
  EXPECT_DOUBLE_EQ(schedule.At(100).lr, 0.01);
  EXPECT_DOUBLE_EQ(schedule.At(0).lr, 0.01 / 32);
  EXPECT_DOUBLE_EQ(schedule.At(0).beta1, 0.7);  // STLR does not cycle momentum
}

// fastai v2 fit_one_cycle with lr_max 0.01, div 25, div_final 1e5, pct_start 0.25,
// moms (0.8, 0.7, 0.8), T = 1000.
TEST(ScheduleTest, OneCycleMatchesFastaiCosineSchedule) {
  ScheduleConfig config;
  config.kind = ScheduleKind::kOneCycle;
  const LrSchedule schedule(config, 0.01, 0.9, 1000);
  EXPECT_NEAR(schedule.At(0).lr, 0.0004, 1e-12);
  EXPECT_NEAR(schedule.At(0).beta1, 0.8, 1e-12);
  EXPECT_NEAR(schedule.At(125).lr, 0.0052, 1e-12);
  EXPECT_NEAR(schedule.At(125).beta1, 0.75, 1e-12);
  EXPECT_NEAR(schedule.At(250).lr, 0.01, 1e-12);
  EXPECT_NEAR(schedule.At(250).beta1, 0.7, 1e-12);
  EXPECT_NEAR(schedule.At(625).lr, 0.00500005, 1e-12);
  EXPECT_NEAR(schedule.At(625).beta1, 0.75, 1e-12);
  EXPECT_NEAR(schedule.At(1000).lr, 1e-7, 1e-15);
  EXPECT_NEAR(schedule.At(1000).beta1, 0.8, 1e-12);
}

TEST(ScheduleTest, ConstantScheduleKeepsLearningRateAndBeta) {
  ScheduleConfig config;
  config.kind = ScheduleKind::kConstant;
  const LrSchedule schedule(config, 0.003, 0.7, 10);
  EXPECT_DOUBLE_EQ(schedule.At(0).lr, 0.003);
  EXPECT_DOUBLE_EQ(schedule.At(9).lr, 0.003);
  EXPECT_DOUBLE_EQ(schedule.At(9).beta1, 0.7);
}

}  // namespace
}  // namespace ulmfit
