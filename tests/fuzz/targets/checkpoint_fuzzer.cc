// libFuzzer target: LoadCheckpoint on a tiny model's checkpoint with one file replaced; the first
// byte picks state.json, model.pt, optimizer.pt or state.pt.
// Input format: RunTarget in fuzz_readers.h; how to run: docs/fuzzing.md.
#include "fuzz/targets/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ulmfit_fuzz::FuzzOne("checkpoint", data, size);
}
