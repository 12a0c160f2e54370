// The target task's data as stages 2 and 3 see it: labelled train/valid/test splits read per
// the `task` section, plus optional unlabelled text.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "data/labeled_data.h"
#include "util/status.h"

namespace ulmfit {

struct TaskData {
  LabeledData train;
  LabeledData valid;
  LabeledData test;                    // empty when task.test is not set
  std::vector<std::string> unlabeled;  // task.unlabeled documents
};

// Reads every split named in `task`, holds out validation data when none is given, and applies
// the max_*_examples samples and max_unlabeled. Logs one line per split and one warning per file with skipped rows.
absl::StatusOr<TaskData> LoadTaskData(const TaskDataConfig& task, uint64_t seed,
                                      bool with_unlabeled);

}  // namespace ulmfit
