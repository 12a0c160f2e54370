// What the libFuzzer targets share: each one hands its input to RunTarget (fuzz_readers.h, which
// also says how each target reads its bytes) and turns a bug that is not a crash (a multi-line
// or internal error, a broken promise: Problem) into an abort, so that libFuzzer keeps the
// input. Build and run: docs/fuzzing.md.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_readers.h"

namespace ulmfit_fuzz {

inline int FuzzOne(const char* target, const uint8_t* data, size_t size) {
  static TargetContext* const ctx = [] {
    auto* c = new TargetContext;
    c->scratch = fs::temp_directory_path() / ("ulmfit_fuzzer_" + std::to_string(::getpid()));
    fs::create_directories(c->scratch);
    // libFuzzer ends with exit() (-max_total_time, -runs): remove the scratch folder then.
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(fs::temp_directory_path() / ("ulmfit_fuzzer_" + std::to_string(::getpid())),
                     ignored);
    });
    return c;
  }();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string problem = Problem(RunTarget(target, input, *ctx), input);
  if (!problem.empty()) {
    std::fprintf(stderr, "fuzz: %s: %s\n", target, problem.c_str());
    std::abort();
  }
  return 0;
}

}  // namespace ulmfit_fuzz

// LeakSanitizer: libtorch 1.13 leaks its zip reader's state (about 1 KB) when an archive fails
// PyTorchStreamReader's checks (no "version" record, ...): not ulmfit's to fix, and it would
// stop the checkpoint and weights targets within seconds.
extern "C" const char* __lsan_default_suppressions() { return "leak:libtorch_cpu.so\n"; }
