// batch_log: one row per committed batch — written in the batch's own transaction by the log
// statement, read back by status, profile and explain.
//
// The batch statement (batch_sql.h) runs under EXPLAIN ANALYZE, which returns the plan and no
// rows of its own, so it leaves its figures (lo, hi, rows, written, size, slice, moved,
// batch_no, started, ms) as JSON in the transaction-local setting k_batch_setting; the log
// statement, next in the same transaction, reads them, adds the job's function version and the
// block counters that the runner read from the plan, and appends the row.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "analysis/block_counters.h"
#include "analysis/logged_batch.h"
#include "plan/scheduler.h"
#include "state/state_schema.h"

namespace pgxform {

// Where the batch statement leaves its figures for the log statement (SET LOCAL: gone at the
// end of the transaction).
inline constexpr const char* k_batch_setting = "pgxform.batch";

// The log statement: $1 the job's name, $2..$9 the batch's counters (in k_counter_fields'
// order; NULL when unknown). Appends the row unless the cursor did not move (`moved` 0), and
// returns lo, hi, rows, moved and logged; no row when the batch statement found no keys.
std::string log_sql(const StateSchema& schema);

// Runs the log statement after the batch statement whose result (its plan) is `plan`, with
// the plan's counters: as the statement prepared under the name `prepared` when given (a
// runner's session prepares it once), else as text.
pqxx::result log_batch(pqxx::transaction_base& tx, const StateSchema& schema,
                       const std::string& job, const pqxx::result& plan,
                       const std::optional<std::string>& prepared = std::nullopt);

// A condition on the batch_log row `alias` ("AND NOT b.catch_up"): a batch of the main pass,
// not of catch-up (change_drain.h), whose rows are no rows of the job's pass. Empty before
// state version 9, which brought catch-up.
std::string main_pass_only(int version, const std::string& alias);

// The job's batches in commit order (started_at, batch_no), each with its kind; none without a
// state schema.
std::vector<LoggedBatch> read_batches(pqxx::transaction_base& tx, const StateSchema& schema,
                                      const std::string& job);
// The key range of the job's last logged batch.
std::optional<std::pair<std::string, std::string>> last_batch(pqxx::transaction_base& tx,
                                                              const StateSchema& schema,
                                                              const std::string& job);
void drop_batches(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job);

// The first and the last logged batch of the job whose keys meet [lo, hi] (`key_type` the key
// column's type, as the catalog prints it): that range was processed already. None without a
// state schema, or when no batch meets it.
std::optional<std::pair<long long, long long>> batches_over(
    pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job,
    const std::string& key_type, const std::string& lo, const std::string& hi);

// The rows of the job's own batches (not bisected or retried ranges) that ended in the last
// `window_s` seconds, how long ago the first of them started (none without one), and the size
// the job's last batch asked for. The last 10,000 batches at most, newest first along the
// primary key: a window holds fewer, and a job of millions of batches is not read whole.
// Before state version 6 nothing tells a batch from a bisected range, and no batch says its
// size.
struct RecentBatches {
  long long rows = 0;
  std::optional<double> span_s;
  std::optional<long long> batch_size;
};
// `phase`: the main pass's batches, or catch-up's (their rows are keys refreshed).
RecentBatches read_recent_batches(pqxx::transaction_base& tx, const StateSchema& schema,
                                  const std::string& job, double window_s,
                                  Phase phase = Phase::main);

// What a row of the job's main pass cost in its recent batches, in ms: the duration over the
// rows of its last k_history_batches own batches (not bisected or retried ranges, not
// catch-up's) of the function version `fn_version` (job_state.fn_version: the md5 of the
// function's definition), from every slice. A batch's first size comes from it
// (batch_sizer.h). None when no such batch was logged, when `fn_version` is empty, or before
// state version 6 (no batch says its size).
inline constexpr int k_history_batches = 5;
std::optional<double> recent_ms_per_row(pqxx::transaction_base& tx, const StateSchema& schema,
                                        const std::string& job, const std::string& fn_version);

}  // namespace pgxform
