// Labelled data for the classifier (stages 2 and 3): reading a TSV/CSV file or an aclImdb-style
// folder tree (TaskDataConfig), the label vocabulary, and seeded stratified splits and samples.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "config/config.h"
#include "util/status.h"

namespace ulmfit {

struct LabeledData {
  std::vector<std::string> texts;   // one per example; several text columns joined with xxfld
  std::vector<std::string> labels;  // same length as texts; never empty strings
  std::string source;               // the path read, for messages
  // Rows (or files) left out because their text or label was empty; the caller logs one
  // warning "skipped N rows without text or label (first: ...)".
  int64_t skipped_rows = 0;
  std::string first_skipped;  // e.g. "train.tsv:17: empty text"

  int64_t size() const { return static_cast<int64_t>(texts.size()); }
};

// Reads labelled examples from `path` as described by `config` (format, label_column,
// text_columns, header; the paths in `config` are not used):
//   folders  one subfolder per class (aclImdb: train/pos/*.txt, train/neg/*.txt); the subfolder
//            name is the label and every non-hidden file below it (recursively) is one example,
//            read whole. Files next to the class folders are ignored (aclImdb keeps urls_*.txt
//            and *.feat there), and so is an "unsup" folder: aclImdb's unlabelled reviews.
//   csv      RFC 4180: quoted fields may hold commas, doubled quotes and newlines.
//   tsv      one row per line, split on tabs, no quoting.
//   auto     folders for a folder, csv for *.csv / *.csv.gz, else tsv.
// Files may be gzipped (.gz). Columns are 0-based indices or header names; several text
// columns are joined as "xxfld 1 <col1> xxfld 2 <col2> ..." (fastai's mark_fields), one column
// is used as it is. header "auto": the first row is a header if it holds one of the column
// names given (never when all columns are indices). Labels are trimmed of surrounding
// whitespace. Errors name the file (and line): missing path, too few columns, unknown column,
// invalid UTF-8, unclosed CSV quote, an empty class folder, no labelled rows at all.
absl::StatusOr<LabeledData> ReadLabeledData(const std::string& path, const TaskDataConfig& config);

// The classes, as sorted unique label strings with ids 0..n-1.
class LabelSet {
 public:
  static LabelSet FromLabels(const std::vector<std::string>& labels);
  // FromLabels(train.labels), but a training set with fewer than two classes is an error.
  static absl::StatusOr<LabelSet> FromTrainingData(const LabeledData& train);

  int size() const { return static_cast<int>(names_.size()); }
  const std::string& Name(int id) const { return names_.at(id); }
  // -1 if the label is not in the set.
  int Id(const std::string& label) const;
  const std::vector<std::string>& names() const { return names_; }

  // One label per line, in id order (labels.txt in a model directory).
  absl::Status Save(const std::string& path) const;
  static absl::StatusOr<LabelSet> Load(const std::string& path);

 private:
  std::vector<std::string> names_;
  absl::flat_hash_map<std::string, int> ids_;
};

// The id of every label in `data`. Labels missing from `labels` are an error that names up to
// five of them with their counts, e.g. "test.tsv: 3 rows have labels the training data never
// had: 'FOO' (2), 'BAR' (1); fix the labels or add examples of them to task.train".
absl::StatusOr<std::vector<int64_t>> LabelIds(const LabeledData& data, const LabelSet& labels);

// Moves a seeded, stratified `valid_fraction` of `train` into `valid` (replacing its contents):
// each label gives round(count * fraction) examples but always keeps at least one in train, so
// a label with a single example stays in train. Both keep the original order of their rows.
void SplitValidation(LabeledData* train, LabeledData* valid, double valid_fraction, uint64_t seed);

// Keeps a seeded, stratified sample of `n` examples (sample-efficiency experiments): each label
// keeps about its share, and at least one example when n >= the number of labels. n <= 0 or
// n >= size keeps everything. The sample keeps the original order.
void SampleExamples(LabeledData* data, int64_t n, uint64_t seed);

}  // namespace ulmfit
