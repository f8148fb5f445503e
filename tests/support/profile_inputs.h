// profile_inputs: what a job's profile is computed from (analysis/job_profile.h), made up
// without a database for the pure tests of the profile and its rendering.
#pragma once

#include <string>

#include "analysis/job_profile.h"

namespace pgxform_test {

// Whether the made-up batches carry EXPLAIN's block counters.
enum class Counters { without, with };

// A running job items of list main: `n` batches of 100 rows over keys 1..100n, 10 ms each, one
// a second.
inline pgxform::ProfileInputs profile_inputs(int n, Counters counters) {
  pgxform::ProfileInputs in;
  in.job = "items";
  in.list = "main";
  in.status = "running";
  for (int i = 0; i < n; ++i) {
    pgxform::LoggedBatch b;
    b.batch_no = i + 1;
    b.first_key = std::to_string(i * 100 + 1);
    b.last_key = std::to_string(i * 100 + 100);
    b.rows = 100;
    b.duration_ms = 10;
    b.started_s = 1.7e9 + i;
    if (counters == Counters::with) b.blocks = pgxform::BlockCounters{150, 50, 1, 0, 0, 0, 0, 0};
    in.batches.push_back(b);
    in.rows_done += b.rows;
  }
  return in;
}

}  // namespace pgxform_test
