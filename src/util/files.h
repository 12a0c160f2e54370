// Small filesystem helpers with user-facing errors.
#pragma once

#include <string>

#include "util/status.h"

namespace ulmfit {

// Creates `dir` (and parents) and checks that a file can be written in it.
absl::Status EnsureWritableDir(const std::string& dir, const std::string& what);

// Writes `contents` to `path` via a temporary file and rename, so readers never see half a file
// (and a failed write leaves the old file as it was). Errors are one line: the disk is full,
// the place is not writable, or what the system said.
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);

// Copies a file with WriteFileAtomic's guarantees and errors.
absl::Status CopyFileAtomic(const std::string& from, const std::string& to);

// The one-line error of a failed write of `path` with errno `error`.
absl::Status WriteError(const std::string& path, int error);

// Fault injection for tests: with ULMFIT_TEST_WRITE_LIMIT_BYTES=N in the environment (or after
// SetWriteLimitForTesting(N)), the writes above fail with ENOSPC once this process has written
// N bytes through them: a full disk where no small file system can be mounted. N < 0: no limit.
void SetWriteLimitForTesting(long long bytes);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// The user's cache directory for ulmfit: ULMFIT_CACHE_DIR, else $XDG_CACHE_HOME/ulmfit, else
// ~/.cache/ulmfit, else .ulmfit_cache. Not created here.
std::string UserCacheDir();

// Appends one line (a newline is added) and flushes it to disk.
absl::Status AppendLine(const std::string& path, const std::string& line);

// Deletes a file or a directory tree, if present (symbolic links are removed, not followed).
// Plain POSIX calls rather than std::filesystem::remove_all, which crashed when built against a
// pip libtorch 2.11 (seen on the GPU machine; the cause was not pinned down).
void RemoveTree(const std::string& path);

}  // namespace ulmfit
