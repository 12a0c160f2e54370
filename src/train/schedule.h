// Learning-rate and momentum schedules: slanted triangular (Howard & Ruder 2018, eq. 3),
// fastai's one-cycle (cosine warm-up then cosine annealing, momentum cycled inversely), constant.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace ulmfit {

struct ScheduleValue {
  double lr;     // learning rate for the top layer group at this step
  double beta1;  // Adam beta1 at this step
};

class LrSchedule {
 public:
  // `total_steps` is the number of optimizer updates over the whole stage (epochs * batches).
  LrSchedule(const ScheduleConfig& config, double lr_max, double default_beta1, int64_t total_steps);

  // Value for update number `step` (0-based); steps past the end stay at the last value.
  ScheduleValue At(int64_t step) const;

  int64_t total_steps() const { return total_steps_; }

 private:
  ScheduleConfig config_;
  double lr_max_;
  double default_beta1_;
  int64_t total_steps_;
};

// STLR multiplier in (0, 1], exposed for tests: eta_t / eta_max.
double StlrFactor(int64_t step, int64_t total_steps, double cut_frac, double ratio);

// fastai's SchedCos: cosine interpolation from `start` to `end` as pos goes 0 -> 1.
double CosineInterpolate(double start, double end, double pos);

}  // namespace ulmfit
