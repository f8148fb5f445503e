#include "explain_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iomanip>
#include <map>
#include <sstream>
#include <tuple>

#include "batch_sql.h"
#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "jobs_file.h"
#include "query_plan.h"
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

std::string cast(const std::string& param, const ResolvedJob& job) {
  return "(" + param + "::text)::" + job.key_type;
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) out += prefix + line + "\n";
  return out;
}

// Where the batch to explain starts: the cursor of the job (or of its first unfinished slice).
struct Start {
  BatchShape shape;
  std::optional<std::string> after;  // exclusive lower bound
  std::optional<std::string> hi;     // inclusive upper bound of a slice
  int slice = 0;
  std::string described;
  // The job's last logged batch: explained again when no keys are left after the cursor.
  std::optional<std::pair<std::string, std::string>> last_batch;
};

Start find_start(pqxx::connection& conn, const JobsFile& file, const ResolvedJob& job,
                 const std::optional<std::string>& at) {
  Start s;
  if (at) {
    try {
      pqxx::read_transaction tx(conn);
      tx.exec_params("SELECT " + cast("$1", job), *at);
    } catch (const pqxx::sql_error& e) {
      throw PreflightError({"'" + *at + "' is not a valid " + job.key_type + " key for " +
                            job.name + " (SQLSTATE " + e.sqlstate() + ")"});
    }
    s.shape = {Slicing::whole_job, CursorStart::after_last_key, UpperBound::open};
    s.after = at;
    s.described = "the batch after key " + *at;
    return s;
  }
  StateStore store(conn, file.state_schema);
  s.described = "the job's first batch";
  if (store.schema_version() == 0) return s;
  pqxx::read_transaction tx(conn);
  const pqxx::result r =
      job.parallel > 1
          ? tx.exec_params("SELECT last_key, hi_key, slice FROM " + store.schema_sql() +
                               ".job_slice WHERE job = $1 AND status <> 'done' ORDER BY slice"
                               " LIMIT 1",
                           job.name)
          : tx.exec_params(
                "SELECT last_key, NULL, 0 FROM " + store.schema_sql() + ".job_state WHERE job = $1",
                job.name);
  const pqxx::result last =
      tx.exec_params("SELECT first_key, last_key FROM " + store.schema_sql() +
                         ".batch_log WHERE job = $1 ORDER BY batch_no DESC LIMIT 1",
                     job.name);
  if (!last.empty())
    s.last_batch = std::make_pair(last[0][0].as<std::string>(), last[0][1].as<std::string>());
  if (r.empty()) return s;
  if (!r[0][0].is_null()) s.after = r[0][0].as<std::string>();
  if (!r[0][1].is_null()) s.hi = r[0][1].as<std::string>();
  s.slice = r[0][2].as<int>();
  s.shape = {Slicing::whole_job, s.after ? CursorStart::after_last_key : CursorStart::none,
             s.hi ? UpperBound::hi_key : UpperBound::open};
  if (s.after) s.described = "the next batch after the cursor, key " + *s.after;
  if (job.parallel > 1) s.described += " (slice " + std::to_string(s.slice) + ")";
  return s;
}

// The statement with the function's arguments replaced by the batch's bounds, so that it can be
// planned on its own (EXPLAIN, for hypopg). Names are matched as whole words outside quotes.
// The bounds come in as literals escaped by libpq (tx.quote): EXPLAIN of a statement text
// takes no parameters, and a plpgsql statement names its arguments rather than numbering them.
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

struct Proposal {
  std::string sql;        // CREATE INDEX ...
  std::string relation;   // as printed in the plan
  std::string columns;    // as printed, ", "-separated
  std::string statement;  // the statement it came from, with the bounds in place
};

// Whether an index on `relation` already starts with `columns`; its name, if so.
std::optional<std::string> existing_index(pqxx::work& tx, const Proposal& p) {
  pqxx::result r;
  try {
    pqxx::subtransaction sub(tx, "existing_index");
    r = sub.exec_params(
        "SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = to_regclass($1)"
        " AND (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n)"
        "  FROM unnest((i.indkey::int2[])[0:$3 - 1]) WITH ORDINALITY k(attnum, n)"
        "  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) = $2",
        p.relation, p.columns, int(std::count(p.columns.begin(), p.columns.end(), ',') + 1));
    sub.commit();
  } catch (const pqxx::sql_error& e) {
    spdlog::debug("could not look for an index on {}: {}", p.relation, e.what());
  }
  if (r.empty()) return std::nullopt;
  return r[0][0].as<std::string>();
}

// Creates the proposed index hypothetically and tells whether the planner would use it.
std::string check_with_hypopg(pqxx::work& tx, const Proposal& p) {
  try {
    pqxx::subtransaction sub(tx, "hypopg");
    sub.exec("CREATE EXTENSION IF NOT EXISTS hypopg");
    const std::string before = explain_text(sub, p.statement);
    const std::string name =
        sub.exec_params1("SELECT indexname FROM hypopg_create_index($1)", p.sql)[0]
            .as<std::string>();
    const std::string after = explain_text(sub, p.statement);
    sub.exec("SELECT hypopg_reset()");
    sub.abort();
    std::ostringstream text;
    text << std::fixed << std::setprecision(1);
    if (after.find(name) != std::string::npos)
      text << "the planner would use it (" << name << "): estimated cost " << plan_cost(before)
           << " -> " << plan_cost(after);
    else
      text << "the planner would NOT use it (estimated cost stays " << plan_cost(before)
           << "); look at the statement itself";
    return text.str();
  } catch (const pqxx::sql_error& e) {
    return "could not check (SQLSTATE " + e.sqlstate() + ": " +
           redact(std::string(e.what()).substr(0, std::string(e.what()).find('\n'))) + ")";
  }
}

}  // namespace

int explain_command(const ExplainOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  if (options.job.empty()) throw PreflightError({"explain takes a job (pgxform explain JOB)"});
  const Job* spec = file.find_job(options.job);
  if (!spec) throw PreflightError({file.path + ": no job named '" + options.job + "'"});
  if (spec->is_step())
    throw PreflightError({file.path + ": job '" + options.job +
                          "' is a one-shot sql: step; explain works on batched jobs"});
  auto conn = connect(options.dsn);
  const ResolvedJob job = check_catalog(*conn, file, {options.job}).jobs.at(options.job);
  Start start = find_start(*conn, file, job, options.at);

  try {
    pqxx::nontransaction load(*conn);
    load.exec("LOAD 'auto_explain'");
  } catch (const pqxx::sql_error& e) {
    throw PreflightError({"explain needs auto_explain, and LOAD 'auto_explain' failed (SQLSTATE " +
                          e.sqlstate() +
                          "): connect as a superuser, or have auto_explain installed in "
                          "$libdir/plugins"});
  }
  NoticeCollector notices(*conn);
  pqxx::work tx(*conn, "explain");

  // The batch, found as a run finds it.
  const pqxx::row bounds = tx.exec_params1(bounds_query(job, start.shape), start.after,
                                           job.batch_size, job.name, start.slice, start.hi);
  std::string lo, hi;
  if (!bounds[0].is_null()) {
    lo = bounds[0].as<std::string>();
    hi = bounds[1].as<std::string>();
  } else if (start.last_batch) {
    std::tie(lo, hi) = *start.last_batch;
    start.described = "no keys are left after the cursor, so its last batch again";
  } else {
    out << "explain " << job.name << ": no keys of " << job.table_sql << " in " << start.described
        << "; nothing to explain (try --at KEY)\n";
    return k_exit_ok;
  }
  const long long rows =
      tx.exec_params1("SELECT count(*) FROM " + job.table_sql + " t WHERE t." + job.key_sql +
                          " BETWEEN " + cast("$1", job) + " AND " + cast("$2", job),
                      lo, hi)[0]
          .as<long long>();
  std::vector<std::string> arg_names;
  for (const auto& row : tx.exec_params(
           "SELECT lower(a.n) FROM pg_proc p, unnest(p.proargnames) WITH ORDINALITY a(n, i)"
           " WHERE p.oid = to_regprocedure($1) ORDER BY a.i",
           job.function_sql + "(" + job.key_type + ", " + job.key_type + ")"))
    arg_names.push_back(row[0].as<std::string>());

  out << "explain " << job.name << ": " << start.described << "\n  keys [" << lo << ", " << hi
      << "], " << rows << " rows of " << job.table_sql
      << ", in a transaction that is rolled back\n";

  // Only the call below is explained: these settings last until the rollback.
  tx.exec(
      "SET LOCAL client_min_messages = notice; SET LOCAL auto_explain.log_level = notice;"
      " SET LOCAL auto_explain.log_analyze = on; SET LOCAL auto_explain.log_buffers = on;"
      " SET LOCAL auto_explain.log_verbose = on; SET LOCAL auto_explain.log_triggers = on;"
      " SET LOCAL auto_explain.log_nested_statements = on;"
      " SET LOCAL auto_explain.log_format = text;"
      " SET LOCAL auto_explain.log_min_duration = 0");
  notices.take();
  const std::string call =
      "SELECT " + job.function_sql + "(" + cast("$1", job) + ", " + cast("$2", job) + ")::text";
  const auto began = std::chrono::steady_clock::now();
  try {
    tx.exec_params(call, lo, hi);
  } catch (const pqxx::sql_error& e) {
    out << "the function failed (SQLSTATE " << e.sqlstate() << "): " << redact(e.what())
        << "nothing was written: the transaction was rolled back.\n";
    return k_exit_job_failed;
  }
  const double took_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
  tx.exec("SET LOCAL auto_explain.log_min_duration = -1");
  out << "  " << job.function_sql << " ran in " << std::fixed << std::setprecision(1) << took_ms
      << " ms\n";

  std::vector<StatementPlan> statements;
  for (const auto& message : notices.take()) {
    const auto plan = parse_auto_explain(message);
    if (!plan) {
      out << "  notice: " << message;
      continue;
    }
    if (plan->query_text == call) continue;  // the call itself: its plan is one Result node
    statements.push_back(*plan);
  }
  std::vector<std::pair<Finding, std::size_t>> findings;
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const StatementPlan& s = statements[i];
    out << "\nstatement " << i + 1 << " of " << statements.size() << ", " << s.duration_ms
        << " ms:\n"
        << indent(s.query_text, "    ") << "  plan (Output lists left out):\n"
        << indent(plan_without_output(s.plan_text), "    ");
    for (const auto& f : find_problems(s, double(rows))) findings.emplace_back(f, i);
  }
  if (statements.empty())
    out << "\nno statement inside the function was explained (is it a C function?)\n";

  out << "\nfindings:\n";
  if (findings.empty())
    out << "  none: no statement reads much more than its batch needs, no sub-plan runs per row\n";
  std::map<std::string, Proposal> proposals;  // by index SQL, first come first kept
  std::vector<std::string> order;
  for (std::size_t k = 0; k < findings.size(); ++k) {
    const auto& [f, statement] = findings[k];
    out << "  " << k + 1 << ". statement " << statement + 1 << ": " << f.text << "\n";
    const std::string sql = f.index_sql();
    if (sql.empty()) continue;
    out << "     proposed: " << sql << ";\n";
    if (!proposals.count(sql)) {
      std::string columns;
      for (const auto& c : f.columns) columns += (columns.empty() ? "" : ", ") + c;
      proposals[sql] = {
          sql, f.relation, columns,
          with_bounds(statements[statement].query_text, arg_names,
                      tx.quote(lo) + "::" + job.key_type, tx.quote(hi) + "::" + job.key_type)};
      order.push_back(sql);
    }
  }
  if (!order.empty()) {
    const bool hypopg =
        tx.exec1("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')")[0]
            .as<bool>();
    out << "\nproposed indexes:\n";
    for (const auto& sql : order) {
      const Proposal& p = proposals[sql];
      out << "  " << sql << ";\n";
      if (const auto name = existing_index(tx, p))
        out << "    an index with these leading columns exists (" << *name
            << ") but was not used: are the table's statistics stale? ANALYZE " << p.relation
            << "\n";
      if (hypopg)
        out << "    hypopg: " << check_with_hypopg(tx, p) << "\n";
      else
        out << "    hypopg is not installed, so the planner's choice was not checked (Debian: "
               "postgresql-15-hypopg)\n";
    }
  }
  tx.abort();
  out << "\nnothing was written: the transaction was rolled back.\n";
  return k_exit_ok;
}

}  // namespace pgxform
