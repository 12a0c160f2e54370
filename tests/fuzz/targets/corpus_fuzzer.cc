// libFuzzer target: a text corpus through ReadDocuments (one document a line); the first byte picks
// whether the file is plain, gzipped or corrupt gzip.
// Input format: RunTarget in fuzz_readers.h; how to run: docs/fuzzing.md.
#include "fuzz/targets/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ulmfit_fuzz::FuzzOne("corpus", data, size);
}
