#include "preflight_commands.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <map>

#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "jobs_file.h"
#include "output_format.h"
#include "state_store.h"

namespace pgxform {

namespace {

std::unique_ptr<pqxx::connection> connect_read_only(const std::string& dsn) {
  auto conn = connect(dsn);
  pqxx::nontransaction tx(*conn);
  tx.exec("SET default_transaction_read_only = on");
  return conn;
}

// Warnings about a resolved job that only make a run slow or surprising.
void warn_about(pqxx::connection& conn, const JobsFile& file, const ResolvedJob& job,
                std::vector<std::string>& warnings) {
  const Job& spec = *file.find_job(job.name);
  const std::string where =
      file.path + ":" + std::to_string(spec.line) + ": job '" + job.name + "'";
  pqxx::read_transaction tx(conn);
  const pqxx::row r = tx.exec_params1(
      "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
      "  JOIN pg_am am ON am.oid = c.relam JOIN pg_attribute a ON a.attrelid = i.indrelid"
      "  AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass($1) AND am.amname = 'btree'"
      "  AND a.attname = $2),"
      " coalesce((SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_all_tables"
      "  WHERE relid = to_regclass($1)), true)",
      job.table_sql, job.key_name);
  if (!r[0].as<bool>())
    warnings.push_back(where + ": no btree index on " + job.table_schema + "." + job.table_name +
                       " starts with the key " + job.key_name +
                       ": each batch would scan the table. CREATE INDEX ON " + job.table_sql +
                       " (" + job.key_sql + ")");
  if (r[1].as<bool>())
    warnings.push_back(where + ": " + job.table_schema + "." + job.table_name +
                       " has not been analyzed since it was loaded: run ANALYZE " + job.table_sql +
                       " so that the planner knows its size");
  if (job.function_volatility != 'v')
    warnings.push_back(where + ": function " + job.function_sql + " is declared " +
                       (job.function_volatility == 'i' ? "IMMUTABLE" : "STABLE") +
                       ": a transform that writes must be VOLATILE, or the planner may fold, "
                       "cache or reject its calls");
}

// Stage of each list: 1 for lists after nothing, else one more than the latest list it is after.
std::map<std::string, int> stages(const JobsFile& file) {
  std::map<std::string, int> stage;
  std::function<int(const JobList&)> of = [&](const JobList& list) {
    auto it = stage.find(list.name);
    if (it != stage.end()) return it->second;
    int s = 1;
    for (const auto& a : list.after) s = std::max(s, of(*file.find_list(a)) + 1);
    return stage[list.name] = s;
  };
  for (const auto& list : file.lists) of(list);
  return stage;
}

}  // namespace

int validate_command(const PreflightOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect_read_only(options.dsn);
  Preflight preflight = inspect_catalog(*conn, file, {});
  std::vector<std::string> problems = preflight.problems;
  std::vector<std::string> warnings = preflight.warnings;
  for (const auto& [name, job] : preflight.jobs) warn_about(*conn, file, job, warnings);
  StateStore store(*conn, file.state_schema);
  for (const auto& p : store.changed_functions(preflight.jobs, {})) problems.push_back(p);
  for (const auto& [name, job] : preflight.jobs) {
    try {
      store.check_slicing(job);
    } catch (const std::runtime_error& e) {
      problems.push_back(file.path + ": " + e.what());
    }
  }
  for (const auto& w : warnings) out << "warning: " << w << "\n";
  for (const auto& p : problems) out << "error: " << p << "\n";
  size_t jobs = 0;
  for (const auto& list : file.lists) jobs += list.jobs.size();
  out << file.path << ": " << jobs << " jobs in " << file.lists.size() << " lists, "
      << problems.size() << " error(s), " << warnings.size() << " warning(s)\n";
  return problems.empty() ? k_exit_ok : k_exit_usage;
}

int plan_command(const PreflightOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect_read_only(options.dsn);
  const Preflight preflight = inspect_catalog(*conn, file, {});
  StateStore store(*conn, file.state_schema);
  std::map<std::string, std::string> status;
  for (const auto& s : store.read_status()) status[s.job] = s.status;
  const auto stage = stages(file);
  const int threads = options.threads > 0 ? options.threads : file.default_threads;
  int last_stage = 0;
  for (const auto& [name, s] : stage) last_stage = std::max(last_stage, s);

  struct Estimate {
    std::optional<long long> rows, batches;
  };
  auto estimate = [&](const Job& job) {
    Estimate e;
    auto it = preflight.jobs.find(job.name);
    if (it == preflight.jobs.end()) return e;
    pqxx::read_transaction tx(*conn);
    const pqxx::row r = tx.exec_params1(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)", it->second.table_sql);
    if (r[0].is_null() || r[0].as<long long>() < 0) return e;
    e.rows = r[0].as<long long>();
    e.batches = (*e.rows + job.batch_size - 1) / job.batch_size;
    return e;
  };
  auto json_number = [](const std::optional<long long>& v) {
    return v ? std::to_string(*v) : std::string("null");
  };

  if (options.json) {
    out << "{\"threads\": " << threads << ", \"lists\": [";
    for (size_t l = 0; l < file.lists.size(); ++l) {
      const JobList& list = file.lists[l];
      out << (l ? ", " : "") << "{\"name\": " << json_string(list.name) << ", \"after\": [";
      for (size_t a = 0; a < list.after.size(); ++a)
        out << (a ? ", " : "") << json_string(list.after[a]);
      out << "], \"stage\": " << stage.at(list.name) << ", \"jobs\": [";
      for (size_t j = 0; j < list.jobs.size(); ++j) {
        const Job& job = list.jobs[j];
        const Estimate e = estimate(job);
        out << (j ? ", " : "") << "{\"name\": " << json_string(job.name)
            << ", \"kind\": " << (job.is_step() ? "\"step\"" : "\"batched\"");
        if (job.is_step()) {
          out << ", \"sql\": " << json_string(job.sql);
        } else {
          out << ", \"table\": " << json_string(job.table.text())
              << ", \"key\": " << json_string(job.key)
              << ", \"function\": " << json_string(job.function.text())
              << ", \"batch_size\": " << job.batch_size << ", \"parallel\": " << job.parallel
              << ", \"estimated_rows\": " << json_number(e.rows)
              << ", \"estimated_batches\": " << json_number(e.batches);
        }
        auto st = status.find(job.name);
        out << ", \"status\": " << json_string(st == status.end() ? "pending" : st->second) << "}";
      }
      out << "]}";
    }
    out << "]}\n";
  } else {
    out << "plan for " << file.path << ": " << file.lists.size() << " lists on " << threads
        << " threads\n";
    for (int s = 1; s <= last_stage; ++s) {
      std::vector<const JobList*> lists;
      for (const auto& list : file.lists)
        if (stage.at(list.name) == s) lists.push_back(&list);
      out << "stage " << s << ": " << lists.size() << " list(s)"
          << (lists.size() > 1 ? ", in parallel up to " + std::to_string(threads) + " threads" : "")
          << "\n";
      for (const JobList* list : lists) {
        out << "  list " << list->name;
        if (!list->after.empty()) {
          out << " (after";
          for (const auto& a : list->after) out << " " << a;
          out << ")";
        }
        out << ": its jobs in order\n";
        for (const auto& job : list->jobs) {
          auto st = status.find(job.name);
          const std::string state = st == status.end() ? "pending" : st->second;
          if (job.is_step()) {
            out << "    " << job.name << ": one-shot step `" << job.sql << "` [" << state << "]\n";
            continue;
          }
          const Estimate e = estimate(job);
          out << "    " << job.name << ": " << job.function.text() << " over " << job.table.text()
              << " by " << job.key << ", ~" << (e.rows ? std::to_string(*e.rows) : "?")
              << " rows in ~" << (e.batches ? std::to_string(*e.batches) : "?") << " batches of "
              << job.batch_size;
          if (job.parallel > 1) out << ", " << job.parallel << " slices at once";
          out << " [" << state << "]\n";
        }
      }
    }
  }
  // On stderr, so that --json stays valid JSON.
  for (const auto& p : preflight.problems) std::cerr << "pgxform: error: " << redact(p) << "\n";
  return preflight.problems.empty() ? k_exit_ok : k_exit_usage;
}

}  // namespace pgxform
