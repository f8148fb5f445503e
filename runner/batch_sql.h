// batch_sql: the SQL text of a batch, built from a resolved job. Identifiers come quoted from
// the catalog; every value is a bound parameter. All statements but log_sql take the same five
// parameters, so that one call site runs them all:
//   $1  the cursor's last key as it was read (text; NULL before the first batch) — the cursor
//       moves only from there, so a batch can never be applied twice;
//   $2  the batch size (batch statements) or the range's first key (range statements, text);
//   $3  the job's name;
//   $4  the slice (0 for a job without slices);
//   $5  the slice's hi_key (batch statements of a bounded slice) or the range's last key.
//
// A batch is TWO statements in one transaction:
//   the batch statement finds the batch on the key's index (lo: the first key after the cursor;
//   hi: the last of the next batch_size keys, never OFFSET), calls function(lo, hi), moves the
//   cursor to hi and counts rows and batches. It runs under EXPLAIN (ANALYZE, BUFFERS, TIMING
//   OFF), whose top plan node counts every buffer the batch touched, the function's own
//   statements included: the plan (one row of JSON) is its result. Its figures (lo, hi, rows,
//   `moved`: 0 when the cursor was not where it was read, and the caller must roll back) go to
//   the transaction-local setting k_batch_setting, as EXPLAIN returns no rows of its own;
//   the log statement (log_sql) takes the job's name as $1 and the plan's counters as $2..$9
//   (block_counters.h, in k_counter_fields' order), appends the batch_log row, and returns lo,
//   hi, rows and moved — no row when there was no key left.
#pragma once

#include <string>

#include "catalog.h"

namespace pgxform {

// Where the batch statement leaves its figures for the log statement (SET LOCAL: gone at the
// end of the transaction).
inline constexpr const char* k_batch_setting = "pgxform.batch";

enum class Slicing { whole_job, slice };
enum class CursorStart { none, after_last_key };
enum class UpperBound { open, hi_key };

struct BatchShape {
  Slicing slicing = Slicing::whole_job;
  CursorStart start = CursorStart::none;
  UpperBound upper = UpperBound::open;
};

// Finds the next batch and processes it, as described above.
std::string batch_sql(const ResolvedJob& job, const std::string& state, BatchShape shape);
// Processes the explicit range [$2, $5] (used when a failing batch is narrowed down).
std::string range_sql(const ResolvedJob& job, const std::string& state, Slicing slicing);
// Appends the batch_log row of the batch statement just run: $1 the job's name, $2..$9 the
// counters of its plan.
std::string log_sql(const std::string& state);
// Moves the cursor past [$2, $5] and records the range in failed_batches with SQLSTATE $6 and
// error $7, in one statement. Returns `moved`.
std::string skip_sql(const std::string& state, Slicing slicing);
// Read-only: the next batch's lo and hi as text (parameters as batch_sql).
std::string bounds_query(const ResolvedJob& job, BatchShape shape);
// Read-only: splits [$1, $2] in two halves by rows; returns the last key of the first half and
// the first key of the second (NULL when the range holds a single key value).
std::string split_query(const ResolvedJob& job);

}  // namespace pgxform
