// job_commands: the commands that act on recorded jobs rather than run them.
//   retry-failed [JOB...]  re-runs the ranges set aside in failed_batches (on_error: skip), each
//                          in its own transaction with the range's resolution and its batch_log
//                          row; a range that fails again keeps its row, with the new error and
//                          one more attempt. Exit 0 when every range went through, else 1.
//   reset JOB [--to KEY]   moves a job's cursor back on purpose: to its first key (the job's
//                          counters, batch log, slices and set-aside ranges are cleared) or to
//                          just after KEY (unsliced jobs; set-aside ranges past KEY are dropped,
//                          as the run covers them again). Refused while a runner holds the job.
//   verify [JOB...]        runs each job's `verify:` query over its processed key range, batch
//                          by batch, read-only; reports the count and the first offending keys.
//                          With --repair, re-runs the batches that hold offending keys, for jobs
//                          marked `idempotent: true` only. Exit 0 when nothing is wrong, else 1.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace pgxform {

struct JobCommandOptions {
  std::string file = "jobs.yaml";
  std::string dsn;
  std::vector<std::string> jobs;  // empty: every job (retry-failed, verify)
};

int retry_failed_command(const JobCommandOptions& options, std::ostream& out);
int reset_command(const JobCommandOptions& options, const std::optional<std::string>& to_key,
                  std::ostream& out);
enum class VerifyMode { check, repair };
int verify_command(const JobCommandOptions& options, VerifyMode mode, std::ostream& out);

}  // namespace pgxform
