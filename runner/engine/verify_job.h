// verify_job: one job's verification — its `verify:` query run over the keys the job processed,
// batch by batch, read-only — and the repair of the batches where it found offending rows.
// verify_command.h runs one per job, jobs in parallel, each on a worker's connection.
//
// The walk is one read-only transaction (read committed: each statement sees the data as it
// is when it starts), with the job's statement_timeout and lock_timeout. Each batch is found on
// the key's index (batch_sql.h: next_range_query, with its rows), as many keys as
// batch_sizer.h says for the job's settings: batch_size first, then sized by time to
// target_batch_ms as the job's own batches are, so that a cheap query takes large batches and
// few round trips. Batches follow one another in key order.
//
// The query runs wrapped (verify_sql): the server counts the offending rows and returns only
// the first k_keys_shown, sorted by their first column in that column's own type's order —
// the key's order when the first column is the key, as it should be. (On the client every key
// is text, where "10" sorts before "9".) As batches come in key order, the first keys of the
// first batches that hold any are the job's first offending keys. The ORDER BY and LIMIT also
// lead the planner to plans that read in key order from a small start (index scans, nested
// loops and merge joins on the key) rather than ones that read a table whole to hash it:
// measured on 1.5 million rows, a query that joins its target with no bound of its own read it
// with a Seq Scan for every batch of 10,000 keys unwrapped, and by index wrapped.
//
// The query's plan is read (EXPLAIN, nothing run) on the first batch, and again whenever the
// batches have doubled since (a larger batch may be planned otherwise): a scan without a bound
// (query_plan.h: unbounded_scans) of a table far larger than the batch (many_rows_for) means
// that every batch reads that table whole, or from its first key; a warning, once per job,
// names it and says how to bound it.
//
// Progress: a log line every `every` (10 s from the command line) with the batches, the rows
// checked, their share of the rows expected, the last key checked and the time; one line at
// the end of the job (or one saying that it has processed nothing yet, and is not walked).
//
// Repair (verify --repair, idempotent jobs, claimed by the caller): each batch with offending
// rows is one transaction that calls the function over its range (batch_sql.h: call_query),
// counts what the query still finds, and commits, waiting for its WAL's flush (what verify
// reports repaired stays repaired).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "plan/jobs_file.h"

namespace pgxform {

enum class VerifyMode { check, repair };

// The offending keys shown per job.
constexpr std::size_t k_keys_shown = 10;

// What to verify of one job, read before any job starts.
struct VerifyTarget {
  const Job* spec = nullptr;  // its verify: query and settings
  ResolvedJob job;
  // The last key the job processed (its cursor, while it is not done): the walk stops there.
  // None: to the end of the table. Empty: nothing processed yet, nothing to check.
  std::optional<std::string> limit;
  std::optional<double> expected_rows;  // about the rows to check, for the progress's share
  int slices = 1;                       // the task locks a repair claims
};

// What verify found for one job, and what --repair did.
struct Verification {
  std::string job;
  long long batches = 0;
  long long rows = 0;  // of the leading table, checked
  long long offending = 0;
  std::vector<std::string> first_keys;  // of the offending rows, at most k_keys_shown, sorted
  std::vector<std::pair<std::string, std::string>> bad_ranges;
  struct Repair {
    std::pair<std::string, std::string> range;
    long long left = 0;  // offending rows after the re-run
  };
  std::vector<Repair> repairs;
  double seconds = 0;                // the walk and the repair
  std::optional<std::string> error;  // the query or a repair failed: "(SQLSTATE x): message"
  long long repaired() const;
  // Something is wrong and was not repaired, or the verification failed.
  bool wrong(VerifyMode mode) const;
};

// The job's verify: query as verify runs it (see above): $1 and $2 the batch's first and last
// key; its rows, the first k_keys_shown in the order of their first column, each with the
// count of all of them in its last column. A trailing semicolon is dropped.
std::string verify_sql(const std::string& query);

// A progress line: "items: verified 1200000 of about 3000000 rows (40%) in 37 batches, up to
// key 1200000, 8.1 s" (without "of about ... (N%)" when no rows are expected).
struct VerifyProgress {
  long long batches = 0;
  long long rows = 0;
  std::optional<double> expected_rows;
  std::string last_key;
  double seconds = 0;
};
std::string progress_line(const std::string& job, const VerifyProgress& progress);
// The line at the end of a job's walk: "items: verified 1000 rows in 10 batches in 0.1 s, 2
// offending".
std::string finished_line(const Verification& v);

// The walk (see above). A failure of the query ends it: the Verification says so, with what
// was checked before.
Verification verify_job(pqxx::connection& conn, const VerifyTarget& target,
                        std::chrono::milliseconds every);
// Re-runs the function over v's bad ranges, in v.repairs (see above); a failure ends it in
// v.error.
void repair_job(pqxx::connection& conn, const VerifyTarget& target, Verification& v);

}  // namespace pgxform
