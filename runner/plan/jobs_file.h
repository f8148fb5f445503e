// jobs_file: reads and validates jobs.yaml into plain structs. Knows no database.
//
// The file names lists of jobs. A list runs its jobs in order; `after:` makes a list wait
// until every job of the named lists is done. A job is either a batched transform (`table`,
// `key`, `function`) or a one-shot step (`sql`). Everything that can be checked without a
// database is checked here, and every problem is a JobsFileError carrying file and line, so
// that the command line can report it and exit 2 before anything is written.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/errors.h"
#include "base/setting_limits.h"

namespace pgxform {

// A problem in the jobs file: `file:line: message` (line is 1-based, 0 when unknown).
class JobsFileError : public InputError {
 public:
  JobsFileError(const std::string& file, int line, const std::string& message);
  const std::string& file() const { return m_file; }
  int line() const { return m_line; }

 private:
  std::string m_file;
  int m_line;
};

// A schema-qualified name as written (`legacy.orders` or `orders`, schema then defaults).
struct QualifiedName {
  std::string schema;  // empty when not given
  std::string name;
  std::string text() const { return schema.empty() ? name : schema + "." + name; }
};

enum class OnError { stop, skip };

// A job's changes.also: entries, at most.
constexpr std::size_t k_max_also = 32;
// max_slot_retained_mb: the default, and the largest a file may set (1 PB).
constexpr long k_default_max_slot_retained_mb = 4096;
constexpr long k_max_slot_retained_mb = 1000L * 1000 * 1000;

// What a job inherits from `defaults:` and may override.
enum class SynchronousCommit { on, off };

// `throttle:`: the database's health signals a job waits for (health_throttle.h). A job's own
// limits override the defaults' one by one.
struct ThrottleLimits {
  std::optional<long> max_replica_lag_s;
  std::optional<long> max_active_sessions;
  std::optional<long> max_xact_age_s;
  std::optional<long> max_wal_mb_per_s;
  bool any() const {
    return max_replica_lag_s || max_active_sessions || max_xact_age_s || max_wal_mb_per_s;
  }
};

struct JobSettings {
  long batch_size = 10000;     // the first batch's size; then sized by time (batch_sizer.h)
  long target_batch_ms = 500;  // 0: every batch of batch_size
  long min_batch_size = 100;
  long max_batch_size = 1000000;
  // off (the default): a batch's COMMIT does not wait for its WAL to reach the disk; a task's
  // closing state change does (state_store.h). See jobs-file.md.
  SynchronousCommit synchronous_commit = SynchronousCommit::off;
  int retries = 5;              // transient failures retried per batch
  long retry_backoff_ms = 200;  // first backoff; doubles per attempt, with jitter
  OnError on_error = OnError::stop;
  ThrottleLimits throttle;
  bool bisect = false;  // with on_error: skip, narrow a failing batch down by halving
  // PostgreSQL durations ("30min", "5s", "0" for none), set for the job's session.
  std::string statement_timeout = "1h";
  std::string lock_timeout = "1min";
  std::string idle_in_transaction_session_timeout = "10min";
};

// `changes:` of a batched job (or of `defaults:`): how changes to its leading table are
// captured for catch-up (docs/catch-up.md). none: they are not; trigger: by statement-level
// triggers into the state schema's change_log (change_capture.h); logical: by a logical
// replication slot that pgxform reads into the same change_log (logical_capture.h).
enum class ChangeCapture { none, trigger, logical };
// "none", "trigger", "logical": as the jobs file spells it.
const char* capture_name(ChangeCapture capture);

// One entry of `changes.also:`: another table whose changes the job's transform reads (an
// order's status in the transform of its lines), so that they refresh the job's keys too.
// Its triggers record `column` of every changed row (old and new); catch-up maps those values
// to the job's keys: the leading table's rows whose column `match` equals one of them, or
// what `keys_function(values column_type[])` returns (SETOF the key's type).
struct AlsoTable {
  QualifiedName table;
  std::string column;
  std::string match;            // a column of the job's leading table, or empty
  QualifiedName keys_function;  // when match is empty
  int line = 0;                 // where the entry starts, for messages
};

struct Job {
  std::string name;
  std::string list;
  int line = 0;  // where the job starts in the file, for messages
  // A batched job:
  QualifiedName table;
  std::string key;
  QualifiedName function;
  long batch_size = 0;
  int parallel = 1;  // number of slices
  // `parallel: auto`: one slice at first, split while workers are idle (docs/parallelism.md).
  bool parallel_auto = false;
  JobSettings settings;
  std::string verify;       // a query ($1, $2: a key range) returning wrong or missing keys
  bool idempotent = false;  // running a range twice does no harm (verify --repair needs it)
  ChangeCapture changes = ChangeCapture::none;
  QualifiedName refresh_function;      // with changes: trigger, called as f(keys key_type[])
  std::vector<AlsoTable> also;         // changes.also: (change_log via 1, 2, ... in this order)
  bool changes_from_defaults = false;  // `changes:` came from defaults:, for messages
  // writes: the tables its function writes (its targets), as the file names them; empty when
  // not given. validate reads them for foreign keys between two capturing jobs' targets.
  std::vector<QualifiedName> writes;
  bool captures() const { return changes != ChangeCapture::none; }
  // A one-shot step:
  std::string sql;
  bool is_step() const { return !sql.empty(); }
};

struct JobList {
  std::string name;
  int line = 0;
  std::vector<std::string> after;
  std::vector<Job> jobs;
};

struct JobsFile {
  std::string path;
  std::string state_schema = "pgxform";
  int default_threads = 4;
  bool default_parallel_auto = false;  // defaults.parallel: auto
  long default_batch_size = 10000;
  JobSettings defaults;
  ChangeCapture default_changes = ChangeCapture::none;  // defaults.changes
  // max_slot_retained_mb: run and catch-up warn when the slot of changes: logical retains more
  // WAL than this (logical_capture.h).
  long max_slot_retained_mb = k_default_max_slot_retained_mb;
  std::string scripts_dir;  // `scripts_dir:` resolved against the file's folder; default sql/
  std::vector<JobList> lists;

  const Job* find_job(const std::string& name) const;
  const JobList* find_list(const std::string& name) const;
};

// Parses and validates; throws JobsFileError naming the file and line.
JobsFile parse_jobs_file(const std::string& path);
// The same from text; `path` is only used in messages.
JobsFile parse_jobs_text(const std::string& text, const std::string& path);

// Why `name` cannot name a job or a list, beyond what every name may not hold (text_check.h:
// control characters): an `=`, since `pgxform pause` and `set` read NAME=VALUE as a setting,
// so that such a job could never be steered. None when it can.
std::optional<std::string> steering_flaw(const std::string& name);

// Splits `schema.name` (either part may be double-quoted); throws std::invalid_argument.
QualifiedName parse_qualified_name(const std::string& text);

}  // namespace pgxform
