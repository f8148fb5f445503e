// run_estimate: how long a run will take, from how long each job will take. Pure: no database.
//
// A job's duration comes from a few sampled batches (rehearse): each sample gives the cost per
// row at its position in the key range; the cost in between is interpolated linearly and held
// level beyond the first and last sample, and the job's duration is that cost integrated over
// its rows.
//
// The run's duration is found by playing the run's own Scheduler (scheduler.h) forward in time
// on `threads` workers: lists in `after:` order, independent lists side by side, the slices of a
// job with `parallel: K` as K tasks sharing the job's time, a job with `parallel: auto` shared
// by as many workers as are idle while it runs (their shares end together). So the estimate follows
// every rule the real run follows, and a change to those rules changes the estimate with it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "plan/scheduler.h"

namespace pgxform {

struct SampleCost {
  double position;  // 0..1 in the key range: the middle of the sampled batch
  double ms_per_row;
};

// Milliseconds for `rows` rows whose cost per row follows the samples (none: 0).
double projected_job_ms(std::vector<SampleCost> samples, double rows);

struct RunEstimate {
  double seconds = 0;
  std::map<std::string, double> list_finish;  // seconds from the start, per list
  std::vector<std::string> critical_path;     // the lists that decide the end, first to last
};

// Jobs missing from `job_seconds` take no time (steps, jobs that were not measured).
RunEstimate estimate_run(const std::vector<PlannedList>& plan,
                         const std::map<std::string, double>& job_seconds, int threads);

}  // namespace pgxform
