#include "util/signals.h"

#include <atomic>
#include <csignal>

namespace ulmfit {
namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void OnStopSignal(int signal) {
  // A second Ctrl-C while the checkpoint is being written falls back to the default action.
  if (g_stop_signal.load() != 0) {
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  g_stop_signal.store(signal);
}

}  // namespace

void InstallStopSignalHandlers() {
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
}

int StopSignal() { return g_stop_signal.load(); }

void ClearStopSignal() { g_stop_signal.store(0); }

}  // namespace ulmfit
