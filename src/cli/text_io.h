// Reading texts and writing results for the predict and suggest commands.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ulmfit::cli {

// Texts from a file or stdin ("-"), one per line, optionally a tab-separated column of each.
// Reads line by line, so inputs of any size stream through in constant memory.
class TextLines {
 public:
  // A column number meaning "the whole line" (text) or "the 1-based line number" (id).
  static constexpr int kWholeLine = -1;

  explicit TextLines(std::string path) : path_(std::move(path)) {}
  ~TextLines();
  TextLines(const TextLines&) = delete;
  TextLines& operator=(const TextLines&) = delete;

  absl::Status Open();
  // Reads the next line into `text` (column `text_column`, or the whole line for kWholeLine)
  // and, when `id` is not null, `id` (column `id_column`, or the 1-based line number for
  // kWholeLine). False at the end of the input; an error names the file, line and column.
  absl::StatusOr<bool> Next(int text_column, int id_column, std::string* text, std::string* id);
  // Fraction of the file read so far; -1 for stdin.
  double fraction() const;

 private:
  absl::StatusOr<std::string> Column(const std::string& line, int column) const;

  std::string path_;
  std::FILE* in_ = nullptr;
  char* buffer_ = nullptr;
  size_t capacity_ = 0;
  int64_t line_number_ = 0;
  double size_ = 0;
};

// {"label": p, ...} for one text's class probabilities (predict and suggest JSON lines).
std::string ProbsJson(const std::vector<std::string>& names, const std::vector<float>& probs);

// A CSV field, quoted when it needs to be.
std::string CsvField(const std::string& value);

}  // namespace ulmfit::cli
