#include "infer/metrics.h"

namespace ulmfit {

ClassificationMetrics ComputeMetrics(const std::vector<int64_t>& truth,
                                     const std::vector<int64_t>& predicted, int num_classes,
                                     double loss) {
  ClassificationMetrics m;
  m.loss = loss;
  m.count = static_cast<int64_t>(truth.size());
  m.confusion.assign(num_classes, std::vector<int64_t>(num_classes, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    ++m.confusion[truth[i]][predicted[i]];
    correct += truth[i] == predicted[i];
  }
  m.accuracy = m.count ? static_cast<double>(correct) / m.count : 0;
  m.error_rate = m.count ? 1 - m.accuracy : 0;
  // Macro-F1 over the classes present in truth or predictions (sklearn averages all labels;
  // a class absent from both contributes nothing either way here).
  double f1_sum = 0;
  int classes = 0;
  for (int c = 0; c < num_classes; ++c) {
    int64_t tp = m.confusion[c][c], fp = 0, fn = 0;
    for (int o = 0; o < num_classes; ++o) {
      if (o == c) continue;
      fp += m.confusion[o][c];
      fn += m.confusion[c][o];
    }
    if (tp + fp + fn == 0) continue;
    f1_sum += 2.0 * tp / (2.0 * tp + fp + fn);
    ++classes;
  }
  m.macro_f1 = classes ? f1_sum / classes : 0;
  return m;
}

std::string ConfusionMatrixCsv(const ClassificationMetrics& metrics,
                               const std::vector<std::string>& class_names) {
  auto quote = [](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  std::string csv = "true\\predicted";
  for (const auto& name : class_names) csv += "," + quote(name);
  csv += "\n";
  for (size_t t = 0; t < metrics.confusion.size(); ++t) {
    csv += quote(class_names[t]);
    for (int64_t n : metrics.confusion[t]) csv += "," + std::to_string(n);
    csv += "\n";
  }
  return csv;
}

}  // namespace ulmfit
