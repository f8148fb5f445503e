// batch_sql: the one builder of the SQL that processes a key range of a job — that calls the
// job's function over [lo, hi] and counts the leading table's rows in that range. Every path
// that finds or processes a range builds its statement here: a run's batches and bisected
// ranges, retry-failed, verify (its batches) and verify --repair, rehearse and explain. So a
// range is found, counted and logged the same way whoever processes it. Identifiers come
// quoted from the catalog; every value is a bound parameter.
//
// The statements that find or process a range take the same five parameters, so that one call
// site runs them all:
//   $1  the cursor's last key as it was read (text; NULL before the first batch, and for a
//       range redone below the cursor) — the cursor moves only from there, so a batch can
//       never be applied twice;
//   $2  the batch size (batch statements) or the range's first key (range statements, text);
//   $3  the job's name;
//   $4  the slice (0 for a job without slices);
//   $5  the slice's hi_key (batch statements of a bounded slice) or the range's last key;
//   $6  (batch statements of a given last key only) the batch's last key, found beforehand on
//       another connection (bound_finder.h), and $7 the number of keys up to it, as that walk
//       counted them (the batch's rows; $2, the size asked, is more for the last batch of a
//       range).
//
// A range that is counted in the state is TWO statements in one transaction:
//   the batch statement finds the batch on the key's index (lo: the first key after the cursor;
//   hi: the last of the next batch_size keys, one walk of the index from the cursor, never an
//   OFFSET from the table's start) or takes [$2, $5], calls
//   function(lo, hi), moves the cursor (state_store.h: cursor_move_sql) and counts rows and
//   batches. It runs under EXPLAIN (ANALYZE, BUFFERS, TIMING OFF), whose top plan node counts
//   every buffer the batch touched, the function's own statements included: the plan (one row
//   of JSON) is its result. Its figures go to the transaction-local setting k_batch_setting,
//   as EXPLAIN returns no rows of its own;
//   the log statement (batch_log.h: log_sql) appends the batch_log row with the plan's
//   counters and returns lo, hi, rows and moved.
#pragma once

#include <string>

#include "catalog/catalog.h"
#include "state/state_schema.h"
#include "state/state_store.h"

namespace pgxform {

enum class CursorStart { none, after_last_key };
enum class UpperBound { open, hi_key };
// How a batch of a unique key finds its last key: by its own walk of the key's index, or given
// as $6 by a walk done beforehand, while the batch before it ran (bound_finder.h).
enum class LastKey { walked, given };

// Where the next batch is looked for: after the cursor or from the first key, and up to the
// slice's hi_key or to the end of the table.
struct BatchShape {
  Slicing slicing = Slicing::whole_job;
  CursorStart start = CursorStart::none;
  UpperBound upper = UpperBound::open;
  LastKey last = LastKey::walked;
};

// The next batch, processed and counted (see above); the cursor advances. With LastKey::given
// (a unique key only), the batch is (the cursor, $6]: lo is the first key after the cursor as
// the batch sees it, its rows are $7, as the walk that found $6 counted them; no batch (as when
// no key is left) when $6 is past the slice's hi_key or no key is left up to it — the caller
// then runs the walked statement in the same transaction.
std::string batch_sql(const ResolvedJob& job, const StateSchema& schema, BatchShape shape);

// The same batch statement as a temporary PL/pgSQL function of the session, so that it is
// planned once per session rather than once per batch: a statement under EXPLAIN is planned
// anew each time, and planning the batch statement costs more than running it on a cheap
// transform. Its plan is generic (plan_cache_mode = force_generic_plan: custom plans would be
// chosen, for the unknown OFFSET and LIMIT, and built every time); the job's function is called
// through a second temporary function that restores the session's plan_cache_mode, so that the
// DBA's statements are planned as they would be without pgxform. The call runs under EXPLAIN
// as batch_sql does, and its top node counts every buffer of the function it calls.
struct BatchFunction {
  std::string name;  // pg_temp.pgxform_batch_<hash>; empty when the job cannot have one
  std::string ddl;   // the two CREATE FUNCTION statements
  std::string call;  // the batch statement: EXPLAIN ... SELECT name($1, ..., $5[, $6, $7])
};
BatchFunction batch_function(const ResolvedJob& job, const StateSchema& schema, BatchShape shape);
// The explicit range [$2, $5], processed and counted: `advance` moves the cursor past it (a
// bisected range), `stay` leaves the cursor (a range redone below it: retry-failed; $1 NULL).
std::string range_sql(const ResolvedJob& job, const StateSchema& schema, Slicing slicing,
                      CursorMove move);

// Read-only: the next batch's lo and hi as text, and whether it is full (parameters as
// batch_sql; the shape's LastKey is not used: the bounds are walked).
std::string bounds_query(const ResolvedJob& job, BatchShape shape);
// Read-only: the next batch's lo and hi as text and its rows, counted as batch_sql counts them
// (a full batch of a unique key is $2 rows, uncounted); no row when no key is left. Parameters
// as batch_sql. For verify, whose batches are sized by time as a run's are.
std::string next_range_query(const ResolvedJob& job, BatchShape shape);
// Read-only: splits [$1, $2] in two halves by rows; returns the last key of the first half and
// the first key of the second (NULL when the range holds a single key value).
std::string split_query(const ResolvedJob& job);

// Read-only: the rows of a slice's range after its cursor ($1: the cursor's last key, $2: the
// slice's hi_key, as text, NULL where the shape has none) and its split point, as text: the key
// of the row $3 rows (the slice's batch in flight, slice_sharing.h) plus half of the rest into
// the range on the key's index (with $3 = 0, the median; slice_split.h splits there), at most its
// last key; NULL when none is left.
std::string split_point_query(const ResolvedJob& job, BatchShape shape);
// Read-only: the key $3 rows into the same range ($1 and $2 as split_point_query's), as text: one
// walk of the key's index, no count (NULL when the range holds no more than $3 rows).
std::string key_at_query(const ResolvedJob& job, BatchShape shape);

// The next batch processed without touching the state, for a trial in a transaction that is
// rolled back (rehearse): returns lo, hi, rows and the function's result; no row when no key
// is left. Parameters as batch_sql.
std::string trial_batch_sql(const ResolvedJob& job, BatchShape shape);
// The rows of [$1, $2] in the leading table, as one count.
std::string range_rows_query(const ResolvedJob& job);
// The function called over [$1, $2] alone: no count, no state (explain, verify --repair).
std::string call_query(const ResolvedJob& job);

}  // namespace pgxform
