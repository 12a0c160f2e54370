// One ulmfit process at a time in a run directory: two runs writing the same directory would
// leave, say, the tokenizer of one with the language model of the other.
#pragma once

#include <string>

#include "util/status.h"

namespace ulmfit {

// The name of the lock file inside a locked directory; it holds the holder's pid.
inline constexpr const char* kDirLockFile = ".ulmfit.lock";

// Takes an advisory lock (flock) on `dir` (which must exist) for the rest of this process: the
// kernel drops it when the process ends, a crash included, so a stale lock file locks nothing.
// An error naming the directory and the holder's pid when another process holds it; taking it
// again in the same process is a no-op. On a file system without locks it logs that and goes on.
absl::Status LockRunDirectory(const std::string& dir);

}  // namespace ulmfit
