#include "engine/verify_job.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "analysis/query_plan.h"
#include "base/output_format.h"
#include "database/retry.h"
#include "engine/batch_sizer.h"
#include "engine/batch_sql.h"
#include "engine/task_runner.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

using VerifyClock = std::chrono::steady_clock;

double seconds_since(VerifyClock::time_point start) {
  return std::chrono::duration<double>(VerifyClock::now() - start).count();
}

// "(SQLSTATE 42P01): ERROR:  relation ... does not exist", as the server said it.
std::string verify_failure_text(const std::exception& e) {
  const Failure failure = classify(e);
  return (failure.sqlstate.empty() ? "" : "(SQLSTATE " + failure.sqlstate + "): ") +
         failure.message;
}

// The offending rows a wrapped query (verify_sql) counted: its last column.
long long offending_in(const pqxx::result& r) {
  return r.empty() ? 0 : r[0][r.columns() - 1].as<long long>();
}

// Reads the query's plan for the batch [lo, hi] of `rows` rows (planned only, nothing run) and
// warns of every table it reads without a bound (see verify_job.h); true when it warned.
bool warn_unbounded_scans(pqxx::transaction_base& tx, const std::string& job,
                          const std::string& query, const std::string& lo, const std::string& hi,
                          long long rows) {
  const std::string plan =
      tx.exec_params1("EXPLAIN (VERBOSE, FORMAT JSON) " + query, lo, hi)[0].as<std::string>();
  bool warned = false;
  for (const ScannedTable& table : unbounded_scans(plan)) {
    const pqxx::result r = tx.exec_params(
        "SELECT c.reltuples::float8 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
        table.schema, table.name);
    // A table never analyzed has no estimate (-1): nothing to say of it.
    if (r.empty() || r[0][0].as<double>() < many_rows_for(double(rows))) continue;
    const bool seq = table.scan == "Seq Scan";
    spdlog::warn(
        "{}: the verify query reads {} {}.{} (about {:.0f} rows) for a batch of {} rows ({}), "
        "and so for every batch: bound that table by the batch's keys too (e.g. t.id BETWEEN $1 "
        "AND $2), or index the column the query looks it up by",
        job, seq ? "all of" : "from the first key of", table.schema, table.name,
        r[0][0].as<double>(), rows,
        seq ? "a Seq Scan" : "an " + table.scan + " with no Index Cond");
    warned = true;
  }
  return warned;
}

// The walk of verify_job.h, into `v`; throws what the database throws.
void walk_verify_batches(pqxx::connection& conn, const VerifyTarget& target,
                         std::chrono::milliseconds every, VerifyClock::time_point started,
                         Verification& v) {
  const ResolvedJob& job = target.job;
  const std::string query = verify_sql(target.spec->verify);
  const UpperBound upper = target.limit ? UpperBound::hi_key : UpperBound::open;
  BatchSizer sizer(sizing_of(target.spec->settings));
  std::optional<std::string> cursor;
  auto said = started;
  // The plan is read again whenever the batches have doubled since it was last: a larger batch
  // may be planned otherwise. Once it warned, never again.
  long long planned_rows = 0;
  bool warned = false;
  pqxx::read_transaction tx(conn);
  while (true) {
    const long size = sizer.size();
    const auto batch_started = VerifyClock::now();
    const BatchShape shape{Slicing::whole_job,
                           cursor ? CursorStart::after_last_key : CursorStart::none, upper};
    const pqxx::result b =
        tx.exec_params(next_range_query(job, shape), cursor, size, job.name, 0, target.limit);
    if (b.empty()) break;
    const std::string lo = b[0][0].as<std::string>(), hi = b[0][1].as<std::string>();
    const long long rows = b[0][2].as<long long>();
    double ms =
        std::chrono::duration<double, std::milli>(VerifyClock::now() - batch_started).count();
    if (!warned && rows >= 2 * planned_rows) {
      warned = warn_unbounded_scans(tx, job.name, query, lo, hi, rows);
      planned_rows = rows;
    }
    const auto query_started = VerifyClock::now();
    const pqxx::result r = tx.exec_params(query, lo, hi);
    ms += std::chrono::duration<double, std::milli>(VerifyClock::now() - query_started).count();
    sizer.batch_done(rows, ms);
    ++v.batches;
    v.rows += rows;
    if (!r.empty()) {
      v.offending += offending_in(r);
      v.bad_ranges.emplace_back(lo, hi);
      for (const auto& row : r)
        if (v.first_keys.size() < k_keys_shown)
          v.first_keys.push_back(row[0].is_null() ? "NULL" : row[0].c_str());
    }
    cursor = hi;
    if (VerifyClock::now() - said >= every) {
      said = VerifyClock::now();
      spdlog::info("{}", progress_line(job.name, {v.batches, v.rows, target.expected_rows, hi,
                                                  seconds_since(started)}));
    }
  }
}

}  // namespace

long long Verification::repaired() const {
  long long n = 0;
  for (const auto& r : repairs) n += r.left == 0;
  return n;
}

bool Verification::wrong(VerifyMode mode) const {
  return error.has_value() ||
         (offending > 0 &&
          (mode == VerifyMode::check || repaired() < static_cast<long long>(bad_ranges.size())));
}

std::string verify_sql(const std::string& query) {
  std::string q = query;
  while (!q.empty() && (std::isspace(static_cast<unsigned char>(q.back())) || q.back() == ';'))
    q.pop_back();
  // On lines of their own, so that a comment on the query's last line ends before the ")".
  return "SELECT v.*, pg_catalog.count(*) OVER () FROM (\n" + q + "\n) v ORDER BY 1 LIMIT " +
         std::to_string(k_keys_shown);
}

std::string progress_line(const std::string& job, const VerifyProgress& p) {
  std::string line = job + ": verified " + std::to_string(p.rows);
  if (p.expected_rows && *p.expected_rows >= 1) {
    // The expectation is the planner's estimate, or what the job counted: never past 100%.
    const double share = std::min(100.0, std::floor(100.0 * double(p.rows) / *p.expected_rows));
    line += " of about " + fixed(*p.expected_rows, 0) + " rows (" + fixed(share, 0) + "%)";
  } else {
    line += " rows";
  }
  return line + " in " + std::to_string(p.batches) + " batches, up to key " + p.last_key + ", " +
         fixed(p.seconds, 1) + " s";
}

std::string finished_line(const Verification& v) {
  return v.job + ": verified " + std::to_string(v.rows) + " rows in " + std::to_string(v.batches) +
         " batches in " + fixed(v.seconds, 1) + " s, " + std::to_string(v.offending) + " offending";
}

Verification verify_job(pqxx::connection& conn, const VerifyTarget& target,
                        std::chrono::milliseconds every) {
  const auto started = VerifyClock::now();
  Verification v;
  v.job = target.job.name;
  // Nothing processed yet: nothing can be right or wrong.
  if (target.limit && target.limit->empty()) {
    spdlog::info("{}: nothing processed yet, nothing to verify", v.job);
    return v;
  }
  try {
    apply_session_settings(conn, target.spec->settings);
    walk_verify_batches(conn, target, every, started, v);
  } catch (const std::exception& e) {
    v.error = verify_failure_text(e);
  }
  v.seconds = seconds_since(started);
  if (!v.error) spdlog::info("{}", finished_line(v));
  return v;
}

void repair_job(pqxx::connection& conn, const VerifyTarget& target, Verification& v) {
  const auto started = VerifyClock::now();
  const std::string query = verify_sql(target.spec->verify);
  try {
    for (const auto& range : v.bad_ranges) {
      pqxx::work tx(conn);
      // The session commits without waiting for the WAL's flush (the job's setting); a repair
      // that verify reports must outlive a crash of the server.
      tx.exec("SET LOCAL synchronous_commit = on");
      tx.exec_params(call_query(target.job), range.first, range.second);
      const long long left = offending_in(tx.exec_params(query, range.first, range.second));
      tx.commit();
      v.repairs.push_back({range, left});
    }
  } catch (const std::exception& e) {
    v.error = verify_failure_text(e);
  }
  v.seconds += seconds_since(started);
}

}  // namespace pgxform
