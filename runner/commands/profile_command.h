// profile_command: `pgxform profile [-f FILE] [JOB...] [--json] [--html FILE]` — per batched
// job: batches, rows, rows per second, p50/p95/max batch duration, the trend of the cost per
// row (flat, growing, or insufficient below 12 batches; see trend.h), its growth, and for an
// unfinished job an ETA that follows the trend. Growing jobs get a warning with their projected
// duration. Reads pgxform.batch_log and job_state, and the planner's estimate of the leading
// table's rows for the rows still to do (its estimate minus rows_done). Writes nothing to the
// database.
//
// --json prints {"jobs": [{"job": ..., "trend": "flat" | "growing" | "insufficient",
// "batches": N, "rows": N, "rows_per_second": x, "p50_ms": x, "p95_ms": x, "max_ms": x,
// "growth": x | null, "eta_seconds": x | null, "status": ..., "shared_blks_hit": N | null, ...
// (the eight counters of block_counters.h), "blocks_per_row": x | null, "blocks_growth": x |
// null, "bisect_batches": N, "bisect_rows": N, "retry_batches": N, "retry_rows": N}, ...]}:
// the keys "jobs", "job" and "trend" are a contract. growth is null below 4 batches;
// eta_seconds is null for a job that is done, has no batches yet, or whose table was never
// analyzed. The figures are of the job's own batches; the ranges of bisect and retry-failed
// are counted in the last four keys, and in a note under the table (job_profile.h).
// --html FILE also writes the report of report.h.
//
// fetch (ProfileInputs per job) -> compute (job_profile.h) -> render (print_profile_table,
// print_profile_json, report.h).
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "analysis/job_profile.h"
#include "commands/command_options.h"
#include "plan/jobs_file.h"

namespace pgxform {

enum class ProfileFormat { table, json };

struct ProfileOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every batched job of the file
  ProfileFormat format = ProfileFormat::table;
  std::optional<std::string> html;  // write the HTML report here too
};

// Each selected job's profile, read from options.dsn's state (nothing written).
std::vector<JobProfile> read_profiles(const ProfileOptions& options, const JobsFile& file);
// The table, or the JSON, as options.format says.
void print_profiles(std::ostream& out, const ProfileOptions& options,
                    const std::vector<JobProfile>& profiles);
// "2026-12-07 04:45:00 UTC": when a report was generated.
std::string utc_now();
// Opens `path` (an InputError naming --html when it cannot be), has `write` write the report
// into it, and says where it went.
void write_html_file(const std::string& path, const std::function<void(std::ostream&)>& write);

// Exit 0; throws PreflightError (exit 2) for a job that is not in the file or is a sql: step.
int profile_command(const ProfileOptions& options, std::ostream& out);

void print_profile_table(std::ostream& out, const std::vector<JobProfile>& jobs);
void print_profile_json(std::ostream& out, const std::vector<JobProfile>& jobs);

}  // namespace pgxform
