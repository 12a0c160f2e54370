// Reading plain or gzipped (".gz") text files with errors that name the file, and line where
// there is one. Shared by the corpus reader (corpus.cc) and the labelled-data reader.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace ulmfit {

// True if `text` holds only ASCII whitespace (or nothing).
bool IsBlank(std::string_view text);

// "PATH:LINE: invalid UTF-8 at byte COLUMN of the line; convert the file ..." (1-based).
absl::Status InvalidUtf8Error(const std::string& path, int64_t line, int64_t column);

// Calls `fn(line, line_number)` for each line of `path` (1-based numbers, the trailing "\r" of a
// CRLF line dropped, blank lines included, no UTF-8 check) until `fn` returns false or an error,
// which is returned. A final line without "\n" counts; an empty file has no lines.
using LineFn = std::function<absl::StatusOr<bool>(std::string_view line, int64_t line_number)>;
absl::Status ForEachLine(const std::string& path, const LineFn& fn);

// The whole file, checked for UTF-8 (the error names line and byte) and with CRLF turned to LF.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

// Non-hidden regular files under `dir` (recursively), sorted by path; hidden folders are not
// entered.
absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir);

}  // namespace ulmfit
