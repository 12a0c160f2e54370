// libFuzzer target: a TSV file through ReadLabeledData; the first byte picks the column
// settings and whether the file is plain, gzipped or corrupt gzip.
// Input format: RunTarget in fuzz_readers.h; how to run: docs/fuzzing.md.
#include "fuzz/targets/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ulmfit_fuzz::FuzzOne("tsv", data, size);
}
