// The run directory lock (src/util/dir_lock.*): a second process is refused with the holder's
// pid; the lock goes when its holder dies, whatever way.
#include "util/dir_lock.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "test_util.h"

namespace ulmfit {
namespace {
namespace fs = std::filesystem;

TEST(DirLockTest, AnotherProcessIsRefusedUntilTheHolderDies) {
  const fs::path dir = ulmfit_test::TempDir("dir_lock");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t holder = ::fork();
  if (holder == 0) {
    const bool locked = LockRunDirectory(dir.string()).ok();
    const char byte = locked ? '1' : '0';
    (void)!::write(ready[1], &byte, 1);
    while (true) ::pause();  // until SIGKILL: no unlock, no exit handlers
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, '1');

  const absl::Status refused = LockRunDirectory(dir.string());
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(refused.message()),
            dir.string() + ": another ulmfit run (pid " + std::to_string(holder) +
                ") is using this run directory; wait for it to finish, or choose another "
                "run.output_dir");

  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  // The lock file stays behind, and locks nothing.
  EXPECT_TRUE(fs::exists(dir / kDirLockFile));
  EXPECT_TRUE(LockRunDirectory(dir.string()).ok());
  EXPECT_EQ(ulmfit_test::Read(dir / kDirLockFile), std::to_string(::getpid()) + "\n");
  // Again in the same process: already held.
  EXPECT_TRUE(LockRunDirectory((dir / ".").string()).ok());
  ::close(ready[0]);
  ::close(ready[1]);
}

}  // namespace
}  // namespace ulmfit
