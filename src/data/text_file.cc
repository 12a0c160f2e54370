#include "data/text_file.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "data/corpus.h"

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

}  // namespace

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

absl::Status ForEachLine(const std::string& path, const LineFn& fn) {
  ASSIGN_OR_RETURN(std::unique_ptr<InputFile> file, InputFile::Open(path));
  std::unique_ptr<char[]> buffer(new char[kChunkSize]);
  std::string carry;  // the unfinished last line of the previous chunk
  int64_t line_number = 0;
  bool done = false;
  auto add_line = [&](std::string_view line) -> absl::Status {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ASSIGN_OR_RETURN(bool more, fn(line, line_number));
    done = !more;
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

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<InputFile> file, InputFile::Open(path));
  std::string text;
  std::unique_ptr<char[]> buffer(new char[kChunkSize]);
  while (true) {
    ASSIGN_OR_RETURN(size_t got, file->Read(buffer.get(), kChunkSize));
    if (got == 0) break;
    text.append(buffer.get(), got);
  }
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
  return text;
}

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

}  // namespace ulmfit
