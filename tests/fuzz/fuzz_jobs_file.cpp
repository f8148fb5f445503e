// libFuzzer target: any bytes as a jobs file. Parsing either succeeds or throws JobsFileError
// (an input error naming the file and line); anything else — another exception, a crash, a
// sanitizer report, a stack overflow — is a bug that libFuzzer reports with the input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "plan/jobs_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const pgxform::JobsFile file = pgxform::parse_jobs_text(text, "fuzz.yaml");
    for (const auto& list : file.lists)
      for (const auto& job : list.jobs)
        if (!file.find_job(job.name)) __builtin_trap();  // what was read can be found again
  } catch (const pgxform::JobsFileError&) {
    // bad input, reported as such
  }
  return 0;
}
