// Progress reporting on stderr: one grep-able line per interval with a fixed key order,
// rewritten in place when stderr is a terminal.
#pragma once

#include <chrono>
#include <string>

namespace ulmfit {

// "1h02m", "3m05s", "12s".
std::string FormatDuration(double seconds);
// Seconds elapsed since `start` on the steady clock.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
// "41.2k", "1.3M".
std::string FormatCount(double value);

class ProgressLine {
 public:
  ProgressLine();
  // Shows `text`. On a terminal, redraws at most ~4 times a second unless `force`;
  // otherwise prints a line only when `force` (the caller decides the interval).
  void Update(const std::string& text, bool force);
  // Ends the in-place line (if any) so the next message starts on a fresh line.
  void Finish();
  bool is_tty() const { return tty_; }

 private:
  bool tty_;
  bool open_line_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

// Log a line on stderr (results go to stdout; everything else goes here).
void LogInfo(const std::string& message);

// Silences LogInfo and every ProgressLine of this process (the non-zero ranks of a
// multi-process run, so that the job's log is rank 0's). Errors are not logged through here.
void SetQuietLogs(bool quiet);

}  // namespace ulmfit
