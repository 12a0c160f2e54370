// Small filesystem helpers with user-facing errors.
#pragma once

#include <string>

#include "util/status.h"

namespace ulmfit {

// Creates `dir` (and parents) and checks that a file can be written in it.
absl::Status EnsureWritableDir(const std::string& dir, const std::string& what);

// Writes `contents` to `path` via a temporary file and rename, so readers never see half a file.
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Appends one line (a newline is added) and flushes it to disk.
absl::Status AppendLine(const std::string& path, const std::string& line);

// Deletes a file or a directory tree, if present (symbolic links are removed, not followed).
// Plain POSIX calls rather than std::filesystem::remove_all, which crashed when built against a
// pip libtorch 2.11 (seen on the GPU machine; the cause was not pinned down).
void RemoveTree(const std::string& path);

}  // namespace ulmfit
