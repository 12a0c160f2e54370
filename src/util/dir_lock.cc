#include "util/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "util/progress.h"

namespace ulmfit {
namespace fs = std::filesystem;
namespace {

// The holder's pid as it wrote it; it writes just after taking the lock, so an empty file is
// read once more a moment later.
std::string HolderPid(int fd) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    char buffer[32] = {};
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
    const std::string pid(absl::StripAsciiWhitespace(std::string(buffer, n > 0 ? n : 0)));
    if (!pid.empty()) return "pid " + pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "pid unknown";
}

}  // namespace

absl::Status LockRunDirectory(const std::string& dir) {
  // The directories this process holds: their descriptors stay open (and locked) until exit.
  static std::mutex mutex;
  static std::set<std::string> held;
  std::error_code ec;
  const fs::path canonical = fs::canonical(dir, ec);
  const std::string key = ec ? dir : canonical.string();
  std::lock_guard<std::mutex> lock(mutex);
  if (held.count(key) != 0) return absl::OkStatus();

  const std::string path = (fs::path(dir) / kDirLockFile).string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(fmt::format(
        "{}: cannot create the lock file {} ({}); choose a writable run.output_dir", dir, path,
        std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) {
      const std::string holder = HolderPid(fd);
      ::close(fd);
      return absl::FailedPreconditionError(fmt::format(
          "{}: another ulmfit run ({}) is using this run directory; wait for it to finish, or "
          "choose another run.output_dir", dir, holder));
    }
    // Some network file systems have no locks: run unprotected rather than not at all.
    ::close(fd);
    LogInfo(fmt::format("{}: cannot lock {} ({}); make sure no other ulmfit run uses this "
                        "directory at the same time", dir, path, std::strerror(error)));
    held.insert(key);
    return absl::OkStatus();
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    LogInfo(fmt::format("{}: cannot write this process's pid ({})", path, std::strerror(errno)));
  }
  held.insert(key);  // fd stays open: closing it would drop the lock
  return absl::OkStatus();
}

}  // namespace ulmfit
