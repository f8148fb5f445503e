// job_profile: one batched job's batches, as profile shows them: in commit order, each placed
// in the key range when the key is numeric, with the job's figures (trend.h), an ETA for the
// rows still to do, and the warning for a growing job. Pure: profile_command reads the inputs,
// report.h draws the result as HTML.
//
// The figures are those of the job's own batches. The ranges that bisect narrowed down and
// those that retry-failed redid (batch_log.h: BatchKind) are set apart: mostly of one row, a
// bisect range costs its fixed overhead (7 ms for one row where the job's batches take 86 ms
// for a thousand), so with them a job's p50 would say 7 ms. They are counted, and kept with
// their own figures, for the report to show beside the job's. So batches + the set-apart
// batches are the job's batch_log rows, and rows + their rows its rows done.
#pragma once

#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "analysis/key_span.h"
#include "analysis/logged_batch.h"
#include "analysis/trend.h"

namespace pgxform {

// A batch set apart from the job's figures.
struct SetApartBatch {
  BatchKind kind = BatchKind::bisect;
  long long batch_no = 0;
  std::string first_key, last_key;
  long long rows = 0;
  double duration_ms = 0;
  double started_s = 0;            // seconds since the epoch
  double position = std::nan("");  // 0..1 in the key range; NaN when unknown
  std::size_t after = 0;           // the job's batches committed before it
};

// The set-apart batches of one kind, summed up.
struct SetApartFigures {
  std::size_t batches = 0;
  long long rows = 0;
  double p50_ms = 0, max_ms = 0;
};

struct JobProfile {
  std::string job;
  std::string list;
  std::string status;                    // from job_state; "pending" when never started
  std::vector<BatchSample> batches;      // commit order
  std::vector<long long> batch_numbers;  // batch_no of each batch, for tooltips
  std::vector<std::string> first_keys;   // first key of each batch, for `explain --at`
  bool key_positions = false;            // positions are the key's (else batch order)
  JobFigures figures;                    // of `batches` only
  std::vector<SetApartBatch> set_apart;  // commit order
  SetApartFigures bisected, retried;
  std::optional<long long> remaining_rows;  // none when done or unknown
  std::optional<double> eta_seconds;        // none when done or unknown
};

// What profile reads about one job.
struct ProfileInputs {
  std::string job, list;
  std::string status = "pending";
  long long rows_done = 0;
  std::vector<LoggedBatch> batches;      // commit order, of every kind
  std::optional<KeySpan> span;           // numeric keys: the table's first and last key
  std::optional<double> estimated_rows;  // the planner's estimate of the table's rows
};

JobProfile compute_profile(const ProfileInputs& inputs);

// What the figures leave out ("items: its figures leave out 21 bisect batches (21 rows, p50
// 6.8 ms) and ..."), or none.
std::optional<std::string> set_apart_note(const JobProfile& job);

// The warning for a growing job ("quadratic is growing: ..."), or none.
std::optional<std::string> trend_warning(const JobProfile& job);

}  // namespace pgxform
