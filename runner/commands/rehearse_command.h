// rehearse_command: `pgxform rehearse [JOB...] [--samples N] [--json]` — before the migration
// window, estimates how long each job and the whole run will take, without changing any data.
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
// foreign-key checks (this needs a superuser) and none of the tables' ordinary triggers either.
// The checks it skipped are counted and their cost added back: in each sample batch's
// transaction, before the rollback, the rows it inserted into tables that have foreign keys,
// once per foreign key (pg_stat_get_xact_tuples_inserted, read at the start and at the end of
// the transaction). One check's cost is calibrated once, after the first job that needed it,
// on temporary tables in a transaction that is rolled back (20,000 rows into a child with a
// foreign key and into one without, the difference per row, the median of three). A sample's
// cost per row is then the median of its batches' plus its checks per row times that cost.
// Only inserts count: an update is checked only when it changes the referencing columns, and
// a delete's ON DELETE actions are not counted; a row whose referencing columns are all null
// counts though its check costs nearly nothing. The skipped triggers' cost stays missing, and
// the output says so.
//
// --json prints one object: {"threads": N, "commit_ms": x | null, "fk_check_ms": x | null,
// "seconds": x, "critical_path": ["list", ...], "lists": [{"list": "...", "finish_seconds":
// x}, ...], "jobs": [{"job": "...", "rows": x, "batches": x, "projected_seconds": x | null,
// "trend": "flat" | "growing" | null, "growth": x | null, "foreign_keys_unchecked": bool,
// "fk_checks_per_row": x | null, "samples": [{"position": x, "after": "key" | null, "rows": n,
// "ms_per_row": x}, ...], "error": "..." | null}, ...]}: "seconds" is the whole run's
// projection, "lists" in the order of their names, "jobs" in file order.
//
// What a rehearsal cannot see: a cost that grows because the job's OWN output grows (an
// anti-join or a sub-select against the table it fills). Each sample runs against the target as
// it is now, nearly empty. `pgxform profile` sees that within the first batches of the real run.
// A rolled-back sample flushes no WAL, so a batch's COMMIT is added once per batch at the mean
// time of the server's own WAL syncs (pg_stat_wal), when it times them. Rehearse commits
// nothing, so a logical replication slot (a CDC consumer) receives nothing from it: its
// samples and probes are all rolled back. The run's state writes per batch (one row updated,
// one inserted) are not counted.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "analysis/run_estimate.h"
#include "commands/command_options.h"

namespace pgxform {

enum class RehearseFormat { table, json };

struct RehearseOptions : CommandOptions {
  std::vector<std::string> jobs;  // empty: every batched job of the file
  int samples = 3;
  int threads = 0;  // 0: defaults.threads of the file, as `run` would use
  RehearseFormat format = RehearseFormat::table;
};

struct RehearsalSample {
  double position = 0;               // the middle of the batch in the key range
  std::optional<std::string> after;  // the batches started after this key (none: the first key)
  int batches = 0;                   // consecutive batches, each rolled back
  long long rows = 0;
  double ms = 0;  // their wall time: BEGIN, the batch, ROLLBACK, each
  // Measured without foreign-key checks: the checks they skipped (see above).
  long long fk_checks = 0;
  // The median of the batches' costs per row, plus the skipped checks' cost per row.
  double ms_per_row = 0;
};

struct JobRehearsal {
  std::string job;
  double rows = 0;       // the table's estimated rows
  bool counted = false;  // counted, as the table was never analyzed
  // Its rows reference rows an earlier job writes: measured without foreign-key checks.
  bool foreign_keys_unchecked = false;
  std::optional<double> fk_checks_per_row;  // unchecked: the checks skipped, per row sampled
  double projected_fk_ms = 0;               // the part of projected_ms that is their cost
  double batches = 0;
  std::vector<RehearsalSample> samples;
  double projected_ms = 0;       // the job alone, slices one after the other
  std::optional<double> growth;  // last sample's cost per row over the first's
  bool growing() const;          // growth above 2
  std::string error;             // a sample failed
};

struct Rehearsal {
  std::vector<JobRehearsal> jobs;  // in file order
  // What one COMMIT's WAL flush costs, counted once per batch; none when the server does not
  // time its WAL syncs (track_wal_io_timing off): the projection then leaves it out.
  std::optional<double> commit_ms;
  // What one foreign-key check costs, calibrated when a job was measured without them (none
  // when no job was, or when the calibration failed: their cost is then missing).
  std::optional<double> fk_check_ms;
  int threads = 1;
  RunEstimate run;
};

// Measures, and prints nothing. Throws like rehearse_command.
Rehearsal rehearse(const RehearseOptions& options);

// Exit 0 when every sample ran, 1 when a job's function failed in a sample; throws
// PreflightError (exit 2) for an unknown job or a step, UsageError for --samples below 1.
int rehearse_command(const RehearseOptions& options, std::ostream& out);

// Rendering, pure: the table (`samples`: per job, as asked) and the --json object.
void print_rehearsal_table(std::ostream& out, const Rehearsal& rehearsal, int samples);
void print_rehearsal_json(std::ostream& out, const Rehearsal& rehearsal);

}  // namespace pgxform
