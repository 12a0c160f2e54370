#include "data/labeled_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/corpus.h"
#include "data/text_file.h"
#include "util/files.h"
#include "util/random.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// One column of the config: a 0-based index, or a header name resolved to one.
struct Column {
  std::string name;  // empty for an index
  int64_t index = -1;
  std::string key;  // the config key it came from, for messages
};

// (absl's string helpers take absl::string_view, which is not std::string_view in this build.)
std::string_view Trim(std::string_view text) {
  const auto space = [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::optional<int64_t> ParseIndex(std::string_view text) {
  // Up to 9 digits: no overflow, and no file has that many columns anyway.
  if (text.empty() || text.size() > 9) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

Column ParseColumn(std::string_view spec, const std::string& key) {
  Column column;
  column.key = key;
  std::string_view trimmed = Trim(spec);
  if (std::optional<int64_t> index = ParseIndex(trimmed)) {
    column.index = *index;
  } else {
    column.name = std::string(trimmed);
  }
  return column;
}

// A field for a one-line message: at most 40 bytes (cut between code points), control
// characters as \xNN (a quoted CSV field may hold newlines).
std::string ShownField(std::string_view field) {
  field = Trim(field);
  size_t cut = std::min<size_t>(field.size(), 40);
  const auto tail_byte = [&](size_t i) {
    return (static_cast<unsigned char>(field[i]) & 0xC0) == 0x80;
  };
  while (cut > 0 && cut < field.size() && tail_byte(cut)) --cut;
  std::string out;
  for (const char c : field.substr(0, cut)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(byte, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  return cut < field.size() ? out + "..." : out;
}

// "label, text, ..." for messages: at most 20 names.
std::string DescribeFields(const std::vector<std::string>& fields) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < fields.size() && i < 20; ++i) shown.push_back(ShownField(fields[i]));
  std::string text = absl::StrJoin(shown, ", ");
  if (fields.size() > 20) absl::StrAppend(&text, ", ... (", fields.size(), " in all)");
  return text;
}

// Called with the fields of each non-blank record and the line it starts on.
using RecordFn = std::function<absl::Status(std::vector<std::string>& fields, int64_t line)>;

absl::Status CheckLineUtf8(const std::string& path, std::string_view line, int64_t line_number) {
  int64_t bad = FindInvalidUtf8(line);
  if (bad >= 0) return InvalidUtf8Error(path, line_number, bad + 1);
  return absl::OkStatus();
}

// A UTF-8 byte-order mark (Excel writes one) would otherwise stick to the first header name.
std::string_view StripBom(std::string_view line, int64_t line_number) {
  if (line_number == 1 && line.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
    line.remove_prefix(kUtf8Bom.size());
  }
  return line;
}

absl::Status ReadTsvRecords(const std::string& path, const RecordFn& fn) {
  std::vector<std::string> fields;
  return ForEachLine(path, [&](std::string_view line, int64_t line_number) -> absl::StatusOr<bool> {
    RETURN_IF_ERROR(CheckLineUtf8(path, line, line_number));
    line = StripBom(line, line_number);
    if (IsBlank(line)) return true;
    fields.clear();
    for (std::string_view field : Split(line, '\t')) fields.emplace_back(field);
    RETURN_IF_ERROR(fn(fields, line_number));
    return true;
  });
}

// RFC 4180 on top of the line reader: a quoted field left open at the end of a line continues
// on the next one (joined with "\n"; a CRLF inside quotes becomes "\n" too). Lenient where the
// RFC is silent: a quote inside an unquoted field, or text after a closing quote, is kept.
absl::Status ReadCsvRecords(const std::string& path, const RecordFn& fn) {
  std::vector<std::string> fields;
  std::string field;
  bool in_quotes = false;
  bool at_field_start = true;
  int64_t record_line = 0;
  RETURN_IF_ERROR(
      ForEachLine(path, [&](std::string_view line, int64_t line_number) -> absl::StatusOr<bool> {
        RETURN_IF_ERROR(CheckLineUtf8(path, line, line_number));
        line = StripBom(line, line_number);
        if (in_quotes) {
          field.push_back('\n');
        } else {
          if (IsBlank(line)) return true;
          record_line = line_number;
          fields.clear();
          field.clear();
          at_field_start = true;
        }
        for (size_t i = 0; i < line.size(); ++i) {
          const char c = line[i];
          if (in_quotes) {
            if (c != '"') {
              field.push_back(c);
            } else if (i + 1 < line.size() && line[i + 1] == '"') {
              field.push_back('"');
              ++i;
            } else {
              in_quotes = false;
            }
          } else if (c == ',') {
            fields.push_back(std::move(field));
            field.clear();
            at_field_start = true;
          } else if (c == '"' && at_field_start) {
            in_quotes = true;
            at_field_start = false;
          } else {
            field.push_back(c);
            at_field_start = false;
          }
        }
        if (in_quotes) return true;
        fields.push_back(std::move(field));
        field.clear();
        RETURN_IF_ERROR(fn(fields, record_line));
        return true;
      }));
  if (in_quotes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", record_line,
        ": a quoted field is never closed (unbalanced '\"'); double quotes inside a quoted field "
        "must be written as \"\""));
  }
  return absl::OkStatus();
}

// The row reader of a TSV/CSV file: resolves columns on the first record, then turns each
// record into an example.
class TableReader {
 public:
  TableReader(std::string path, const TaskDataConfig& config, bool csv, LabeledData* data)
      : path_(std::move(path)), config_(config), csv_(csv), data_(data) {
    label_ = ParseColumn(config.label_column, "task.label_column");
    for (const std::string& spec : config.text_columns) {
      texts_.push_back(ParseColumn(spec, "task.text_columns"));
    }
  }

  absl::Status Read() {
    for (const Column* column : Columns()) {
      if (column->index < 0 && column->name.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            column->key, " has an empty column; give column names or 0-based indices"));
      }
    }
    RecordFn fn = [this](std::vector<std::string>& fields, int64_t line) {
      return OnRecord(fields, line);
    };
    return csv_ ? ReadCsvRecords(path_, fn) : ReadTsvRecords(path_, fn);
  }

 private:
  std::vector<Column*> Columns() {
    std::vector<Column*> columns = {&label_};
    for (Column& column : texts_) columns.push_back(&column);
    return columns;
  }

  absl::Status OnRecord(std::vector<std::string>& fields, int64_t line) {
    if (!resolved_) {
      resolved_ = true;
      bool is_header = config_.header == HeaderMode::kYes;
      if (config_.header == HeaderMode::kAuto) {
        for (const Column* column : Columns()) {
          if (!column->name.empty() && HasField(fields, column->name)) is_header = true;
        }
      }
      RETURN_IF_ERROR(ResolveColumns(is_header ? &fields : nullptr, fields));
      if (is_header) return absl::OkStatus();
    }
    if (static_cast<int64_t>(fields.size()) < needed_) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ":", line, ": expected at least ", needed_, csv_ ? " comma" : " tab",
                       "-separated columns, found ", fields.size(),
                       csv_ ? "" : " (for a comma-separated file set task.format: csv)"));
    }
    std::string label(Trim(fields[label_.index]));
    std::string text;
    if (texts_.size() == 1) {
      text = std::move(fields[texts_[0].index]);
      if (IsBlank(text)) text.clear();
    } else {
      bool any_text = false;
      for (size_t i = 0; i < texts_.size(); ++i) {
        const std::string& field = fields[texts_[i].index];
        any_text = any_text || !IsBlank(field);
        absl::StrAppend(&text, i == 0 ? "" : " ", "xxfld ", i + 1, " ", field);
      }
      if (!any_text) text.clear();
    }
    if (label.empty() || text.empty()) {
      if (data_->skipped_rows++ == 0) {
        data_->first_skipped =
            absl::StrCat(path_, ":", line, label.empty() ? ": empty label" : ": empty text");
      }
      return absl::OkStatus();
    }
    data_->texts.push_back(std::move(text));
    data_->labels.push_back(std::move(label));
    return absl::OkStatus();
  }

  static bool HasField(const std::vector<std::string>& fields, const std::string& name) {
    for (const std::string& field : fields) {
      if (Trim(field) == name) return true;
    }
    return false;
  }

  // Turns names into indices using `header` (null when the file has none).
  absl::Status ResolveColumns(const std::vector<std::string>* header,
                              const std::vector<std::string>& first_row) {
    for (Column* column : Columns()) {
      if (!column->name.empty()) {
        if (header == nullptr && config_.header == HeaderMode::kNo) {
          return absl::InvalidArgumentError(
              absl::StrCat(path_, ": ", column->key, " names a column ('", column->name,
                           "') but task.header is \"no\"; give a 0-based index instead"));
        }
        if (header == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat(
              path_, ": no column '", column->name, "' in the first row (",
              DescribeFields(first_row), "); ", column->key,
              " names a column, so the file needs a header row; check the name or give a "
              "0-based index"));
        }
        auto it = std::find_if(header->begin(), header->end(), [&](const std::string& field) {
          return Trim(field) == column->name;
        });
        if (it == header->end()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path_, ": no column '", column->name,
                           "' in the header (columns: ", DescribeFields(*header), ")"));
        }
        column->index = it - header->begin();
      }
      needed_ = std::max(needed_, column->index + 1);
    }
    return absl::OkStatus();
  }

  std::string path_;
  const TaskDataConfig& config_;
  bool csv_;
  LabeledData* data_;
  Column label_;
  std::vector<Column> texts_;
  bool resolved_ = false;
  int64_t needed_ = 0;  // columns a data row must have
};

absl::Status ReadFolders(const std::string& path, LabeledData* data) {
  std::vector<std::string> classes;
  std::error_code error;
  for (fs::directory_iterator it(path, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    // Files beside the class folders are not examples (aclImdb keeps urls_pos.txt and *.feat
    // there); "unsup" holds aclImdb's unlabelled reviews, which are not a class.
    if (name.empty() || name[0] == '.' || name == "unsup") continue;
    std::error_code dir_error;
    if (it->is_directory(dir_error)) classes.push_back(name);
  }
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot list the folder (", error.message(), ")"));
  }
  if (classes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": no class subfolders; the folder format expects one subfolder per class "
                     "holding one text file per example (e.g. ",
                     path, "/pos/*.txt and ", path, "/neg/*.txt)"));
  }
  std::sort(classes.begin(), classes.end());
  for (const std::string& label : classes) {
    const std::string dir = (fs::path(path) / label).string();
    ASSIGN_OR_RETURN(std::vector<std::string> files, ListFiles(dir));
    if (files.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          dir, ": class folder '", label, "' has no files; add examples or remove the folder"));
    }
    for (const std::string& file : files) {
      ASSIGN_OR_RETURN(std::string text, ReadTextFile(file));
      if (IsBlank(text)) {
        if (data->skipped_rows++ == 0) data->first_skipped = absl::StrCat(file, ": empty file");
        continue;
      }
      data->texts.push_back(std::move(text));
      data->labels.push_back(label);
    }
  }
  return absl::OkStatus();
}



// Example indices per label, labels in sorted order, indices ascending.
std::map<std::string, std::vector<int64_t>> GroupByLabel(const LabeledData& data) {
  std::map<std::string, std::vector<int64_t>> groups;
  for (int64_t i = 0; i < data.size(); ++i) groups[data.labels[i]].push_back(i);
  return groups;
}

// Moves the examples at `indices` (ascending) out of `data` into a new LabeledData.
LabeledData Take(LabeledData* data, const std::vector<int64_t>& indices) {
  LabeledData out;
  out.texts.reserve(indices.size());
  out.labels.reserve(indices.size());
  for (int64_t i : indices) {
    out.texts.push_back(std::move(data->texts[i]));
    out.labels.push_back(std::move(data->labels[i]));
  }
  return out;
}

}  // namespace

absl::StatusOr<LabeledData> ReadLabeledData(const std::string& path, const TaskDataConfig& config) {
  const TaskFormat format = config.format;
  std::error_code error;
  fs::file_status status = fs::status(path, error);
  if (path.empty() || !fs::exists(status)) {
    return absl::NotFoundError(
        absl::StrCat(path.empty() ? "(empty path)" : path,
                     ": no such file or folder (check the task data paths in your config)"));
  }
  const bool is_dir = fs::is_directory(status);
  if (is_dir && format != TaskFormat::kAuto && format != TaskFormat::kFolders) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a folder but task.format is \"", EnumName(format),
                     "\"; use \"folders\" (or \"auto\") for one subfolder per class"));
  }
  if (!is_dir && format == TaskFormat::kFolders) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": task.format is \"folders\" but this is a file; use \"tsv\", \"csv\" or \"auto\""));
  }

  LabeledData data;
  data.source = path;
  if (is_dir) {
    RETURN_IF_ERROR(ReadFolders(path, &data));
  } else {
    const bool csv_name =
        absl::EndsWithIgnoreCase(path, ".csv") || absl::EndsWithIgnoreCase(path, ".csv.gz");
    const bool csv = format == TaskFormat::kCsv || (format == TaskFormat::kAuto && csv_name);
    TableReader reader(path, config, csv, &data);
    RETURN_IF_ERROR(reader.Read());
  }
  if (data.texts.empty()) {
    std::string why = is_dir ? "every file is empty" : "the file is empty or holds only a header";
    if (data.skipped_rows > 0) {
      why = absl::StrCat(data.skipped_rows,
                         " rows lack text or a label; first: ", data.first_skipped);
    }
    return absl::InvalidArgumentError(absl::StrCat(path, ": no labelled rows (", why, ")"));
  }
  return data;
}

LabelSet LabelSet::FromLabels(const std::vector<std::string>& labels) {
  LabelSet set;
  set.names_ = labels;
  std::sort(set.names_.begin(), set.names_.end());
  set.names_.erase(std::unique(set.names_.begin(), set.names_.end()), set.names_.end());
  for (int id = 0; id < set.size(); ++id) set.ids_[set.names_[id]] = id;
  return set;
}

absl::StatusOr<LabelSet> LabelSet::FromTrainingData(const LabeledData& train) {
  LabelSet set = FromLabels(train.labels);
  if (set.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(train.source, ": only one class",
                     set.size() == 1 ? absl::StrCat(" ('", set.names_[0], "')") : std::string(),
                     "; a classifier needs at least two"));
  }
  return set;
}

int LabelSet::Id(const std::string& label) const {
  auto it = ids_.find(label);
  return it == ids_.end() ? -1 : it->second;
}

absl::Status LabelSet::Save(const std::string& path) const {
  std::string contents;
  for (const std::string& name : names_) {
    if (name.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label '", name, "' contains a line break; labels must be single-line to be saved"));
    }
    absl::StrAppend(&contents, name, "\n");
  }
  return WriteFileAtomic(path, contents);
}

absl::StatusOr<LabelSet> LabelSet::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  std::string_view body = contents;
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);  // the last line's newline
  LabelSet set;
  int64_t line_number = 0;
  for (std::string_view line : Split(body, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (body.empty()) break;
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": empty label; the file holds one label per line"));
    }
    std::string name(line);
    if (set.ids_.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": label '", name, "' appears twice"));
    }
    set.ids_[name] = set.size();
    set.names_.push_back(std::move(name));
  }
  if (set.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no labels in the file"));
  }
  return set;
}

absl::StatusOr<std::vector<int64_t>> LabelIds(const LabeledData& data, const LabelSet& labels) {
  std::vector<int64_t> ids(data.labels.size());
  std::map<std::string, int64_t> unseen;
  int64_t unseen_rows = 0;
  for (size_t i = 0; i < data.labels.size(); ++i) {
    ids[i] = labels.Id(data.labels[i]);
    if (ids[i] < 0) {
      ++unseen[data.labels[i]];
      ++unseen_rows;
    }
  }
  if (unseen_rows == 0) return ids;
  std::vector<std::pair<std::string, int64_t>> sorted(unseen.begin(), unseen.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> shown;
  for (size_t i = 0; i < sorted.size() && i < 5; ++i) {
    shown.push_back(absl::StrCat("'", sorted[i].first, "' (", sorted[i].second, ")"));
  }
  if (sorted.size() > 5) shown.push_back(absl::StrCat("and ", sorted.size() - 5, " more"));
  return absl::InvalidArgumentError(absl::StrCat(
      data.source.empty() ? "(data)" : data.source, ": ", unseen_rows,
      unseen_rows == 1 ? " row has a label" : " rows have labels", " the training data never had: ",
      absl::StrJoin(shown, ", "), "; fix the labels or add examples of them to task.train"));
}

void SplitValidation(LabeledData* train, LabeledData* valid, double valid_fraction, uint64_t seed) {
  std::mt19937_64 rng = SeededRng(seed, {0x5B1D});
  std::vector<int64_t> valid_rows;
  std::vector<int64_t> train_rows;
  std::vector<int64_t> largest_rest;  // train rows of the label with most left, if >= 2
  for (auto& [label, rows] : GroupByLabel(*train)) {
    const int64_t count = static_cast<int64_t>(rows.size());
    int64_t k = static_cast<int64_t>(std::llround(count * std::max(valid_fraction, 0.0)));
    k = std::clamp<int64_t>(k, 0, count - 1);  // every label keeps an example in train
    Shuffle(&rows, rng);
    valid_rows.insert(valid_rows.end(), rows.begin(), rows.begin() + k);
    train_rows.insert(train_rows.end(), rows.begin() + k, rows.end());
    if (count - k >= 2 && count - k > static_cast<int64_t>(largest_rest.size())) {
      largest_rest.assign(rows.begin() + k, rows.end());
    }
  }
  // Tiny data can round every label down to 0: still hold out one example.
  if (valid_rows.empty() && valid_fraction > 0 && !largest_rest.empty()) {
    valid_rows.push_back(largest_rest.front());
    train_rows.erase(std::find(train_rows.begin(), train_rows.end(), largest_rest.front()));
  }
  std::sort(valid_rows.begin(), valid_rows.end());
  std::sort(train_rows.begin(), train_rows.end());
  LabeledData held_out = Take(train, valid_rows);
  held_out.source = absl::StrCat(train->source, " (validation split)");
  LabeledData kept = Take(train, train_rows);
  kept.source = train->source;
  kept.skipped_rows = train->skipped_rows;
  kept.first_skipped = train->first_skipped;
  *train = std::move(kept);
  *valid = std::move(held_out);
}

void SampleExamples(LabeledData* data, int64_t n, uint64_t seed) {
  const int64_t total = data->size();
  if (n <= 0 || n >= total) return;
  auto groups = GroupByLabel(*data);
  std::vector<std::vector<int64_t>*> rows;
  std::vector<double> quota;
  std::vector<int64_t> take;
  for (auto& [label, group] : groups) {
    rows.push_back(&group);
    quota.push_back(static_cast<double>(n) * group.size() / total);
    take.push_back(static_cast<int64_t>(std::floor(quota.back())));
  }
  const size_t num_labels = rows.size();
  if (n >= static_cast<int64_t>(num_labels)) {
    for (int64_t& k : take) k = std::max<int64_t>(k, 1);
  }
  int64_t sum = 0;
  for (int64_t k : take) sum += k;
  // Bring the total to n: take back from the largest picks, or give to the largest remainders
  // (ties to the first label, so the result is deterministic).
  while (sum > n) {
    size_t best = 0;
    for (size_t i = 1; i < num_labels; ++i) {
      if (take[i] > take[best]) best = i;
    }
    --take[best];
    --sum;
  }
  while (sum < n) {
    size_t best = num_labels;
    for (size_t i = 0; i < num_labels; ++i) {
      if (take[i] >= static_cast<int64_t>(rows[i]->size())) continue;
      if (best == num_labels || quota[i] - take[i] > quota[best] - take[best]) best = i;
    }
    ++take[best];
    ++sum;
  }
  std::mt19937_64 rng = SeededRng(seed, {0x5A3F});
  std::vector<int64_t> kept;
  for (size_t i = 0; i < num_labels; ++i) {
    Shuffle(rows[i], rng);
    kept.insert(kept.end(), rows[i]->begin(), rows[i]->begin() + take[i]);
  }
  std::sort(kept.begin(), kept.end());
  LabeledData sample = Take(data, kept);
  sample.source = std::move(data->source);
  sample.skipped_rows = data->skipped_rows;
  sample.first_skipped = std::move(data->first_skipped);
  *data = std::move(sample);
}

}  // namespace ulmfit
