#include "commands/running_batch.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "base/exit_code.h"
#include "base/output_format.h"
#include "base/sql_text.h"
#include "catalog/catalog.h"
#include "database/database.h"
#include "database/retry.h"
#include "engine/batch_sql.h"
#include "output/terminal_text.h"
#include "plan/job_selection.h"
#include "state/batch_log.h"
#include "state/state_locks.h"
#include "state/state_schema.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

constexpr double k_a_year_s = 365.0 * 24 * 3600;

std::string lowercase(std::string text) {
  for (auto& c : text) c = char(std::tolower((unsigned char)c));
  return text;
}

// The first word of `text` and the rest after it, blanks around both left out.
std::pair<std::string, std::string> first_word(const std::string& text) {
  std::size_t start = 0;
  while (start < text.size() && std::isspace((unsigned char)text[start])) ++start;
  std::size_t end = start;
  while (end < text.size() && (std::isalpha((unsigned char)text[end]) || text[end] == '_')) ++end;
  std::size_t rest = end;
  while (rest < text.size() && std::isspace((unsigned char)text[rest])) ++rest;
  return {lowercase(text.substr(start, end - start)), text.substr(rest)};
}

// The session of the job's batch in flight, the oldest when several slices are: none when none
// is in flight.
std::optional<TaskHolder> in_flight_holder(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const std::string& job) {
  if (state_version(tx, schema) == 0) return std::nullopt;
  std::optional<TaskHolder> oldest;
  for (auto& h : task_holders(tx, schema))
    if (h.job == job && h.in_flight_s && (!oldest || *h.in_flight_s > *oldest->in_flight_s))
      oldest = std::move(h);
  return oldest;
}

// The batch's range: after the task's cursor, as long as the job's last batch asked for.
void find_range(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                RunningBatch& b) {
  StateStore store(conn, schema);
  const auto cursor = store.read_cursor({job.name, b.slice, Phase::main}, slicing_of(job));
  pqxx::read_transaction tx(conn);
  // The size the job's last batch asked for, however long ago (a year, as a window).
  b.batch_size = read_recent_batches(tx, schema, job.name, k_a_year_s).batch_size.value_or(0);
  if (b.batch_size <= 0) b.batch_size = job.batch_size;
  const Cursor c = cursor.value_or(Cursor{});
  const BatchShape shape{Slicing::whole_job,
                         c.last_key ? CursorStart::after_last_key : CursorStart::none,
                         c.hi_key ? UpperBound::hi_key : UpperBound::open};
  const pqxx::row r = tx.exec_params1(bounds_query(job, shape), c.last_key, b.batch_size, job.name,
                                      c.slice, c.hi_key);
  if (r[0].is_null()) return;
  b.lo = r[0].as<std::string>();
  b.hi = r[1].as<std::string>();
}

// The statement with the function's arguments as parameters, and the values to bind: only the
// parameters it uses are numbered, since the server cannot tell the type of one it never meets.
struct Parameterised {
  std::string sql;
  std::vector<std::string> values;
};

Parameterised parameterised(const std::string& statement, const std::vector<std::string>& names,
                            const ResolvedJob& job, const RunningBatch& b) {
  const std::string probe = with_bounds(statement, names, "\x01lo\x01", "\x01hi\x01");
  const bool uses_lo = probe.find("\x01lo\x01") != std::string::npos;
  const bool uses_hi = probe.find("\x01hi\x01") != std::string::npos;
  Parameterised p;
  if (uses_lo) p.values.push_back(b.lo);
  if (uses_hi) p.values.push_back(b.hi);
  const std::string lo = "$1::" + job.key_type;
  const std::string hi = "$" + std::to_string(uses_lo ? 2 : 1) + "::" + job.key_type;
  p.sql = with_bounds(statement, names, lo, hi);
  return p;
}

PlannedStatement plan_statement(pqxx::work& tx, const Parameterised& p) {
  PlannedStatement planned{p.sql, "", ""};
  try {
    pqxx::subtransaction sub(tx, "running_statement");
    const pqxx::result r =
        sub.exec_params(fill_sql("EXPLAIN @statement@", {{"@statement@", p.sql}}),
                        pqxx::prepare::make_dynamic_params(p.values));
    for (const auto& row : r) planned.plan += row[0].as<std::string>() + "\n";
    sub.abort();
  } catch (const pqxx::sql_error& e) {
    const Failure f = classify(e);
    planned.why_not = "(SQLSTATE " + f.sqlstate + "): " + f.message.substr(0, f.message.find('\n'));
  }
  return planned;
}

// The function's statements, each planned for the batch's range.
void plan_statements(pqxx::connection& conn, const ResolvedJob& job, RunningBatch& b) {
  pqxx::work tx(conn, "explain_running");
  // A table that the batch in flight (or anyone) locks exclusively: no plan, rather than a wait.
  tx.exec("SET LOCAL lock_timeout = '2s'");
  const pqxx::result fn =
      tx.exec_params(R"(
    SELECT l.lanname, p.prosrc, coalesce(p.proargnames[1], ''), coalesce(p.proargnames[2], '')
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
    WHERE p.oid = pg_catalog.to_regprocedure($1))",
                     job.function_sql + "(" + job.key_type + ", " + job.key_type + ")");
  if (fn.empty()) return;
  const std::vector<std::string> names{lowercase(fn[0][2].as<std::string>()),
                                       lowercase(fn[0][3].as<std::string>())};
  for (const auto& statement :
       function_statements(fn[0][0].as<std::string>(), fn[0][1].as<std::string>()))
    b.statements.push_back(plan_statement(tx, parameterised(statement, names, job, b)));
  tx.abort();
}

std::string plan_lines(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);)
    out += prefix + terminal_text(line, Lines::indented) + "\n";
  return out;
}

}  // namespace

std::vector<std::string> function_statements(const std::string& language, const std::string& body) {
  std::vector<std::string> out;
  if (language == "sql") return split_statements(body);
  if (language != "plpgsql") return out;
  bool begun = false;
  for (const auto& statement : split_statements(body)) {
    std::string text = statement;
    auto [word, rest] = first_word(text);
    // The first statement after BEGIN shares its piece with it: "BEGIN SELECT ...".
    if (!begun && word != "begin") continue;
    if (word == "begin") {
      begun = true;
      text = rest;
      std::tie(word, rest) = first_word(text);
    }
    if (word == "perform")
      out.push_back("SELECT " + rest);
    else if (word == "select" || word == "insert" || word == "update" || word == "delete" ||
             word == "with")
      out.push_back(text);
  }
  return out;
}

void print_running(std::ostream& out, const RunningBatch& b) {
  out << "explain " << b.job << " --running: the batch in flight"
      << (b.slice > 0 ? " of slice " + std::to_string(b.slice) : "") << " for "
      << fixed(b.in_flight_s, 0) << " s, backend " << b.pid;
  if (b.wait_event) out << ", waiting on " << terminal_text(*b.wait_event);
  for (std::size_t i = 0; i < b.blocked_by.size(); ++i)
    out << (i ? ", " : ", blocked by backend ") << b.blocked_by[i];
  out << "\n  its statement: " << terminal_text(b.query, Lines::indented) << "\n";
  if (b.lo.empty()) {
    out << "  no keys are left after the cursor: the batch is finishing\n";
    return;
  }
  out << "  keys [" << terminal_text(b.lo) << ", " << terminal_text(b.hi) << "]"
      << (b.hi_estimated ? " (the last key estimated from the last batch's size, " +
                               std::to_string(b.batch_size) + ")"
                         : "")
      << "\n  plans as the planner makes them now, for these values bound as $1 and $2 (EXPLAIN "
         "without ANALYZE: nothing runs)\n";
  if (b.statements.empty())
    out << "\nno statement of the function can be planned alone (is it a C function?)\n";
  for (std::size_t i = 0; i < b.statements.size(); ++i) {
    const PlannedStatement& s = b.statements[i];
    out << "\nstatement " << i + 1 << ":\n" << plan_lines(s.text, "    ");
    if (s.plan.empty())
      out << "  it could not be planned alone " << terminal_text(s.why_not, Lines::indented)
          << "\n";
    else
      out << "  plan:\n" << plan_lines(s.plan, "    ");
  }
}

int explain_running(const ExplainOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  select_jobs(file, {options.job}, JobKinds::batched, "explain works on batched jobs");
  auto conn = connect(options.dsn);
  const ResolvedJob job = resolve_jobs(*conn, file, {options.job}).front();
  const StateSchema schema(file.state_schema);
  RunningBatch b;
  b.job = job.name;
  {
    pqxx::read_transaction tx(*conn);
    const auto holder = in_flight_holder(tx, schema, job.name);
    if (!holder) {
      out << "explain " << job.name << " --running: no batch of " << job.name
          << " is in flight now; nothing to explain (pgxform explain " << job.name
          << " runs its next batch, rolled back)\n";
      return k_exit_job_failed;
    }
    b.slice = holder->slice;
    b.pid = holder->pid;
    b.in_flight_s = *holder->in_flight_s;
    b.wait_event = holder->wait_event;
    b.blocked_by = holder->blocked_by;
    const pqxx::result q = tx.exec_params(
        "SELECT coalesce(query, '') FROM pg_catalog.pg_stat_activity WHERE pid = $1", b.pid);
    if (!q.empty()) b.query = q[0][0].as<std::string>();
  }
  find_range(*conn, schema, job, b);
  if (!b.lo.empty()) plan_statements(*conn, job, b);
  print_running(out, b);
  return k_exit_ok;
}

}  // namespace pgxform
