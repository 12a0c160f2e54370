#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace ulmfit {

double StlrFactor(int64_t step, int64_t total_steps, double cut_frac, double ratio) {
  const double t = static_cast<double>(std::min(step, total_steps));
  // floor(T * cut_frac), at least 1 so tiny runs still have a peak.
  const double cut = std::max(1.0, std::floor(static_cast<double>(total_steps) * cut_frac));
  double p;
  if (t < cut) {
    p = t / cut;
  } else {
    // The arXiv v5 denominator cut * (1/cut_frac - 1) (= T - cut when T*cut_frac is whole).
    p = 1.0 - (t - cut) / (cut * (1.0 / cut_frac - 1.0));
  }
  p = std::max(p, 0.0);
  return (1.0 + p * (ratio - 1.0)) / ratio;
}

double CosineInterpolate(double start, double end, double pos) {
  return start + (1.0 + std::cos(M_PI * (1.0 - pos))) * (end - start) / 2.0;
}

LrSchedule::LrSchedule(const ScheduleConfig& config, double lr_max, double default_beta1,
                       int64_t total_steps)
    : config_(config), lr_max_(lr_max), default_beta1_(default_beta1),
      total_steps_(std::max<int64_t>(total_steps, 1)) {}

ScheduleValue LrSchedule::At(int64_t step) const {
  if (config_.kind == ScheduleKind::kStlr) {
    return {lr_max_ * StlrFactor(step, total_steps_, config_.cut_frac, config_.ratio),
            default_beta1_};
  }
  if (config_.kind == ScheduleKind::kOneCycle) {
    // fastai v2 fit_one_cycle: position in [0, 1) over the whole run, split at pct_start.
    const double pos = std::min(1.0, static_cast<double>(step) / total_steps_);
    const double lr_start = lr_max_ / config_.div;
    const double lr_end = lr_max_ / config_.div_final;
    if (pos < config_.pct_start) {
      const double phase = pos / config_.pct_start;
      return {CosineInterpolate(lr_start, lr_max_, phase),
              CosineInterpolate(config_.mom_max, config_.mom_min, phase)};
    }
    const double phase = (pos - config_.pct_start) / (1.0 - config_.pct_start);
    return {CosineInterpolate(lr_max_, lr_end, phase),
            CosineInterpolate(config_.mom_min, config_.mom_max, phase)};
  }
  return {lr_max_, default_beta1_};  // constant
}

}  // namespace ulmfit
