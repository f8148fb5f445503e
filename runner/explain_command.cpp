#include "explain_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <sstream>

#include "batch_log.h"
#include "batch_sql.h"
#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "job_selection.h"
#include "output_format.h"
#include "retry.h"
#include "state_store.h"

namespace pgxform {

namespace {

// Collects the notices of a connection while it lives (auto_explain's plans among them).
class NoticeCollector : public pqxx::errorhandler {
 public:
  explicit NoticeCollector(pqxx::connection_base& conn) : pqxx::errorhandler(conn) {}
  bool operator()(const char msg[]) noexcept override {
    try {
      m_messages.emplace_back(msg);
    } catch (...) {
      // Out of memory while keeping a notice: the plan is lost, the batch is not harmed.
    }
    return false;  // nobody else prints them
  }
  std::vector<std::string> take() {
    std::vector<std::string> out;
    out.swap(m_messages);
    return out;
  }

 private:
  std::vector<std::string> m_messages;
};

std::string indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) out += prefix + line + "\n";
  return out;
}

// Where the batch to explain starts: after --at, else at the job's cursor (or its first
// unfinished slice's).
struct Start {
  BatchShape shape;
  Cursor cursor;
  std::string described;
  // The job's last logged batch: explained again when no keys are left after the cursor.
  std::optional<std::pair<std::string, std::string>> last_batch;
};

Start find_start(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                 const std::optional<std::string>& at) {
  Start s;
  if (at) {
    pqxx::read_transaction tx(conn);
    check_key(tx, job, *at, "--at");
    s.cursor.last_key = at;
    s.described = "the batch after key " + *at;
  } else {
    StateStore store(conn, schema);
    const auto cursor = store.next_cursor(job.name, slicing_of(job));
    if (cursor) s.cursor = *cursor;
    pqxx::read_transaction tx(conn);
    s.last_batch = last_batch(tx, schema, job.name);
    s.described = s.cursor.last_key ? "the next batch after the cursor, key " + *s.cursor.last_key
                                    : "the job's first batch";
    if (cursor && job.parallel > 1)
      s.described += " (slice " + std::to_string(s.cursor.slice) + ")";
  }
  s.shape = {Slicing::whole_job,
             s.cursor.last_key ? CursorStart::after_last_key : CursorStart::none,
             s.cursor.hi_key ? UpperBound::hi_key : UpperBound::open};
  return s;
}

void load_auto_explain(pqxx::connection& conn) {
  try {
    pqxx::nontransaction load(conn);
    load.exec("LOAD 'auto_explain'");
  } catch (const pqxx::sql_error& e) {
    // libpqxx leaves the SQLSTATE of some errors (42501, insufficient privilege) out of
    // sqlstate(); retry.h reads it from the exception's type.
    const Failure failure = classify(e);
    throw PreflightError({"explain needs auto_explain, and LOAD 'auto_explain' failed" +
                          (failure.sqlstate.empty() ? "" : " (SQLSTATE " + failure.sqlstate + ")") +
                          ": " + failure.message +
                          "; connect as a superuser, or have auto_explain installed in "
                          "$libdir/plugins"});
  }
}

// The function's call over [lo, hi] with auto_explain on for it alone (the settings last until
// the rollback): the plans of the statements inside it, or its error.
void run_explained(pqxx::work& tx, NoticeCollector& notices, const ResolvedJob& job,
                   ExplainedBatch& batch) {
  tx.exec(
      "SET LOCAL client_min_messages = notice; SET LOCAL auto_explain.log_level = notice;"
      " SET LOCAL auto_explain.log_analyze = on; SET LOCAL auto_explain.log_buffers = on;"
      " SET LOCAL auto_explain.log_verbose = on; SET LOCAL auto_explain.log_triggers = on;"
      " SET LOCAL auto_explain.log_nested_statements = on;"
      " SET LOCAL auto_explain.log_format = text;"
      " SET LOCAL auto_explain.log_min_duration = 0");
  notices.take();
  const std::string call = call_query(job);
  const auto began = std::chrono::steady_clock::now();
  try {
    pqxx::subtransaction sub(tx, "explained");
    sub.exec_params(call, batch.lo, batch.hi);
    sub.commit();
  } catch (const pqxx::sql_error& e) {
    batch.error = "(SQLSTATE " + e.sqlstate() + "): " + redact(e.what());
    return;
  }
  batch.took_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
  tx.exec("SET LOCAL auto_explain.log_min_duration = -1");
  for (const auto& message : notices.take()) {
    const auto plan = parse_auto_explain(message);
    if (!plan)
      batch.notices.push_back(message);
    else if (plan->query_text != call)  // the call itself: its plan is one Result node
      batch.statements.push_back(*plan);
  }
}

std::vector<std::string> argument_names(pqxx::transaction_base& tx, const ResolvedJob& job) {
  std::vector<std::string> names;
  for (const auto& row :
       tx.exec_params("SELECT pg_catalog.lower(a.n) FROM pg_catalog.pg_proc p, "
                      "pg_catalog.unnest(p.proargnames) WITH ORDINALITY a(n, i)"
                      " WHERE p.oid = pg_catalog.to_regprocedure($1) ORDER BY a.i",
                      job.function_sql + "(" + job.key_type + ", " + job.key_type + ")"))
    names.push_back(row[0].as<std::string>());
  return names;
}

// The estimated total cost of a plan's top node: "(cost=0.00..154.99 ..." -> 154.99.
double plan_cost(const std::string& plan) {
  const auto at = plan.find("..");
  return at == std::string::npos ? 0 : std::atof(plan.c_str() + at + 2);
}

std::string explain_text(pqxx::subtransaction& tx, const std::string& sql) {
  std::string text;
  for (const auto& row : tx.exec("EXPLAIN " + sql)) text += row[0].as<std::string>() + "\n";
  return text;
}

// Whether an index on the proposal's relation already starts with its columns; its name, if so.
std::optional<std::string> existing_index(pqxx::work& tx, const IndexProposal& p) {
  try {
    pqxx::subtransaction sub(tx, "existing_index");
    const pqxx::result r = sub.exec_params(
        "SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index i WHERE i.indrelid = "
        "pg_catalog.to_regclass($1)"
        " AND (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n)"
        "  FROM pg_catalog.unnest((i.indkey::int2[])[0:$3 - 1]) WITH ORDINALITY k(attnum, n)"
        "  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) = $2",
        p.relation, p.columns, int(std::count(p.columns.begin(), p.columns.end(), ',') + 1));
    sub.commit();
    if (!r.empty()) return r[0][0].as<std::string>();
  } catch (const pqxx::sql_error& e) {
    spdlog::debug("could not look for an index on {}: {}", p.relation, e.what());
  }
  return std::nullopt;
}

// Creates the proposed index hypothetically and tells whether the planner would use it.
// hypopg's functions are called in the extension's own schema, never as the search_path finds
// a function of that name.
std::string check_with_hypopg(pqxx::work& tx, const IndexProposal& p) {
  try {
    pqxx::subtransaction sub(tx, "hypopg");
    sub.exec("CREATE EXTENSION IF NOT EXISTS hypopg");
    const std::string schema = quote_ident(
        sub.exec1("SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n"
                  " ON n.oid = e.extnamespace WHERE e.extname = 'hypopg'")[0]
            .as<std::string>());
    const std::string before = explain_text(sub, p.statement);
    const std::string name =
        sub.exec_params1("SELECT indexname FROM " + schema + ".hypopg_create_index($1)", p.sql)[0]
            .as<std::string>();
    const std::string after = explain_text(sub, p.statement);
    sub.exec("SELECT " + schema + ".hypopg_reset()");
    sub.abort();
    if (after.find(name) != std::string::npos)
      return "the planner would use it (" + name + "): estimated cost " +
             fixed(plan_cost(before), 1) + " -> " + fixed(plan_cost(after), 1);
    return "the planner would NOT use it (estimated cost stays " + fixed(plan_cost(before), 1) +
           "); look at the statement itself";
  } catch (const pqxx::sql_error& e) {
    return "could not check (SQLSTATE " + e.sqlstate() + ": " +
           redact(std::string(e.what()).substr(0, std::string(e.what()).find('\n'))) + ")";
  }
}

void check_proposals(pqxx::work& tx, std::vector<IndexProposal>& proposals) {
  if (proposals.empty()) return;
  const bool hypopg = tx.exec1(
                            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE "
                            "name = 'hypopg')")[0]
                          .as<bool>();
  for (auto& p : proposals) {
    p.existing = existing_index(tx, p);
    if (hypopg) p.hypopg = check_with_hypopg(tx, p);
  }
}

void print_statements(std::ostream& out, const ExplainedBatch& b) {
  out << "  " << b.function_sql << " ran in " << fixed(b.took_ms, 1) << " ms\n";
  for (const auto& notice : b.notices) out << "  notice: " << notice;
  for (std::size_t i = 0; i < b.statements.size(); ++i) {
    const StatementPlan& s = b.statements[i];
    out << "\nstatement " << i + 1 << " of " << b.statements.size() << ", "
        << fixed(s.duration_ms, 1) << " ms:\n"
        << indent(s.query_text, "    ") << "  plan (Output lists left out):\n"
        << indent(plan_without_output(s.plan_text), "    ");
  }
  if (b.statements.empty())
    out << "\nno statement inside the function was explained (is it a C function?)\n";
}

void print_findings(std::ostream& out, const ExplainReport& report) {
  out << "\nfindings:\n";
  if (report.findings.empty())
    out << "  none: no statement reads much more than its batch needs, no sub-plan runs per row\n";
  for (std::size_t k = 0; k < report.findings.size(); ++k) {
    const auto& [f, statement] = report.findings[k];
    out << "  " << k + 1 << ". statement " << statement + 1 << ": " << f.text << "\n";
    if (!f.index_sql().empty()) out << "     proposed: " << f.index_sql() << ";\n";
  }
  if (report.proposals.empty()) return;
  out << "\nproposed indexes:\n";
  for (const auto& p : report.proposals) {
    out << "  " << p.sql << ";\n";
    if (p.existing)
      out << "    an index with these leading columns exists (" << *p.existing
          << ") but was not used: are the table's statistics stale? ANALYZE " << p.relation << "\n";
    if (p.hypopg)
      out << "    hypopg: " << *p.hypopg << "\n";
    else
      out << "    hypopg is not installed, so the planner's choice was not checked (Debian: "
             "postgresql-15-hypopg)\n";
  }
}

}  // namespace

std::string with_bounds(const std::string& sql, const std::vector<std::string>& names,
                        const std::string& lo, const std::string& hi) {
  std::string out;
  std::size_t i = 0;
  auto word_char = [](char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '$'; };
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      const std::size_t close = sql.find(c, i + 1);
      const std::size_t end = close == std::string::npos ? sql.size() : close + 1;
      out += sql.substr(i, end - i);
      i = end;
      continue;
    }
    if (word_char(c) && (i == 0 || (!word_char(sql[i - 1]) && sql[i - 1] != '.'))) {
      std::size_t end = i;
      while (end < sql.size() && word_char(sql[end])) ++end;
      std::string word = sql.substr(i, end - i);
      std::string lower = word;
      for (auto& ch : lower) ch = char(std::tolower((unsigned char)ch));
      if (lower == "$1" || (names.size() > 0 && lower == names[0]))
        word = lo;
      else if (lower == "$2" || (names.size() > 1 && lower == names[1]))
        word = hi;
      out += word;
      i = end;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

void find_proposals(ExplainReport& report, const std::vector<std::string>& arg_names,
                    const std::string& lo, const std::string& hi) {
  const auto& statements = report.batch.statements;
  std::set<std::string> proposed;
  for (std::size_t i = 0; i < statements.size(); ++i)
    for (const auto& f : find_problems(statements[i], double(report.batch.rows))) {
      report.findings.emplace_back(f, i);
      const std::string sql = f.index_sql();
      if (sql.empty() || !proposed.insert(sql).second) continue;
      std::string columns;
      for (const auto& c : f.columns) columns += (columns.empty() ? "" : ", ") + c;
      report.proposals.push_back({sql, f.relation, columns,
                                  with_bounds(statements[i].query_text, arg_names, lo, hi),
                                  std::nullopt, std::nullopt});
    }
}

void print_explained(std::ostream& out, const ExplainReport& report) {
  const ExplainedBatch& b = report.batch;
  out << "explain " << b.job << ": " << b.described << "\n  keys [" << b.lo << ", " << b.hi << "], "
      << b.rows << " rows of " << b.table_sql << ", in a transaction that is rolled back\n";
  if (b.error) {
    out << "the function failed " << *b.error
        << "nothing was written: the transaction was rolled back.\n";
    return;
  }
  print_statements(out, b);
  print_findings(out, report);
  out << "\nnothing was written: the transaction was rolled back.\n";
}

int explain_command(const ExplainOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  if (options.job.empty()) throw UsageError("explain takes a job (pgxform explain JOB)");
  select_jobs(file, {options.job}, JobKinds::batched, "explain works on batched jobs");
  auto conn = connect(options.dsn);
  const ResolvedJob job = resolve_jobs(*conn, file, {options.job}).front();
  const StateSchema schema(file.state_schema);
  const Start start = find_start(*conn, schema, job, options.at);
  load_auto_explain(*conn);
  NoticeCollector notices(*conn);
  pqxx::work tx(*conn, "explain");

  ExplainReport report;
  ExplainedBatch& b = report.batch;
  b.job = job.name;
  b.table_sql = job.table_sql;
  b.function_sql = job.function_sql;
  b.described = start.described;
  // The batch, found as a run finds it.
  const pqxx::row bounds =
      tx.exec_params1(bounds_query(job, start.shape), start.cursor.last_key, job.batch_size,
                      job.name, start.cursor.slice, start.cursor.hi_key);
  if (!bounds[0].is_null()) {
    b.lo = bounds[0].as<std::string>();
    b.hi = bounds[1].as<std::string>();
  } else if (start.last_batch) {
    std::tie(b.lo, b.hi) = *start.last_batch;
    b.described = "no keys are left after the cursor, so its last batch again";
  } else {
    out << "explain " << job.name << ": no keys of " << job.table_sql << " in " << start.described
        << "; nothing to explain (try --at KEY)\n";
    return k_exit_ok;
  }
  b.rows = tx.exec_params1(range_rows_query(job), b.lo, b.hi)[0].as<long long>();
  run_explained(tx, notices, job, b);
  if (!b.error) {
    find_proposals(report, argument_names(tx, job), tx.quote(b.lo) + "::" + job.key_type,
                   tx.quote(b.hi) + "::" + job.key_type);
    check_proposals(tx, report.proposals);
  }
  tx.abort();
  print_explained(out, report);
  return b.error ? k_exit_job_failed : k_exit_ok;
}

}  // namespace pgxform
