// SIGINT/SIGTERM handling: the handler only records the signal; training loops poll it at step
// boundaries, save a checkpoint and exit with 128 + signal, so scripts can tell an interruption
// from a crash.
#pragma once

namespace ulmfit {

void InstallStopSignalHandlers();
// The signal number that asked us to stop, or 0.
int StopSignal();
// For tests: forget a recorded signal.
void ClearStopSignal();

}  // namespace ulmfit
