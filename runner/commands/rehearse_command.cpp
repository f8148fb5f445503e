#include "commands/rehearse_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "analysis/run_estimate.h"
#include "analysis/trend.h"
#include "base/exit_code.h"
#include "base/output_format.h"
#include "base/sql_text.h"
#include "catalog/catalog.h"
#include "catalog/table_stats.h"
#include "database/database.h"
#include "engine/batch_sql.h"
#include "engine/task_runner.h"
#include "output/json_output.h"
#include "output/terminal_text.h"
#include "plan/job_selection.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"

namespace pgxform {

namespace {

// A job whose last sample costs more than this many times its first, per row, is growing.
constexpr double k_rehearse_growth = 2.0;
// Consecutive batches per sample.
constexpr int k_batches_per_sample = 3;
// Rows inserted per timing of the foreign-key check calibration, and timings.
constexpr int k_fk_probe_rows = 20000;
constexpr int k_fk_probe_rounds = 3;

enum class ForeignKeys { checked, unchecked };

double ms_since(std::chrono::steady_clock::time_point began) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began)
      .count();
}

double table_rows(pqxx::connection& conn, const ResolvedJob& job, bool& counted) {
  pqxx::read_transaction tx(conn);
  const std::optional<double> estimate = estimated_rows(tx, job);
  counted = !estimate;
  if (estimate) return *estimate;
  // Never analyzed: no estimate, so count. Rehearsals run before the window, when a full scan
  // is affordable; ANALYZE would be cheaper but writes statistics, and rehearse writes nothing.
  return tx
      .exec1(fill_sql("SELECT pg_catalog.count(*)::float8 FROM @table@",
                      {{"@table@", job.table_sql}}))[0]
      .as<double>();
}

// The key at `position` (0..1) of the key's distribution (table_stats.h).
std::optional<std::string> key_at(pqxx::connection& conn, const ResolvedJob& job, double position) {
  pqxx::read_transaction tx(conn);
  const std::vector<std::string> keys = keys_at(tx, job, {position});
  if (keys.empty()) return std::nullopt;
  return keys.front();
}

struct SampleBatch {
  std::string hi;
  long long rows = 0;
  double ms = 0;
  long long fk_checks = 0;  // unchecked: the foreign-key checks it skipped
};

// The foreign-key checks that the inserts of the open transaction would have fired: its rows
// inserted into each table that has foreign keys, once per key. A foreign key into a
// partitioned table has a row in pg_constraint for each partition it references too, with the
// same referencing table; those would count the inserts again. The figure also holds what
// earlier transactions of this session inserted, until the session's statistics are flushed
// (between transactions, at most once a second), so only a difference between two readings in
// the same transaction counts. Adds the query's time to `ms`.
long long foreign_key_rows(pqxx::work& tx, double& ms) {
  const auto began = std::chrono::steady_clock::now();
  const long long rows = tx.exec1(R"(
    SELECT coalesce(pg_catalog.sum(pg_catalog.pg_stat_get_xact_tuples_inserted(c.conrelid)),
                    0)::bigint
    FROM pg_catalog.pg_constraint c
    WHERE c.contype = 'f'
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint p
                      WHERE p.oid = c.conparentid AND p.conrelid = c.conrelid))")[0]
                             .as<long long>();
  ms += ms_since(began);
  return rows;
}

// One batch of `batch_size` keys after `after` (from the first key when none), run and rolled
// back; its wall time includes BEGIN and ROLLBACK, as a real batch's includes BEGIN and COMMIT.
// Without foreign-key checks it also counts the checks skipped, and the counting is not timed.
SampleBatch run_batch(pqxx::connection& conn, const ResolvedJob& job,
                      const std::optional<std::string>& after, long batch_size,
                      ForeignKeys foreign_keys) {
  const BatchShape shape{Slicing::whole_job,
                         after ? CursorStart::after_last_key : CursorStart::none, UpperBound::open};
  const std::string sql = trial_batch_sql(job, shape);
  SampleBatch b;
  double counting_ms = 0;
  const auto began = std::chrono::steady_clock::now();
  {
    pqxx::work tx(conn, "rehearse");
    long long inserted_before = 0;
    // Replica mode fires no foreign-key triggers, for this transaction only.
    if (foreign_keys == ForeignKeys::unchecked) {
      tx.exec("SET LOCAL session_replication_role = replica");
      inserted_before = foreign_key_rows(tx, counting_ms);
    }
    const pqxx::result r =
        tx.exec_params(sql, after, batch_size, job.name, 0, std::optional<std::string>());
    if (!r.empty()) {
      b.hi = r[0][1].as<std::string>();
      b.rows = r[0][2].as<long long>();
    }
    if (foreign_keys == ForeignKeys::unchecked)
      b.fk_checks = foreign_key_rows(tx, counting_ms) - inserted_before;
    tx.abort();
  }
  b.ms = ms_since(began) - counting_ms;
  return b;
}

// A few consecutive batches from `after` on; the median cost per row speaks for the position,
// so that one batch slowed by something else (a checkpoint, another session) does not.
RehearsalSample run_sample(pqxx::connection& conn, const ResolvedJob& job,
                           const std::optional<std::string>& after, ForeignKeys foreign_keys) {
  RehearsalSample s;
  s.after = after;
  std::vector<double> costs;
  std::optional<std::string> cursor = after;
  for (int i = 0; i < k_batches_per_sample; ++i) {
    const SampleBatch b = run_batch(conn, job, cursor, job.batch_size, foreign_keys);
    if (b.rows == 0) break;
    ++s.batches;
    s.rows += b.rows;
    s.ms += b.ms;
    s.fk_checks += b.fk_checks;
    costs.push_back(b.ms / double(b.rows));
    cursor = b.hi;
  }
  s.ms_per_row = percentile(costs, 50);
  return s;
}

// What a batch's COMMIT costs beyond a ROLLBACK: flushing the WAL. Rehearse commits nothing —
// not even a transaction id, which a logical decoding plugin may pass on to a CDC consumer as
// an empty transaction — so the figure is the server's own: the mean time of its WAL syncs
// (pg_stat_wal, with track_wal_io_timing on). None when the server does not time them.
std::optional<double> commit_ms(pqxx::connection& conn) {
  pqxx::read_transaction tx(conn);
  const pqxx::row r = tx.exec1(R"(
    SELECT CASE WHEN pg_catalog.current_setting('track_wal_io_timing', true) = 'on'
                     AND w.wal_sync > 0
                THEN w.wal_sync_time / w.wal_sync END
    FROM pg_catalog.pg_stat_wal w)");
  if (r[0].is_null()) return std::nullopt;
  return r[0].as<double>();
}

// What one foreign-key check costs here: the same rows inserted into a child table with a
// foreign key and into one without, the difference per row. Temporary tables, in a transaction
// that is rolled back, so nothing is left behind. The check is an index lookup and a row lock
// in the parent; a temporary parent writes no WAL for the lock, so the figure is a little low.
// The median of a few rounds, as one may be disturbed; never below zero.
std::optional<double> fk_check_ms(pqxx::connection& conn) {
  const auto insert = [](pqxx::work& tx, const std::string& table, int rows) {
    const auto began = std::chrono::steady_clock::now();
    tx.exec_params(
        fill_sql("INSERT INTO @table@ SELECT g, g FROM pg_catalog.generate_series(1, $1) g",
                 {{"@table@", table}}),
        rows);
    return ms_since(began);
  };
  try {
    pqxx::work tx(conn, "fk_check_probe");
    // The job's statement_timeout, set for its samples, is not meant for this.
    tx.exec(R"(
      SET LOCAL statement_timeout = 0;
      CREATE TEMP TABLE pgxform_fk_parent (id bigint PRIMARY KEY);
      CREATE TEMP TABLE pgxform_fk_checked (id bigint, parent bigint REFERENCES pgxform_fk_parent);
      CREATE TEMP TABLE pgxform_fk_plain (id bigint, parent bigint))");
    tx.exec_params("INSERT INTO pgxform_fk_parent SELECT pg_catalog.generate_series(1, $1)",
                   k_fk_probe_rows);
    // Unmeasured, so that no round pays for preparing the check's query.
    insert(tx, "pgxform_fk_checked", 100);
    insert(tx, "pgxform_fk_plain", 100);
    std::vector<double> per_check;
    for (int i = 0; i < k_fk_probe_rounds; ++i) {
      const double plain = insert(tx, "pgxform_fk_plain", k_fk_probe_rows);
      const double checked = insert(tx, "pgxform_fk_checked", k_fk_probe_rows);
      per_check.push_back((checked - plain) / k_fk_probe_rows);
    }
    tx.abort();
    return std::max(0.0, percentile(per_check, 50));
  } catch (const pqxx::sql_error& e) {
    spdlog::warn("the cost of a foreign-key check could not be measured, so it is missing: {}",
                 redact(e.what()));
    return std::nullopt;
  }
}

// The cost of one foreign-key check, measured the first time a job needs it.
struct ForeignKeyCost {
  bool measured = false;
  std::optional<double> ms;

  double get(pqxx::connection& conn) {
    if (!measured) ms = fk_check_ms(conn);
    measured = true;
    return ms.value_or(0);
  }
};

// The batches of a job of `rows` rows and `work_ms` of work: of batch_size rows each, or, when
// batches are sized by time, as many as last about target_batch_ms each within the sizes
// allowed (batch_sizer.h).
double batches_for(const JobSettings& settings, double rows, double work_ms) {
  const auto at_size = [&](long size) { return std::ceil(rows / double(std::max(1L, size))); };
  if (settings.target_batch_ms <= 0) return at_size(settings.batch_size);
  return std::clamp(std::ceil(work_ms / double(settings.target_batch_ms)),
                    at_size(settings.max_batch_size), at_size(settings.min_batch_size));
}

JobRehearsal rehearse_job(pqxx::connection& conn, const Job& spec, const ResolvedJob& job,
                          int samples, double per_batch_ms, ForeignKeyCost& fk_cost) {
  JobRehearsal r;
  r.job = job.name;
  apply_session_settings(conn, spec.settings);
  r.rows = table_rows(conn, job, r.counted);
  if (r.rows <= 0) return r;
  const double window = std::min(1.0, k_batches_per_sample * double(job.batch_size) / r.rows);
  const auto take_samples = [&](ForeignKeys foreign_keys) {
    r.samples.clear();
    // A warm-up of one key, not measured, so that the first sample does not pay for building
    // plans and filling caches; one key only, as the first batch's pages must stay as cold (and
    // their hint bits as unset) as every other sample's.
    run_batch(conn, job, std::nullopt, 1, foreign_keys);
    for (int i = 0; i < samples; ++i) {
      const double start =
          samples == 1 ? 0 : double(i) / double(samples - 1) * std::max(0.0, 1 - window);
      std::optional<std::string> after;
      if (start > 0) after = key_at(conn, job, start);
      RehearsalSample s = run_sample(conn, job, after, foreign_keys);
      if (s.rows == 0) continue;  // no keys after the one picked: the end of the table
      s.position = std::min(1.0, start + window / 2);
      r.samples.push_back(s);
    }
  };
  try {
    try {
      take_samples(ForeignKeys::checked);
    } catch (const pqxx::sql_error& e) {
      // 23503: the rows it references are written by a job of an earlier list, which has not
      // run yet. Measured again without foreign-key checks, in transactions rolled back all
      // the same; the checks skipped are counted, and their cost added.
      if (e.sqlstate() != "23503") throw;
      r.foreign_keys_unchecked = true;
      take_samples(ForeignKeys::unchecked);
    }
  } catch (const pqxx::sql_error& e) {
    r.error = "SQLSTATE " + e.sqlstate() + ": " + redact(e.what());
    if (r.foreign_keys_unchecked)
      r.error +=
          "(it references rows that an earlier job writes, and setting "
          "session_replication_role to measure it without them needs a superuser)\n";
    return r;
  }
  // The checks skipped, at what one costs, added to each sample's cost per row.
  const double fk_ms = r.foreign_keys_unchecked ? fk_cost.get(conn) : 0;
  std::vector<SampleCost> costs, fk_costs;
  long long rows = 0, fk_checks = 0;
  for (auto& s : r.samples) {
    const double fk_ms_per_row = double(s.fk_checks) / double(s.rows) * fk_ms;
    s.ms_per_row += fk_ms_per_row;
    costs.push_back({s.position, s.ms_per_row});
    fk_costs.push_back({s.position, fk_ms_per_row});
    rows += s.rows;
    fk_checks += s.fk_checks;
  }
  if (r.foreign_keys_unchecked && rows > 0) r.fk_checks_per_row = double(fk_checks) / double(rows);
  const double work_ms = projected_job_ms(costs, r.rows);
  r.batches = batches_for(spec.settings, r.rows, work_ms);
  r.projected_ms = work_ms + r.batches * per_batch_ms;
  r.projected_fk_ms = projected_job_ms(fk_costs, r.rows);
  if (costs.size() >= 2)
    r.growth = costs.back().ms_per_row / std::max(costs.front().ms_per_row, 1e-9);
  return r;
}

}  // namespace

bool JobRehearsal::growing() const {
  return growth && *growth > k_rehearse_growth;
}

Rehearsal rehearse(const RehearseOptions& options) {
  const JobsFile file = parse_jobs_file(options.file);
  if (options.samples < 1) throw UsageError("--samples must be at least 1");
  select_jobs(file, options.jobs, JobKinds::batched, "rehearse samples batched jobs");
  auto conn = connect(options.dsn);
  const Preflight preflight = check_catalog(*conn, file, options.jobs);
  for (const auto& warning : preflight.warnings) spdlog::warn("{}", warning);
  Rehearsal result;
  result.threads = options.threads > 0 ? options.threads : file.default_threads;
  result.commit_ms = commit_ms(*conn);
  std::map<std::string, double> job_seconds;
  ForeignKeyCost fk_cost;
  for (const auto& list : file.lists)
    for (const auto& spec : list.jobs) {
      const auto it = preflight.jobs.find(spec.name);
      if (it == preflight.jobs.end()) continue;
      JobRehearsal r = rehearse_job(*conn, spec, it->second, options.samples,
                                    result.commit_ms.value_or(0), fk_cost);
      job_seconds[r.job] = r.projected_ms / 1000;
      result.jobs.push_back(r);
    }
  result.fk_check_ms = fk_cost.ms;
  result.run = estimate_run(select_lists(file, {}, {}, {}), job_seconds, result.threads);
  return result;
}

void print_rehearsal_table(std::ostream& out, const Rehearsal& rehearsal, int samples) {
  out << "rehearse: " << samples << " sample batch" << (samples == 1 ? "" : "es")
      << " per job across its key range, each in a transaction that is rolled back;\n"
      << (rehearsal.commit_ms ? "a COMMIT's WAL flush takes " + fixed(*rehearsal.commit_ms, 2) +
                                    " ms here (pg_stat_wal), counted once per batch\n\n"
                              : "a COMMIT's WAL flush is not timed here (track_wal_io_timing is "
                                "off), so the projection leaves it out\n\n");
  out << std::left << std::setw(20) << "JOB" << std::right << std::setw(12) << "ROWS"
      << std::setw(9) << "BATCHES"
      << "  " << std::left << std::setw(34) << "MS PER 1000 ROWS, START .. END" << std::right
      << std::setw(12) << "PROJECTED"
      << "  TREND\n";
  for (const auto& r : rehearsal.jobs) {
    std::string costs;
    for (const auto& s : r.samples)
      costs += (costs.empty() ? "" : "  ") + fixed(s.ms_per_row * 1000, 1);
    out << std::left << std::setw(20) << r.job << std::right << std::setw(12) << (long long)r.rows
        << std::setw(9) << (long long)r.batches << "  " << std::left << std::setw(34)
        << (r.error.empty() ? costs : "failed") << std::right << std::setw(12)
        << (r.error.empty() ? human_duration(r.projected_ms / 1000) : "?") << "  "
        << (!r.error.empty() || !r.growth ? "-"
            : r.growing()                 ? "growing"
                                          : "flat")
        << "\n";
  }
  for (const auto& r : rehearsal.jobs) {
    if (!r.error.empty())
      out << "\nerror: " << r.job
          << ": a sample batch failed: " << terminal_text(r.error, Lines::indented);
    if (r.counted)
      out << "\nnote: " << r.job << ": its table was never analyzed; its rows were counted\n";
    if (r.foreign_keys_unchecked && r.error.empty()) {
      out << "\nnote: " << r.job
          << ": it references rows that a job of an earlier list writes, so it was measured\n"
             "without foreign-key checks and without its tables' ordinary triggers"
             " (session_replication_role\n= replica, rolled back). ";
      if (rehearsal.fk_check_ms && r.fk_checks_per_row)
        out << "The checks' cost was estimated, " << fixed(*r.fk_checks_per_row, 2)
            << " checks per row at " << fixed(*rehearsal.fk_check_ms * 1000, 1) << " µs each:\n"
            << human_duration(r.projected_fk_ms / 1000)
            << " of its projection. The triggers' cost, if it has any, is missing.\n";
      else
        out << "The cost of the checks could not be measured\nand is missing, as is the"
               " triggers' cost, if it has any.\n";
    }
    if (r.growing()) {
      out << "\nwarning: " << r.job << " is growing: the end of its key range costs "
          << fixed(*r.growth, 1) << "x per row what the start does; projected "
          << human_duration(r.projected_ms / 1000) << ". Run `pgxform explain " << r.job;
      if (r.samples.back().after) out << " --at " << terminal_text(*r.samples.back().after);
      out << "` to see why.\n";
    }
  }
  const RunEstimate& run = rehearsal.run;
  out << "\nwhole run on " << rehearsal.threads << " thread" << (rehearsal.threads == 1 ? "" : "s")
      << ": " << human_duration(run.seconds);
  if (!run.critical_path.empty()) {
    out << " (critical path: ";
    for (std::size_t i = 0; i < run.critical_path.size(); ++i)
      out << (i ? " -> " : "") << run.critical_path[i];
    out << ")";
  }
  out << "\n";
  for (const auto& [list, finish] : run.list_finish)
    out << "  list " << list << " done after " << human_duration(finish) << "\n";
  out << "\nSteps (sql:) and jobs not rehearsed count as no time. A cost that grows with the job's"
         " own output\n(a sub-select against the table it fills) does not show in a rehearsal:"
         " watch `pgxform profile`\nduring the first minutes of the run. Nothing was written;"
         " sequences used by the functions\nmay have advanced (nextval is never rolled back).\n";
}

void print_rehearsal_json(std::ostream& out, const Rehearsal& rehearsal) {
  const RunEstimate& run = rehearsal.run;
  Json lists = Json::array();
  for (const auto& [list, finish] : run.list_finish)
    lists.push_back({{"list", list}, {"finish_seconds", json_number(finish, 3)}});
  Json jobs = Json::array();
  for (const auto& r : rehearsal.jobs) {
    const bool ok = r.error.empty();
    Json samples = Json::array();
    for (const auto& s : r.samples)
      samples.push_back({{"position", json_number(s.position, 3)},
                         {"after", json_text(s.after)},
                         {"rows", s.rows},
                         {"ms_per_row", json_number(s.ms_per_row, 6)}});
    jobs.push_back(
        {{"job", r.job},
         {"rows", std::llround(r.rows)},
         {"batches", std::llround(r.batches)},
         {"projected_seconds",
          json_number(ok ? std::optional(r.projected_ms / 1000) : std::nullopt, 3)},
         {"trend", !ok || !r.growth ? Json(nullptr) : Json(r.growing() ? "growing" : "flat")},
         {"growth", json_number(ok ? r.growth : std::nullopt, 3)},
         {"foreign_keys_unchecked", r.foreign_keys_unchecked},
         {"fk_checks_per_row", json_number(r.fk_checks_per_row, 4)},
         {"samples", samples},
         {"error", ok ? Json(nullptr) : Json(r.error)}});
  }
  print_json(out, Json{{"threads", rehearsal.threads},
                       {"commit_ms", json_number(rehearsal.commit_ms, 3)},
                       {"fk_check_ms", json_number(rehearsal.fk_check_ms, 6)},
                       {"seconds", json_number(run.seconds, 3)},
                       {"critical_path", run.critical_path},
                       {"lists", lists},
                       {"jobs", jobs}});
}

int rehearse_command(const RehearseOptions& options, std::ostream& out) {
  const Rehearsal rehearsal = rehearse(options);
  if (options.format == RehearseFormat::json)
    print_rehearsal_json(out, rehearsal);
  else
    print_rehearsal_table(out, rehearsal, options.samples);
  const bool failed = std::any_of(rehearsal.jobs.begin(), rehearsal.jobs.end(),
                                  [](const JobRehearsal& r) { return !r.error.empty(); });
  return failed ? k_exit_job_failed : k_exit_ok;
}

}  // namespace pgxform
