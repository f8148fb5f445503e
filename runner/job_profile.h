// job_profile: one batched job's batches, as profile shows them: in commit order, each placed
// in the key range when the key is numeric, with the job's figures (trend.h), an ETA for the
// rows still to do, and the warning for a growing job. Pure: profile_command reads the inputs,
// report.h draws the result as HTML.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "batch_log.h"
#include "table_stats.h"
#include "trend.h"

namespace pgxform {

struct JobProfile {
  std::string job;
  std::string list;
  std::string status;                    // from job_state; "pending" when never started
  std::vector<BatchSample> batches;      // commit order
  std::vector<long long> batch_numbers;  // batch_no of each batch, for tooltips
  std::vector<std::string> first_keys;   // first key of each batch, for `explain --at`
  bool key_positions = false;            // positions are the key's (else batch order)
  JobFigures figures;
  std::optional<long long> remaining_rows;  // none when done or unknown
  std::optional<double> eta_seconds;        // none when done or unknown
};

// What profile reads about one job.
struct ProfileInputs {
  std::string job, list;
  std::string status = "pending";
  long long rows_done = 0;
  std::vector<LoggedBatch> batches;      // commit order
  std::optional<KeySpan> span;           // numeric keys: the table's first and last key
  std::optional<double> estimated_rows;  // the planner's estimate of the table's rows
};

JobProfile compute_profile(const ProfileInputs& inputs);

// The warning for a growing job ("quadratic is growing: ..."), or none.
std::optional<std::string> trend_warning(const JobProfile& job);

}  // namespace pgxform
