#include "util/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace ulmfit {
namespace {
bool quiet_logs = false;
}  // namespace

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string FormatCount(double value) {
  if (value >= 1e6) return fmt::format("{:.2f}M", value / 1e6);
  if (value >= 1e3) return fmt::format("{:.1f}k", value / 1e3);
  return fmt::format("{:.0f}", value);
}

ProgressLine::ProgressLine() : tty_(::isatty(STDERR_FILENO) == 1) {}

void ProgressLine::Update(const std::string& text, bool force) {
  if (quiet_logs) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (!force && open_line_ && now - last_draw_ < std::chrono::milliseconds(250)) return;
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    open_line_ = true;
    last_draw_ = now;
  } else if (force) {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
}

void ProgressLine::Finish() {
  if (open_line_) std::fprintf(stderr, "\n");
  open_line_ = false;
}

void SetQuietLogs(bool quiet) { quiet_logs = quiet; }

void LogInfo(const std::string& message) {
  if (!quiet_logs) std::fprintf(stderr, "%s\n", message.c_str());
}

}  // namespace ulmfit
