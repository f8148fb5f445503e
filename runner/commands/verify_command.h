// verify_command: `pgxform verify [JOB...] [--repair] [--threads N]` — runs each job's
// `verify:` query over the key range the job processed (up to its cursor unless it is done),
// batch by batch, read-only (verify_job.h), and reports how many rows offend and the first of
// their keys, in key order. With --repair it re-runs the function over the batches that hold
// offending keys, for jobs marked `idempotent: true` only. Exit 0 when nothing is wrong (or
// everything was repaired), else 1.
//
// The jobs are verified in parallel on the worker pool (worker_pool.h: `--threads` workers, one
// connection each, at most one per job), each job as a task of its own: verification knows no
// `after:` order. --repair claims every job it verifies first, on the command's own connection,
// and holds them to the end (state_locks.h: JobClaim): a job that a runner holds is refused
// (exit 2) before anything is read or written.
//
// Output, once every job is done, in file order: per job, a line per repaired range, then its
// line (the batches, the offending rows and the first keys, with --repair the batches
// repaired, the rows checked and the time, and after a failure the error's first line); then
// the whole:
//   items: re-ran [1203, 1500], 0 offending left
//   items: 10 batches checked, 1 offending (first: 1500), 1 of 1 batches repaired, 10 rows in 0.1 s
//   orders: 3 batches checked, 0 offending, 3 rows in 0.0 s, then failed (SQLSTATE 42P01): ...
//   2 jobs verified in 0.2 s on 2 threads: 13 batches, 13 rows, 1 offending, 1 failed
// The log says meanwhile how each job gets on (verify_job.h).
//
// fetch (verify_targets) -> act (verify_job, repair_job, on the pool) -> render (print_*).
#pragma once

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "base/setting_limits.h"
#include "commands/command_options.h"
#include "engine/verify_job.h"

namespace pgxform {

struct VerifyOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every job with a verify: query
  VerifyMode mode = VerifyMode::check;
  int threads = 0;                                          // 0: defaults.threads of the file
  int reserve_connections = k_default_reserve_connections;  // left free on the server
  // How often a job's progress is logged (tests: 0, every batch).
  std::chrono::milliseconds progress_every = std::chrono::seconds(10);
};

int verify_command(const VerifyOptions& options, std::ostream& out);

// One job's lines (see above).
void print_verification(std::ostream& out, const Verification& v, VerifyMode mode);
// The last line: the jobs, the time and the threads, and the sums.
void print_verify_total(std::ostream& out, const std::vector<Verification>& all, double seconds,
                        int threads);

}  // namespace pgxform
