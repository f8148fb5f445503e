// retry_failed_command: `pgxform retry-failed [JOB...]` — re-runs the key ranges that
// `on_error: skip` set aside (failed_ranges.h), once the function or the data is fixed. Each
// range is processed as a run processes a range (batch_sql.h: range_sql, the cursor staying
// where it is) in its own transaction, with its batch_log row (slice and counters) and its
// resolution; a range that fails again keeps its row, with the new error and one more attempt.
// Every job with ranges to retry is claimed first (state_locks.h: JobClaim), so that a job a
// runner holds stops the command before it writes anything. Exit 0 when every range went
// through, 1 when some still fail.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "commands/command_options.h"

namespace pgxform {

struct RetryFailedOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every job
};

int retry_failed_command(const RetryFailedOptions& options, std::ostream& out);

}  // namespace pgxform
