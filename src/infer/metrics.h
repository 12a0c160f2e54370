// Classification metrics: accuracy, error rate, macro-F1 and the confusion matrix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ulmfit {

struct ClassificationMetrics {
  double loss = 0;
  double accuracy = 0;
  double error_rate = 0;
  double macro_f1 = 0;
  int64_t count = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

// `loss` is the mean loss the caller measured; it is copied into the result.
ClassificationMetrics ComputeMetrics(const std::vector<int64_t>& truth,
                                     const std::vector<int64_t>& predicted, int num_classes,
                                     double loss);

// "true\\predicted,a,b\na,3,1\nb,0,4\n"
std::string ConfusionMatrixCsv(const ClassificationMetrics& metrics,
                               const std::vector<std::string>& class_names);

}  // namespace ulmfit
