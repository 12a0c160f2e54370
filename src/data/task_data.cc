#include "data/task_data.h"

#include <fmt/format.h>

#include "data/corpus.h"
#include "util/progress.h"

namespace ulmfit {
namespace {

absl::StatusOr<LabeledData> ReadSplit(const std::string& path, const TaskDataConfig& task) {
  ASSIGN_OR_RETURN(LabeledData data, ReadLabeledData(path, task));
  if (data.skipped_rows > 0) {
    LogInfo(fmt::format("warning: skipped {} rows without text or label (first: {})",
                        data.skipped_rows, data.first_skipped));
  }
  return data;
}

}  // namespace

absl::StatusOr<TaskData> LoadTaskData(const TaskDataConfig& task, uint64_t seed,
                                      bool with_unlabeled) {
  TaskData data;
  ASSIGN_OR_RETURN(data.train, ReadSplit(task.train, task));
  if (!task.valid.empty()) {
    ASSIGN_OR_RETURN(data.valid, ReadSplit(task.valid, task));
  } else {
    SplitValidation(&data.train, &data.valid, task.valid_fraction, seed);
  }
  if (task.max_train_examples > 0) SampleExamples(&data.train, task.max_train_examples, seed);
  if (task.max_valid_examples > 0) SampleExamples(&data.valid, task.max_valid_examples, seed);
  if (!task.test.empty()) {
    ASSIGN_OR_RETURN(data.test, ReadSplit(task.test, task));
    if (task.max_test_examples > 0) SampleExamples(&data.test, task.max_test_examples, seed);
  }
  if (with_unlabeled && !task.unlabeled.empty()) {
    ASSIGN_OR_RETURN(data.unlabeled,
                     ReadDocuments(task.unlabeled, CorpusFormat::kAuto, task.max_unlabeled));
  }
  LogInfo(fmt::format("task: {} training, {} validation, {} test examples, {} unlabelled texts",
                      data.train.texts.size(), data.valid.texts.size(), data.test.texts.size(),
                      data.unlabeled.size()));
  return data;
}

}  // namespace ulmfit
