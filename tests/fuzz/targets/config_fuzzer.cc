// libFuzzer target: a YAML config through LoadConfigFromString.
// Input format: RunTarget in fuzz_readers.h; how to run: docs/fuzzing.md.
#include "fuzz/targets/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ulmfit_fuzz::FuzzOne("config", data, size);
}
