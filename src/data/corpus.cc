#include "data/corpus.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "data/text_file.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

// Appends the non-blank lines of `path` to `docs`, stopping once `docs` holds `limit` documents
// (0 = no limit).
absl::Status ReadLines(const std::string& path, int64_t limit, std::vector<std::string>* docs) {
  return ForEachLine(path, [&](std::string_view line, int64_t line_number) -> absl::StatusOr<bool> {
    if (IsBlank(line)) return true;
    int64_t bad = FindInvalidUtf8(line);
    if (bad >= 0) return InvalidUtf8Error(path, line_number, bad + 1);
    docs->emplace_back(line);
    return limit <= 0 || static_cast<int64_t>(docs->size()) < limit;
  });
}

// Appends the whole file as one document unless it is blank.
absl::Status ReadWholeFile(const std::string& path, std::vector<std::string>* docs) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  if (!IsBlank(text)) docs->push_back(std::move(text));
  return absl::OkStatus();
}

}  // namespace

int64_t FindInvalidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return static_cast<int64_t>(i);
    }
    if (i + len > n) return static_cast<int64_t>(i);
    if (s[i + 1] < lo || s[i + 1] > hi) return static_cast<int64_t>(i);
    for (size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return static_cast<int64_t>(i);
    }
    i += len;
  }
  return -1;
}

absl::StatusOr<std::vector<std::string>> ReadDocuments(const std::string& path,
                                                       CorpusFormat format,
                                                       int64_t max_documents) {
  std::error_code error;
  fs::file_status status = fs::status(path, error);
  if (path.empty() || !fs::exists(status)) {
    return absl::NotFoundError(
        absl::StrCat(path.empty() ? "(empty path)" : path,
                     ": no such file or folder (check the data path in your config)"));
  }
  const bool is_dir = fs::is_directory(status);
  const bool one_per_file =
      format == CorpusFormat::kFiles || (format == CorpusFormat::kAuto && is_dir);

  std::vector<std::string> files;
  if (is_dir) {
    ASSIGN_OR_RETURN(files, ListFiles(path));
  } else {
    files.push_back(path);
  }

  std::vector<std::string> docs;
  for (const std::string& file : files) {
    if (one_per_file) {
      RETURN_IF_ERROR(ReadWholeFile(file, &docs));
    } else {
      RETURN_IF_ERROR(ReadLines(file, max_documents, &docs));
    }
    if (max_documents > 0 && static_cast<int64_t>(docs.size()) >= max_documents) {
      docs.resize(max_documents);
      break;
    }
  }
  if (docs.empty()) {
    if (is_dir) {
      return absl::InvalidArgumentError(
          absl::StrCat(path,
                       ": no documents found (the folder has no non-hidden files, or every file is "
                       "empty or blank)"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no documents found (the file is empty or every line is blank)"));
  }
  return docs;
}

}  // namespace ulmfit
