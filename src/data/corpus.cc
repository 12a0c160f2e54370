#include "data/corpus.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkSize = 1 << 22;  // 4 MiB reads: few syscalls, bounded memory

// A plain or gzip-compressed file read in chunks, with errors that name the file.
class InputFile {
 public:
  static absl::StatusOr<std::unique_ptr<InputFile>> Open(const std::string& path) {
    auto file = std::unique_ptr<InputFile>(new InputFile(path));
    file->gzip_ = absl::EndsWith(path, ".gz");
    FILE* plain = std::fopen(path.c_str(), "rb");
    if (plain == nullptr) {
      return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open (", std::strerror(errno),
                                                      "); check that the file is readable"));
    }
    if (!file->gzip_) {
      file->plain_ = plain;
      return file;
    }
    // gzopen silently passes non-gzip bytes through, so check the magic number first.
    unsigned char magic[2] = {0, 0};
    size_t got = std::fread(magic, 1, 2, plain);
    std::fclose(plain);
    if (got < 2 || magic[0] != 0x1f || magic[1] != 0x8b) {
      return absl::DataLossError(absl::StrCat(
          path,
          ": not a gzip file although its name ends in .gz; re-download it, or rename it "
          "if it is plain text"));
    }
    file->gz_ = gzopen(path.c_str(), "rb");
    if (file->gz_ == nullptr) {
      return absl::PermissionDeniedError(
          absl::StrCat(path, ": cannot open (", std::strerror(errno), ")"));
    }
    gzbuffer(file->gz_, 1 << 20);
    return file;
  }

  ~InputFile() {
    if (plain_ != nullptr) std::fclose(plain_);
    if (gz_ != nullptr) gzclose(gz_);
  }

  // Fills `buffer` with up to `size` bytes; returns 0 at the end of the file.
  absl::StatusOr<size_t> Read(char* buffer, size_t size) {
    if (!gzip_) {
      size_t got = std::fread(buffer, 1, size, plain_);
      if (got == 0 && std::ferror(plain_)) {
        return absl::DataLossError(
            absl::StrCat(path_, ": read error (", std::strerror(errno), ")"));
      }
      return got;
    }
    int got = gzread(gz_, buffer, static_cast<unsigned>(size));
    int errnum = Z_OK;
    const char* message = gzerror(gz_, &errnum);
    // A truncated stream shows up as Z_BUF_ERROR once the data runs out.
    if (got < 0 || (got == 0 && errnum != Z_OK)) {
      return absl::DataLossError(absl::StrCat(path_, ": corrupt gzip data (zlib: ", message,
                                              "); re-download or re-compress the file"));
    }
    return static_cast<size_t>(got);
  }

 private:
  explicit InputFile(std::string path) : path_(std::move(path)) {}

  std::string path_;
  bool gzip_ = false;
  FILE* plain_ = nullptr;
  gzFile gz_ = nullptr;
};

bool IsBlank(std::string_view text) {
  for (char c : text) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\v' && c != '\f') return false;
  }
  return true;
}

absl::Status InvalidUtf8Error(const std::string& path, int64_t line, int64_t column) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ":", line, ": invalid UTF-8 at byte ", column,
                   " of the line; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"));
}

// Appends the non-blank lines of `path` to `docs`, stopping once `docs` holds `limit` documents
// (0 = no limit).
absl::Status ReadLines(const std::string& path, int64_t limit, std::vector<std::string>* docs) {
  ASSIGN_OR_RETURN(std::unique_ptr<InputFile> file, InputFile::Open(path));
  std::unique_ptr<char[]> buffer(new char[kChunkSize]);
  std::string carry;  // the unfinished last line of the previous chunk
  int64_t line_number = 0;
  bool done = false;
  auto add_line = [&](std::string_view line) -> absl::Status {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (IsBlank(line)) return absl::OkStatus();
    int64_t bad = FindInvalidUtf8(line);
    if (bad >= 0) return InvalidUtf8Error(path, line_number, bad + 1);
    docs->emplace_back(line);
    if (limit > 0 && static_cast<int64_t>(docs->size()) >= limit) done = true;
    return absl::OkStatus();
  };
  while (!done) {
    ASSIGN_OR_RETURN(size_t got, file->Read(buffer.get(), kChunkSize));
    if (got == 0) break;
    std::string_view chunk(buffer.get(), got);
    size_t start = 0;
    while (!done) {
      const void* hit = std::memchr(chunk.data() + start, '\n', chunk.size() - start);
      if (hit == nullptr) break;
      size_t end = static_cast<const char*>(hit) - chunk.data();
      if (carry.empty()) {
        RETURN_IF_ERROR(add_line(chunk.substr(start, end - start)));
      } else {
        carry.append(chunk.data() + start, end - start);
        RETURN_IF_ERROR(add_line(carry));
        carry.clear();
      }
      start = end + 1;
    }
    if (!done) carry.append(chunk.data() + start, chunk.size() - start);
  }
  if (!done && !carry.empty()) RETURN_IF_ERROR(add_line(carry));
  return absl::OkStatus();
}

// Appends the whole file as one document unless it is blank.
absl::Status ReadWholeFile(const std::string& path, std::vector<std::string>* docs) {
  ASSIGN_OR_RETURN(std::unique_ptr<InputFile> file, InputFile::Open(path));
  std::string text;
  std::unique_ptr<char[]> buffer(new char[kChunkSize]);
  while (true) {
    ASSIGN_OR_RETURN(size_t got, file->Read(buffer.get(), kChunkSize));
    if (got == 0) break;
    text.append(buffer.get(), got);
  }
  if (IsBlank(text)) return absl::OkStatus();
  int64_t bad = FindInvalidUtf8(text);
  if (bad >= 0) {
    int64_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
    size_t line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
    int64_t column = line_start == std::string::npos || bad == 0
                         ? bad + 1
                         : bad - static_cast<int64_t>(line_start);
    return InvalidUtf8Error(path, line, column);
  }
  // CRLF -> LF so that documents do not depend on the platform that wrote them.
  if (text.find('\r') != std::string::npos) {
    size_t out = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
      text[out++] = text[i];
    }
    text.resize(out);
  }
  docs->push_back(std::move(text));
  return absl::OkStatus();
}

// Non-hidden regular files under `dir`, sorted by path; hidden folders are not entered.
absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code error;
  fs::recursive_directory_iterator it(dir, error), end;
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir, ": cannot list the folder (", error.message(), ")"));
  }
  for (; it != end; it.increment(error)) {
    if (error) break;
    const fs::path& path = it->path();
    std::string name = path.filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(error)) files.push_back(path.string());
  }
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir, ": cannot list the folder (", error.message(), ")"));
  }
  std::sort(files.begin(), files.end());
  return files;
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
                                                       const std::string& format,
                                                       int64_t max_documents) {
  if (format != "auto" && format != "lines" && format != "files") {
    return absl::InvalidArgumentError(
        absl::StrCat("data format must be \"auto\", \"lines\" or \"files\", got \"", format, "\""));
  }
  std::error_code error;
  fs::file_status status = fs::status(path, error);
  if (path.empty() || !fs::exists(status)) {
    return absl::NotFoundError(
        absl::StrCat(path.empty() ? "(empty path)" : path,
                     ": no such file or folder (check the data path in your config)"));
  }
  const bool is_dir = fs::is_directory(status);
  const bool one_per_file = format == "files" || (format == "auto" && is_dir);

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
