#include "status_command.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "jobs_file.h"
#include "output_format.h"
#include "state_store.h"
#include "trend.h"

namespace pgxform {

namespace {

// Percent done of a job that has a last key but is not done; nullopt when it cannot be told.
std::optional<double> estimate_percent(pqxx::connection& conn, const ResolvedJob& job,
                                       const JobStatus& s) {
  if (s.status == "done") return 100.0;
  if (s.batches_done == 0) return 0.0;
  pqxx::read_transaction tx(conn);
  if (s.slices == 1 && s.last_key && (job.key_category == 'N' || job.key_category == 'D')) {
    const std::string as_number =
        job.key_category == 'N' ? "(%s)::float8" : "extract(epoch FROM %s)";
    auto num = [&](const std::string& x) {
      std::string t = as_number;
      return t.replace(t.find("%s"), 2, x);
    };
    const std::string key = job.key_sql;
    const pqxx::row r = tx.exec_params1(
        "SELECT 100 * (" + num("($1::text)::" + job.key_type) + " - " + num("lo.k") +
            ") / nullif(" + num("hi.k") + " - " + num("lo.k") + ", 0) FROM (SELECT " + key +
            " AS k FROM " + job.table_sql + " WHERE " + key + " IS NOT NULL ORDER BY " + key +
            " LIMIT 1) lo, (SELECT " + key + " AS k FROM " + job.table_sql + " WHERE " + key +
            " IS NOT NULL ORDER BY " + key + " DESC LIMIT 1) hi",
        *s.last_key);
    if (!r[0].is_null()) return std::min(100.0, std::max(0.0, r[0].as<double>()));
  }
  const pqxx::row r =
      tx.exec_params1("SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)", job.table_sql);
  const double estimate = r[0].is_null() ? -1 : r[0].as<double>();
  if (estimate <= 0) return std::nullopt;
  return std::min(99.9, 100.0 * double(s.rows_done) / estimate);
}

std::string text_or(const std::optional<std::string>& v, const std::string& fallback) {
  return v ? *v : fallback;
}

std::string json_or_null(const std::optional<std::string>& v) {
  return v ? json_string(*v) : "null";
}

}  // namespace

int status_command(const StatusOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect(options.dsn);
  StateStore store(*conn, file.state_schema);
  std::map<std::string, JobStatus> by_job;
  for (auto& s : store.read_status()) by_job[s.job] = s;

  Preflight preflight;
  try {
    preflight = check_catalog(*conn, file, {});
  } catch (const PreflightError& e) {
    for (const auto& p : e.problems()) spdlog::warn("{}", p);
  }

  struct Row {
    JobStatus s;
    std::optional<double> percent;
    Trend trend = Trend::insufficient;
  };
  std::vector<Row> rows;
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs) {
      Row row;
      auto it = by_job.find(job.name);
      if (it != by_job.end()) {
        row.s = it->second;
      } else {
        row.s.job = job.name;
        row.s.list = list.name;
        row.s.status = "pending";
      }
      row.s.list = list.name;
      if (job.is_step()) {
        row.percent = row.s.status == "done" ? 100.0 : 0.0;
      } else if (auto r = preflight.jobs.find(job.name); r != preflight.jobs.end()) {
        try {
          row.percent = estimate_percent(*conn, r->second, row.s);
        } catch (const std::exception& e) {
          spdlog::debug("{}: no estimate: {}", job.name, redact(e.what()));
        }
      }
      if (!job.is_step() && row.s.batches_done >= long(k_min_batches)) {
        // The same early warning as during the run: do the batches get slower per row?
        pqxx::read_transaction tx(*conn);
        std::vector<BatchSample> samples;
        for (const auto& b : tx.exec_params("SELECT rows, duration_ms FROM " + store.schema_sql() +
                                                ".batch_log WHERE job = $1 ORDER BY batch_no",
                                            job.name)) {
          BatchSample sample;
          sample.rows = b[0].as<long long>();
          sample.duration_ms = b[1].as<double>();
          samples.push_back(sample);
        }
        row.trend = analyze_batches(samples).trend;
      }
      rows.push_back(row);
    }

  if (options.format == StatusFormat::json) {
    out << "{\"jobs\": [";
    for (size_t i = 0; i < rows.size(); ++i) {
      const JobStatus& s = rows[i].s;
      std::ostringstream pct;
      if (rows[i].percent)
        pct << std::fixed << std::setprecision(1) << *rows[i].percent;
      else
        pct << "null";
      out << (i ? ", " : "") << "{\"job\": " << json_string(s.job)
          << ", \"list\": " << json_string(s.list) << ", \"status\": " << json_string(s.status)
          << ", \"rows_done\": " << s.rows_done << ", \"batches_done\": " << s.batches_done
          << ", \"last_key\": " << json_or_null(s.last_key) << ", \"percent\": " << pct.str()
          << ", \"slices\": " << s.slices << ", \"slices_done\": " << s.slices_done
          << ", \"runner\": " << json_or_null(s.runner)
          << ", \"started_at\": " << json_or_null(s.started_at)
          << ", \"updated_at\": " << json_or_null(s.updated_at)
          << ", \"finished_at\": " << json_or_null(s.finished_at)
          << ", \"error\": " << json_or_null(s.error)
          << ", \"sqlstate\": " << json_or_null(s.sqlstate)
          << ", \"error_first_key\": " << json_or_null(s.error_first_key)
          << ", \"error_last_key\": " << json_or_null(s.error_last_key)
          << ", \"trend\": " << json_string(trend_name(rows[i].trend))
          << ", \"set_aside\": " << s.set_aside << "}";
    }
    out << "]}\n";
    return k_exit_ok;
  }

  out << std::left << std::setw(14) << "LIST" << std::setw(20) << "JOB" << std::setw(9) << "STATUS"
      << std::right << std::setw(12) << "ROWS" << std::setw(9) << "BATCHES" << std::setw(8)
      << "DONE%"
      << "  " << std::left << std::setw(20) << "LAST KEY"
      << "RUNNER\n";
  for (const auto& row : rows) {
    const JobStatus& s = row.s;
    std::ostringstream pct;
    if (row.percent)
      pct << std::fixed << std::setprecision(1) << *row.percent;
    else
      pct << "?";
    std::string status = s.status;
    if (s.slices > 1)
      status += " " + std::to_string(s.slices_done) + "/" + std::to_string(s.slices);
    out << std::left << std::setw(14) << s.list << std::setw(20) << s.job << std::setw(9) << status
        << std::right << std::setw(12) << s.rows_done << std::setw(9) << s.batches_done
        << std::setw(8) << pct.str() << "  " << std::left << std::setw(20)
        << text_or(s.last_key, "-") << text_or(s.runner, "") << "\n";
    if (s.set_aside > 0)
      out << "    " << s.set_aside
          << " key range(s) set aside in failed_batches: fix, then pgxform retry-failed " << s.job
          << "\n";
    if (row.trend == Trend::growing)
      out << "    warning: batches get slower per row as the job goes on (the O(N^2) signature);"
             " see pgxform profile and pgxform explain "
          << s.job << "\n";
    if (s.error)
      out << "    error" << (s.sqlstate ? " (SQLSTATE " + *s.sqlstate + ")" : "") << " in batch ["
          << text_or(s.error_first_key, "?") << ", " << text_or(s.error_last_key, "?")
          << "]: " << *s.error << "\n";
  }
  return k_exit_ok;
}

}  // namespace pgxform
