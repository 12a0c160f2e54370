// libFuzzer target: a torch.save file through ParseTorchFile, StateDictOf and the fastai import.
// Input format: RunTarget in fuzz_readers.h; how to run: docs/fuzzing.md.
#include "fuzz/targets/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ulmfit_fuzz::FuzzOne("torch_file", data, size);
}
