#include "cli/text_io.h"

#include <sys/types.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "fmt/format.h"
#include "util/json.h"
#include "util/status.h"

namespace ulmfit::cli {

TextLines::~TextLines() {
  std::free(buffer_);
  if (in_ != nullptr && in_ != stdin) std::fclose(in_);
}

absl::Status TextLines::Open() {
  // fopen opens a directory for reading on Linux; every read of it then fails like an empty file.
  if (path_ != "-" && std::filesystem::is_directory(path_)) {
    return absl::InvalidArgumentError(
        path_ + ": is a directory; give a text file with one text per line (or - for stdin)");
  }
  in_ = path_ == "-" ? stdin : std::fopen(path_.c_str(), "rb");
  if (in_ == nullptr) {
    return absl::NotFoundError(path_ + ": cannot open input file (check the path)");
  }
  if (in_ != stdin) {
    std::error_code ec;
    size_ = static_cast<double>(std::filesystem::file_size(path_, ec));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> TextLines::Next(int text_column, int id_column, std::string* text,
                                     std::string* id) {
  const ssize_t n = ::getline(&buffer_, &capacity_, in_);
  if (n < 0) return false;
  ++line_number_;
  std::string line(buffer_, static_cast<size_t>(n));
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  ASSIGN_OR_RETURN(*text, Column(line, text_column));
  if (id != nullptr) {
    if (id_column != kWholeLine) {
      ASSIGN_OR_RETURN(*id, Column(line, id_column));
    } else {
      *id = std::to_string(line_number_);
    }
  }
  return true;
}

double TextLines::fraction() const {
  return in_ == stdin || size_ <= 0 ? -1 : static_cast<double>(std::ftell(in_)) / size_;
}

absl::StatusOr<std::string> TextLines::Column(const std::string& line, int column) const {
  if (column == kWholeLine) return line;
  size_t start = 0;
  for (int c = 0; c < column && start != std::string::npos; ++c) {
    start = line.find('\t', start);
    if (start != std::string::npos) ++start;
  }
  if (start == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format(
        "{}:{}: has no column {} (columns are tab-separated, counted from 0)",
        path_ == "-" ? "stdin" : path_, line_number_, column));
  }
  return line.substr(start, line.find('\t', start) - start);
}

std::string ProbsJson(const std::vector<std::string>& names, const std::vector<float>& probs) {
  std::string json;
  for (size_t c = 0; c < names.size(); ++c) {
    // JSON has no NaN: null keeps the line parseable (model weights are checked when loaded).
    json += fmt::format("{}{}: {}", c ? ", " : "", JsonQuote(names[c]),
                        std::isfinite(probs[c]) ? fmt::format("{:.6f}", probs[c]) : "null");
  }
  return "{" + json + "}";
}

std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string quoted = "\"";
  for (char c : value) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace ulmfit::cli
