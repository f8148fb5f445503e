// libFuzzer target: any bytes as a script's file name and text (fuzz_targets.h: script_input).
// A broken promise traps; another exception, a crash, a sanitizer report is a bug too, which
// libFuzzer reports with the input.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (!pgxform_fuzz::script_input(data, size)) __builtin_trap();
  return 0;
}
