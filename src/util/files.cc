#include "util/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace ulmfit {
namespace fs = std::filesystem;

absl::Status EnsureWritableDir(const std::string& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(fmt::format(
        "{}: cannot create {} ({}); choose a writable directory", dir, what, ec.message()));
  }
  // Per process: the ranks of a data-parallel run probe the same directories at once.
  const std::string probe =
      (fs::path(dir) / (".ulmfit_write_test." + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(fmt::format(
        "{}: {} is not writable ({}); choose a writable directory", dir, what,
        std::strerror(errno)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return absl::OkStatus();
}

absl::Status WriteError(const std::string& path, int error) {
  if (error == ENOSPC || error == EDQUOT) {
    return absl::ResourceExhaustedError(fmt::format(
        "{}: the disk is full ({}); free some space and run again (files written before are "
        "intact)", path, std::strerror(error)));
  }
  if (error == EACCES || error == EPERM || error == EROFS) {
    return absl::PermissionDeniedError(fmt::format(
        "{}: not writable ({}); choose a writable run.output_dir", path, std::strerror(error)));
  }
  return absl::InternalError(fmt::format("{}: cannot write ({})", path, std::strerror(error)));
}

namespace {

long long write_limit = [] {
  const char* text = std::getenv("ULMFIT_TEST_WRITE_LIMIT_BYTES");
  return text != nullptr ? std::atoll(text) : -1LL;
}();
long long written_bytes = 0;

bool WriteLimitReached(size_t more_bytes) {
  if (write_limit < 0) return false;
  written_bytes += static_cast<long long>(more_bytes);
  return written_bytes > write_limit;
}

// Writes all of `data` to `fd`; errno of the failure, or 0.
int WriteAll(int fd, const char* data, size_t size) {
  if (WriteLimitReached(size)) return ENOSPC;
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

void SetWriteLimitForTesting(long long bytes) {
  write_limit = bytes;
  written_bytes = 0;
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  // Per process and call: two processes (the ranks of a data-parallel run) may write one path.
  static std::atomic<int> counter{0};
  const std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return WriteError(path, errno);
  int error = WriteAll(fd, contents.data(), contents.size());
  if (::close(fd) != 0 && error == 0) error = errno;  // NFS and quotas report late
  if (error != 0) {
    ::unlink(tmp.c_str());
    return WriteError(path, error);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = errno;
    ::unlink(tmp.c_str());
    return WriteError(path, error);
  }
  return absl::OkStatus();
}

absl::Status CopyFileAtomic(const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(const std::string contents, ReadFile(from));
  return WriteFileAtomic(to, contents);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("{}: cannot read file", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::Status AppendLine(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return WriteError(path, errno);
  struct stat before {};
  ::fstat(fd, &before);
  const std::string data = line + "\n";
  const int error = WriteAll(fd, data.data(), data.size());
  // No half line left behind: the file ends where it ended.
  if (error != 0) {
    const int truncated = ::ftruncate(fd, before.st_size);  // best effort
    (void)truncated;
  }
  ::close(fd);
  return error == 0 ? absl::OkStatus() : WriteError(path, error);
}

void RemoveTree(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return;
  if (S_ISDIR(info.st_mode)) {
    if (DIR* handle = ::opendir(path.c_str())) {
      while (const dirent* entry = ::readdir(handle)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..") RemoveTree(path + "/" + name);
      }
      ::closedir(handle);
    }
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

std::string UserCacheDir() {
  if (const char* env = std::getenv("ULMFIT_CACHE_DIR"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return (fs::path(xdg) / "ulmfit").string();
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return (fs::path(home) / ".cache" / "ulmfit").string();
  }
  return ".ulmfit_cache";
}

}  // namespace ulmfit
