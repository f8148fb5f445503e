#include "profile_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <sstream>

#include "block_counters.h"
#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "jobs_file.h"
#include "output_format.h"
#include "state_store.h"

namespace pgxform {

namespace {

// The batched jobs to profile, in file order. A name that is no job, or a step, is bad input.
std::vector<const Job*> select_jobs(const JobsFile& file, const std::vector<std::string>& names) {
  std::vector<const Job*> jobs;
  for (const auto& name : names) {
    const Job* job = file.find_job(name);
    if (!job) throw PreflightError({file.path + ": no job named '" + name + "'"});
    if (job->is_step())
      throw PreflightError({file.path + ": job '" + name +
                            "' is a one-shot sql: step; it has no batches to profile"});
  }
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs)
      if (!job.is_step() &&
          (names.empty() || std::find(names.begin(), names.end(), job.name) != names.end()))
        jobs.push_back(&job);
  return jobs;
}

// A key's text as a number, when it is one (integer, numeric and float keys).
std::optional<double> key_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// The leading table's smallest and largest key, as numbers; none when not numeric or unreadable.
std::optional<std::pair<double, double>> key_range(pqxx::connection& conn, const Job& job) {
  try {
    pqxx::read_transaction tx(conn);
    // The key qualified with the table's alias: unqualified, ORDER BY would sort by the output
    // column of the same name, which is text.
    const std::string table = quote_qualified(job.table), key = "t." + quote_ident(job.key);
    const std::string from = " FROM " + table + " t WHERE " + key + " IS NOT NULL ORDER BY " + key;
    // Two probes on the key's index rather than min/max, which not every key type has.
    const pqxx::row r = tx.exec1("SELECT (SELECT " + key + "::text" + from + " LIMIT 1), (SELECT " +
                                 key + "::text" + from + " DESC LIMIT 1)");
    if (r[0].is_null() || r[1].is_null()) return std::nullopt;
    const auto lo = key_number(r[0].as<std::string>()), hi = key_number(r[1].as<std::string>());
    if (!lo || !hi) return std::nullopt;
    return std::make_pair(*lo, *hi);
  } catch (const std::exception& e) {
    spdlog::debug("{}: no key range: {}", job.name, redact(e.what()));
    return std::nullopt;
  }
}

std::optional<double> estimated_rows(pqxx::connection& conn, const Job& job) {
  pqxx::read_transaction tx(conn);
  const pqxx::row r =
      tx.exec_params1("SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass($1)",
                      quote_qualified(job.table));
  // reltuples is -1 for a table that was never vacuumed or analyzed: no estimate.
  if (r[0].is_null() || r[0].as<double>() < 0) return std::nullopt;
  return r[0].as<double>();
}

// `state_version`: the state schema's version (0: no state yet).
JobProfile read_profile(pqxx::connection& conn, StateStore& store, int state_version,
                        const Job& job) {
  JobProfile p;
  p.job = job.name;
  p.list = job.list;
  p.status = "pending";
  long long rows_done = 0;
  std::vector<std::pair<std::string, std::string>> keys;
  if (state_version > 0) {
    const bool counters = state_version >= 5;  // they came with version 5
    pqxx::read_transaction tx(conn);
    const pqxx::result state = tx.exec_params(
        "SELECT status, rows_done FROM " + store.schema_sql() + ".job_state WHERE job = $1",
        job.name);
    if (!state.empty()) {
      p.status = state[0][0].as<std::string>();
      rows_done = state[0][1].as<long long>();
    }
    std::string columns;
    for (const auto& field : k_counter_fields) columns += std::string(", ") + field.column;
    const pqxx::result log = tx.exec_params(
        "SELECT batch_no, first_key, last_key, rows, duration_ms,"
        " extract(epoch FROM started_at)::float8" +
            (counters ? columns : std::string()) + " FROM " + store.schema_sql() +
            ".batch_log WHERE job = $1 ORDER BY started_at, batch_no",
        job.name);
    for (const auto& row : log) {
      BatchSample b;
      b.rows = row[3].as<long long>();
      b.duration_ms = row[4].as<double>();
      b.started_s = row[5].as<double>();
      if (counters && !row[6].is_null()) {
        b.blocks = BlockCounters{};
        for (std::size_t i = 0; i < std::size(k_counter_fields); ++i)
          (*b.blocks).*k_counter_fields[i].member = row[int(6 + i)].as<long long>();
      }
      p.batches.push_back(b);
      p.batch_numbers.push_back(row[0].as<long long>());
      p.first_keys.push_back(row[1].as<std::string>());
      keys.emplace_back(row[1].as<std::string>(), row[2].as<std::string>());
    }
  }
  // Positions in the key range, when every key is a number; else the report uses batch order.
  bool numeric = !keys.empty();
  for (const auto& [first, last] : keys) numeric = numeric && key_number(first) && key_number(last);
  if (numeric) {
    if (const auto range = key_range(conn, job)) {
      const double width = range->second - range->first;
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const double middle = (*key_number(keys[i].first) + *key_number(keys[i].second)) / 2;
        p.batches[i].position =
            width > 0 ? std::clamp((middle - range->first) / width, 0.0, 1.0) : 0.5;
      }
      p.key_positions = true;
    }
  }
  p.figures = analyze_batches(p.batches);
  if (p.status != "done") {
    if (const auto estimate = estimated_rows(conn, job)) {
      p.remaining_rows = std::max(0LL, (long long)(*estimate) - rows_done);
      p.eta_seconds = eta_seconds(p.figures, *p.remaining_rows);
    }
  }
  return p;
}

void print_json(std::ostream& out, const std::vector<JobProfile>& jobs) {
  out << "{\"jobs\": [";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const JobProfile& p = jobs[i];
    const JobFigures& f = p.figures;
    out << (i ? ", " : "") << "{\"job\": " << json_string(p.job)
        << ", \"trend\": " << json_string(trend_name(f.trend)) << ", \"batches\": " << f.batches
        << ", \"rows\": " << f.rows
        << ", \"rows_per_second\": " << json_number(f.rows_per_second, 1)
        << ", \"p50_ms\": " << json_number(f.p50_ms, 3)
        << ", \"p95_ms\": " << json_number(f.p95_ms, 3)
        << ", \"max_ms\": " << json_number(f.max_ms, 3)
        << ", \"growth\": " << json_number(f.growth, 3)
        << ", \"eta_seconds\": " << json_number(p.eta_seconds, 3)
        << ", \"status\": " << json_string(p.status);
    for (const auto& field : k_counter_fields)
      out << ", \"" << field.column
          << "\": " << (f.blocks ? std::to_string((*f.blocks).*field.member) : "null");
    out << ", \"blocks_per_row\": " << json_number(f.blocks_per_row, 3)
        << ", \"blocks_growth\": " << json_number(f.blocks_growth, 3) << "}";
  }
  out << "]}\n";
}

void print_table(std::ostream& out, const std::vector<JobProfile>& jobs) {
  out << std::left << std::setw(20) << "JOB" << std::setw(9) << "STATUS" << std::right
      << std::setw(9) << "BATCHES" << std::setw(12) << "ROWS" << std::setw(10) << "ROWS/S"
      << std::setw(10) << "P50 MS" << std::setw(10) << "P95 MS" << std::setw(10) << "MAX MS"
      << "  " << std::left << std::setw(13) << "TREND" << std::right << std::setw(7) << "GROWTH"
      << std::setw(9) << "BLK/ROW"
      << "  ETA\n";
  for (const auto& p : jobs) {
    const JobFigures& f = p.figures;
    const std::string eta = p.status == "done" ? "-"
                            : p.eta_seconds    ? human_duration(*p.eta_seconds)
                                               : "?";
    out << std::left << std::setw(20) << p.job << std::setw(9) << p.status << std::right
        << std::setw(9) << f.batches << std::setw(12) << f.rows << std::setw(10)
        << fixed(f.rows_per_second, 0) << std::setw(10) << fixed(f.p50_ms, 1) << std::setw(10)
        << fixed(f.p95_ms, 1) << std::setw(10) << fixed(f.max_ms, 1) << "  " << std::left
        << std::setw(13) << trend_name(f.trend) << std::right << std::setw(7)
        << (f.growth ? fixed(*f.growth, 1) + "x" : "-") << std::setw(9)
        << (f.blocks_per_row ? fixed(*f.blocks_per_row, 1) : "-") << "  " << eta << "\n";
  }
  for (const auto& p : jobs)
    if (const auto warning = trend_warning(p)) out << "\nwarning: " << *warning << "\n";
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

}  // namespace

int profile_command(const ProfileOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const std::vector<const Job*> selected = select_jobs(file, options.jobs);
  auto conn = connect(options.dsn);
  StateStore store(*conn, file.state_schema);
  const int state_version = store.schema_version();
  std::vector<JobProfile> profiles;
  for (const Job* job : selected)
    profiles.push_back(read_profile(*conn, store, state_version, *job));

  if (options.format == ProfileFormat::json)
    print_json(out, profiles);
  else
    print_table(out, profiles);

  if (options.html) {
    std::ofstream html(*options.html);
    if (!html) throw PreflightError({"cannot write the report to " + *options.html});
    write_report(html, {"pgxform profile", file.path, utc_now()}, profiles);
    html.close();
    if (!html) throw std::runtime_error("writing the report to " + *options.html + " failed");
    spdlog::info("report written to {}", *options.html);
  }
  return k_exit_ok;
}

}  // namespace pgxform
