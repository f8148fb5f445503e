// libFuzzer target: any bytes as a jobs file (fuzz_targets.h: jobs_file_input). A broken
// promise traps; another exception, a crash, a sanitizer report, a stack overflow is a bug too,
// which libFuzzer reports with the input.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (!pgxform_fuzz::jobs_file_input(data, size)) __builtin_trap();
  return 0;
}
