// change_log: the changes captured for catch-up (state/009_changes.sql, 011_exact.sql) — every
// statement on the table: how a producer records a change (the capture triggers of
// change_capture.h are one), how a main-pass batch and a catch-up batch consume them, how an
// `also:` table's changes become the job's keys, and what is pending.
//
// A row is (job, via, key): via 0, a change of the job's leading table, `key` the changed row's
// key in its text form (key_text_sql); via N, a change of the table of the job's N-th
// `changes.also:` entry, `key` the value of that entry's column in the changed row.
//
// The rule that makes every captured change applied once (docs/catch-up.md):
//   - a key ABOVE its task's cursor belongs to the main pass. A main-pass batch deletes, in its
//     own statement, the via-0 rows of the keys it processed (consume_cte: index probes of
//     (job, key), never a scan): the rows its statement's snapshot sees, whose changes the
//     function's later snapshots see too. A row it does not see stays, and is refreshed once
//     the cursor passed its key.
//   - a key AT OR BELOW the cursor (below_cursor_sql: the job's, or its slice's; never a key of
//     a main-pass range still set aside in failed_batches) belongs to catch-up: drain_sql
//     refreshes the oldest such keys and deletes exactly the rows it picked, in one statement.
//   - a via-N row is mapped to the job's keys by expand_sql, which turns it into via-0 rows of
//     the mapped keys at or below the cursor, in a transaction that first takes the job's row
//     FOR UPDATE (lock_for_expansion). Every main-pass batch of a job with `also:` holds that
//     row FOR KEY SHARE from its start (also_lock_cte), so no main batch is in flight while
//     the cursor is read, and the keys above it are read by main batches that start after the
//     change committed.
// A key's row is never deleted but in the transaction that refreshed it, or processed it in
// the main pass, or set it aside (set_aside_keys_sql: failed_batches, catch_up true).
#pragma once

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "state/schema_name.h"

namespace pgxform {

// The text form a change of `expr` is recorded in: a date or time (type category D) in its
// ISO (JSON) form, whatever the writer's DateStyle; anything else as ::text.
std::string text_form_sql(char type_category, const std::string& expr);
// The same for an expression of the job's key type.
std::string key_text_sql(const ResolvedJob& job, const std::string& expr);

// `values` as the text of one text[] parameter: {"a","b\"c"} (bound, never pasted into SQL).
std::string text_array(const std::vector<std::string>& values);

// The statement a producer records changes with: @keys@ (a query of one text column, the keys
// or values) for the job (a quoted literal of its name, `job_literal`), via `via`.
std::string record_changes_sql(const StateSchema& schema, const std::string& job_literal, int via,
                               const std::string& keys);

// The statement the slot's reader (slot_reader.h) records decoded values with: $1 the job, $2
// via, $3 the values (text[]), $4 the commit time of each (bigint[], microseconds since
// 2000-01-01, as pgoutput sends it). Each value is read as `type` (format_type) and recorded in
// its text form (text_form_sql, of type category `category`), so that it is the form a batch or
// a trigger records; with an empty `type`, as it came (a value its type no longer reads, which
// catch-up sets aside with the reason).
std::string record_decoded_sql(const StateSchema& schema, const std::string& type, char category);

// For the main-pass batch statement (batch_sql.h), after its CTE `r` (lo, hi of the key's
// type; $3 the job): a CTE that deletes the via-0 rows of the leading table's keys in
// [r.lo, r.hi] that the statement's snapshot sees. Nothing to do when the job has no row.
std::string consume_cte(const ResolvedJob& job, const StateSchema& schema);
// For the same statement of a job with `also:`: a CTE `lk` that holds the job's row FOR KEY
// SHARE until the batch commits; the statement reads it before it calls the function.
std::string also_lock_cte(const StateSchema& schema);

// A condition on the key-type expression `key`: at or below the cursor of job `job` (an SQL
// text expression: a parameter), as above.
std::string below_cursor_sql(const ResolvedJob& job, const StateSchema& schema,
                             const std::string& key, const std::string& job_param);

// Once the job's main pass is done (no key left above any cursor): deletes the via-0 rows of
// keys above their cursor that the leading table no longer holds (inserted and deleted again
// before the main pass reached them): nothing is left to apply for them. $1 the job; scans the
// job's rows, once per catch-up.
std::string settle_sql(const ResolvedJob& job, const StateSchema& schema);

// A catch-up batch statement: under EXPLAIN ANALYZE (the plan, with the block counters of the
// refresh, is its result; batch_log.h: log_batch logs it), it picks via-0 rows at or below the
// cursor — `next`: the oldest until $2 distinct keys, with every other row of those keys;
// `explicit_keys`: the rows of the keys $2 (text[], a part of a batch being narrowed down) —
// calls refresh_function with their keys (distinct, sorted), deletes exactly the rows it picked,
// and leaves its figures for the log statement (lo, hi, rows: the keys; written; size: $2 or
// NULL). $1 the job. Nothing is left when no key was picked.
enum class DrainPick { next, explicit_keys };
std::string drain_sql(const ResolvedJob& job, const StateSchema& schema, DrainPick pick);
// Read-only: the keys the next batch would refresh, one per row in the key's order, the second
// column their text form as recorded; $1, $2 as drain_sql's next.
std::string drain_keys_query(const ResolvedJob& job, const StateSchema& schema);
// Read-only: up to $2 keys of job $1 (via 0, in arrival order) that its key type ($3, a type
// name) cannot read, as recorded: what drain_keys_query cannot list. Needs version 12.
std::string unreadable_keys_query(const StateSchema& schema);
// Sets keys aside: deletes the via-0 rows of the keys $2 (text[]) of job $1 and records each
// key in failed_batches (catch_up) with SQLSTATE $3 and error $4. Returns `recorded`.
std::string set_aside_keys_sql(const StateSchema& schema);
// Refreshes the key of the set-aside row $2 (failed_batches.id) of job $1 alone, deleting its
// via-0 rows that the statement sees and resolving the row; under EXPLAIN ANALYZE with its
// figures for the log statement, like drain_sql. Nothing is left when the row was resolved.
std::string refresh_set_aside_sql(const ResolvedJob& job, const StateSchema& schema);

// Read-only: the changes catch-up would still refresh: via-0 rows at or below the cursor, and
// every via-N row ($1 the job).
std::string drainable_sql(const ResolvedJob& job, const StateSchema& schema);

// The expansion of the job's via-`via` rows (its also entry via - 1): takes the oldest until $2
// distinct values, maps them to the job's keys, records those at or below the cursor as via-0
// rows and deletes what it took. Returns `taken` and `added`. $1 the job.
std::string expand_sql(const ResolvedJob& job, const StateSchema& schema, int via);
// First in an expansion's transaction: waits for the job's main batches in flight (see above).
void lock_for_expansion(pqxx::transaction_base& tx, const StateSchema& schema,
                        const std::string& job);
// Whether the job has any via-N row to expand. Read-only.
bool has_also_changes(pqxx::transaction_base& tx, const StateSchema& schema,
                      const std::string& job);

// Read-only: the rows the log holds for job $1, whatever their keys: one count.
std::string job_changes_sql(const StateSchema& schema);

// What change_log holds for a job: rows (one per changed key per statement) and the age of the
// oldest, in seconds.
struct PendingChanges {
  long long count = 0;
  std::optional<double> oldest_s;
};
// Per job with rows; empty before version 9 or without a state schema. Reads only.
std::map<std::string, PendingChanges> pending_changes(pqxx::transaction_base& tx,
                                                      const StateSchema& schema);

}  // namespace pgxform
