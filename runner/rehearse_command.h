// rehearse_command: `pgxform rehearse [JOB...] [--samples N]` — before the migration window,
// estimates how long each job and the whole run will take, without changing any data.
//
// For each batched job it takes N samples (default 3) spread across the key range — the start,
// the end, and evenly in between. A sample is 3 consecutive batches of the job's batch_size
// keys, each in its own transaction that is ROLLED BACK, starting after a key picked from
// pg_stats' histogram of the key (or, for a table never analyzed, by walking the key's index);
// its cost per row is the median of the three, so that one disturbed batch does not count. A
// one-key batch runs first, unmeasured, so that the samples do not pay for building plans.
// Each sample gives a cost per row; the job's projected duration integrates it over the
// table's estimated rows (pg_class.reltuples, or a count when there is no estimate), and a job
// whose last sample costs more than twice its first per row is flagged as growing. The whole
// run's duration plays the run's scheduler on the thread count (run_estimate.h).
//
// A job whose rows reference rows that a job of an earlier list writes (a foreign key into a
// target that is still empty) fails its samples with SQLSTATE 23503; it is sampled again with
// session_replication_role = replica for the rolled-back transactions, which fires no
// foreign-key checks (this needs a superuser), and the output says so: the checks' own cost is
// then missing from the figures.
//
// What a rehearsal cannot see: a cost that grows because the job's OWN output grows (an
// anti-join or a sub-select against the table it fills). Each sample runs against the target as
// it is now, nearly empty. `pgxform profile` sees that within the first batches of the real run.
// A rolled-back sample flushes no WAL, so a batch's COMMIT is timed apart, on a few transactions
// that take a transaction id and write nothing else, and added once per batch. The run's state
// writes per batch (one row updated, one inserted) are not counted.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "run_estimate.h"

namespace pgxform {

struct RehearseOptions {
  std::string file = "jobs.yaml";
  std::string dsn;
  std::vector<std::string> jobs;  // empty: every batched job of the file
  int samples = 3;
  int threads = 0;  // 0: defaults.threads of the file, as `run` would use
};

struct RehearsalSample {
  double position = 0;               // the middle of the batch in the key range
  std::optional<std::string> after;  // the batches started after this key (none: the first key)
  int batches = 0;                   // consecutive batches, each rolled back
  long long rows = 0;
  double ms = 0;          // their wall time: BEGIN, the batch, ROLLBACK, each
  double ms_per_row = 0;  // the median of the batches' costs per row
};

struct JobRehearsal {
  std::string job;
  double rows = 0;       // the table's estimated rows
  bool counted = false;  // counted, as the table was never analyzed
  // Its rows reference rows an earlier job writes: measured without foreign-key checks.
  bool foreign_keys_unchecked = false;
  double batches = 0;
  std::vector<RehearsalSample> samples;
  double projected_ms = 0;       // the job alone, slices one after the other
  std::optional<double> growth;  // last sample's cost per row over the first's
  bool growing() const;          // growth above 2
  std::string error;             // a sample failed
};

struct Rehearsal {
  std::vector<JobRehearsal> jobs;  // in file order
  double commit_ms = 0;            // what one COMMIT costs, counted once per batch
  int threads = 1;
  RunEstimate run;
};

// Measures, and prints nothing. Throws like rehearse_command.
Rehearsal rehearse(const RehearseOptions& options);

// Exit 0 when every sample ran, 1 when a job's function failed in a sample; throws
// PreflightError (exit 2) for an unknown job, a step, or --samples below 1.
int rehearse_command(const RehearseOptions& options, std::ostream& out);

}  // namespace pgxform
