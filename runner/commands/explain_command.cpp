#include "commands/explain_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <set>
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
#include "state/state_store.h"

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

// More repeats than this (statements run again with one text and plan) and explaining each one
// would slow the statements around them: the batch is timed in a second run.
constexpr std::size_t k_repeats_to_retime = 10;

// Statements, plans and errors come from the server and the data: each line escaped
// (terminal_text.h), and so is every word that wrapped() lays out.
std::string indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);)
    out += prefix + terminal_text(line, Lines::indented) + "\n";
  return out;
}

// `text` as lines of at most k_wrap_width characters, the first after `first`, the others after
// `rest` (a finding's number, then its continuation).
constexpr std::size_t k_wrap_width = 100;

std::string wrapped(const std::string& text, const std::string& first, const std::string& rest) {
  std::string out = first, line_start = first;
  std::size_t column = first.size();
  std::istringstream words(text);
  bool line_empty = true;
  for (std::string read; words >> read;) {
    const std::string word = terminal_text(read);
    if (!line_empty && column + 1 + word.size() > k_wrap_width) {
      out += "\n" + rest;
      column = rest.size();
      line_empty = true;
    }
    if (!line_empty) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    line_empty = false;
  }
  return out + "\n";
}

// Where the batch to explain starts: after --at, else at the job's cursor (or its first
// unfinished slice's).
struct Start {
  BatchShape shape;
  Cursor cursor;
  std::string described;
  // The job's cursor, whether or not the batch starts there, and whether the job is done.
  std::optional<std::string> cursor_key;
  bool job_done = false;
  // The job's last logged batch: explained again when no keys are left after the cursor.
  std::optional<std::pair<std::string, std::string>> last_batch;
};

Start find_start(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                 const std::optional<std::string>& at) {
  Start s;
  StateStore store(conn, schema);
  const auto cursor = store.next_cursor(job.name, slicing_of(job));
  pqxx::read_transaction tx(conn);
  s.last_batch = last_batch(tx, schema, job.name);
  if (cursor) s.cursor_key = cursor->last_key;
  // A job with slices has no cursor left once every slice is done.
  s.job_done = cursor ? cursor->status == "done" : s.last_batch.has_value();
  if (at) {
    check_key(tx, job, *at, "--at");
    s.cursor.last_key = at;
    s.described = "the batch after key " + *at;
  } else {
    if (cursor) s.cursor = *cursor;
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
    // sqlstate(); retry.h reads it from the exception's type. No privilege to load it, or no
    // auto_explain installed (58P01, undefined file), is the database's setup; a timeout or a
    // lost server is not.
    const Failure failure = classify(e);
    if (!is_setup_error(failure.sqlstate) && failure.sqlstate != "58P01") throw;
    throw PreflightError({"explain needs auto_explain, and LOAD 'auto_explain' failed" +
                          (failure.sqlstate.empty() ? "" : " (SQLSTATE " + failure.sqlstate + ")") +
                          ": " + failure.message +
                          "; connect as a superuser, or have auto_explain installed in "
                          "$libdir/plugins"});
  }
}

// One run of the function over the batch, in a subtransaction that is rolled back, with
// auto_explain logging the statements that take `min_duration_ms` or more: their plans, the
// other messages, its time, and its error if it failed.
struct ExplainedRun {
  std::vector<StatementPlan> statements;
  std::vector<std::string> notices;
  double took_ms = 0;
  std::optional<Failure> failure;
};

ExplainedRun explained_run(pqxx::work& tx, NoticeCollector& notices, const std::string& call,
                           const ExplainedBatch& b, int min_duration_ms) {
  ExplainedRun run;
  try {
    pqxx::subtransaction sub(tx, "explained");
    start_savepoint(sub);
    // Until the rollback of the subtransaction.
    sub.exec_params("SELECT pg_catalog.set_config('auto_explain.log_min_duration', $1, true)",
                    std::to_string(min_duration_ms));
    notices.take();
    const auto began = std::chrono::steady_clock::now();
    sub.exec_params(call, b.lo, b.hi);
    run.took_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
    sub.abort();
  } catch (const pqxx::sql_error& e) {
    run.failure = classify(e);
  }
  // The plans of the statements that ended before an error arrive all the same.
  for (const auto& message : notices.take()) {
    const auto plan = parse_auto_explain(message);
    if (!plan)
      run.notices.push_back(message);
    else if (plan->query_text != call)  // the call itself: its plan is one Result node
      run.statements.push_back(*plan);
  }
  return run;
}

// The function's call over [lo, hi] with auto_explain on for it alone (the settings last until
// the rollback): the plans of the statements inside it, or its error. When statements repeat,
// a second run times the batch (explain_command.h).
void run_explained(pqxx::work& tx, NoticeCollector& notices, const ResolvedJob& job,
                   ExplainedBatch& batch) {
  tx.exec(R"(
    SET LOCAL client_min_messages = notice;
    SET LOCAL auto_explain.log_level = notice;
    SET LOCAL auto_explain.log_analyze = on;
    SET LOCAL auto_explain.log_buffers = on;
    SET LOCAL auto_explain.log_verbose = on;
    SET LOCAL auto_explain.log_triggers = on;
    SET LOCAL auto_explain.log_nested_statements = on;
    SET LOCAL auto_explain.log_format = text)");
  const std::string call = call_query(job);
  ExplainedRun first = explained_run(tx, notices, call, batch, 0);
  batch.statements = std::move(first.statements);
  batch.notices = std::move(first.notices);
  batch.took_ms = first.took_ms;
  if (first.failure) {
    batch.sqlstate = first.failure->sqlstate;
    batch.error = "(SQLSTATE " + first.failure->sqlstate + "): " + first.failure->message;
    return;
  }
  const StatementSummary summary = summarise_statements(batch.statements);
  if (batch.statements.size() - summary.groups.size() < k_repeats_to_retime) return;

  // Twice the slowest repeated statement's time, in whole milliseconds (the setting's unit):
  // the repeated statements stay unexplained, those around them are.
  double repeated_ms = 0;
  for (const auto& g : summary.groups)
    if (g.runs.size() > 1) repeated_ms = std::max(repeated_ms, g.max_ms);
  const int threshold = std::max(1, int(std::ceil(2 * repeated_ms)));
  const ExplainedRun second = explained_run(tx, notices, call, batch, threshold);
  if (second.failure) {
    // The same batch failed the second time (the function is not deterministic): the first
    // run's times stand.
    spdlog::debug("explain's timing run failed: {}", second.failure->message);
    return;
  }
  take_timing(batch.statements, second.statements);
  batch.fully_explained_ms = batch.took_ms;
  batch.took_ms = second.took_ms;
  batch.timed_over_ms = threshold;
}

std::vector<std::string> argument_names(pqxx::transaction_base& tx, const ResolvedJob& job) {
  std::vector<std::string> names;
  for (const auto& row :
       tx.exec_params(R"(
         SELECT pg_catalog.lower(a.n)
         FROM pg_catalog.pg_proc p, pg_catalog.unnest(p.proargnames) WITH ORDINALITY a(n, i)
         WHERE p.oid = pg_catalog.to_regprocedure($1)
         ORDER BY a.i)",
                      job.function_sql + "(" + job.key_type + ", " + job.key_type + ")"))
    names.push_back(row[0].as<std::string>());
  return names;
}

// What the catalog says of the foreign keys whose triggers the plans report.
std::map<std::string, ForeignKeyTrigger> foreign_keys_of(
    pqxx::transaction_base& tx, const std::vector<StatementPlan>& statements) {
  std::map<std::string, ForeignKeyTrigger> out;
  for (const auto& s : statements)
    for (const auto& t : s.triggers) {
      if (!t.foreign_key() || out.count(t.name)) continue;
      // One row per referencing column. Tables as EXPLAIN VERBOSE prints them: schema-qualified,
      // each part quoted when it needs it.
      const pqxx::result r = tx.exec_params(R"(
        SELECT pg_catalog.quote_ident(c.conname),
               pg_catalog.format('%I.%I', cn.nspname, cr.relname),
               pg_catalog.format('%I.%I', fn.nspname, fr.relname),
               pg_catalog.pg_get_constraintdef(c.oid), t.tgrelid = c.confrelid,
               pg_catalog.quote_ident(a.attname)
        FROM pg_catalog.pg_trigger t
        JOIN pg_catalog.pg_constraint c ON c.oid = t.tgconstraint
        JOIN pg_catalog.pg_class cr ON cr.oid = c.conrelid
        JOIN pg_catalog.pg_namespace cn ON cn.oid = cr.relnamespace
        JOIN pg_catalog.pg_class fr ON fr.oid = c.confrelid
        JOIN pg_catalog.pg_namespace fn ON fn.oid = fr.relnamespace,
             pg_catalog.unnest(c.conkey) WITH ORDINALITY k(attnum, n), pg_catalog.pg_attribute a
        WHERE t.tgname = $1 AND a.attrelid = c.conrelid AND a.attnum = k.attnum
        ORDER BY k.n)",
                                            t.name);
      if (r.empty()) continue;
      ForeignKeyTrigger fk{r[0][0].as<std::string>(),
                           r[0][1].as<std::string>(),
                           r[0][2].as<std::string>(),
                           r[0][3].as<std::string>(),
                           {},
                           r[0][4].as<bool>()};
      for (const auto& row : r) fk.columns.push_back(row[5].as<std::string>());
      out.emplace(t.name, fk);
    }
  return out;
}

std::string explain_text(pqxx::subtransaction& tx, const std::string& sql) {
  std::string text;
  for (const auto& row : tx.exec(fill_sql("EXPLAIN @statement@", {{"@statement@", sql}})))
    text += row[0].as<std::string>() + "\n";
  return text;
}

// The statement that failed, planned alone with the batch's bounds in place of the arguments.
std::optional<FailedStatement> plan_failed_statement(pqxx::work& tx, const ResolvedJob& job,
                                                     const std::string& error,
                                                     const std::vector<std::string>& arg_names,
                                                     const std::string& lo, const std::string& hi) {
  const pqxx::result fn = tx.exec_params(
      "SELECT p.proname, p.prosrc FROM pg_catalog.pg_proc p"
      " WHERE p.oid = pg_catalog.to_regprocedure($1)",
      job.function_sql + "(" + job.key_type + ", " + job.key_type + ")");
  if (fn.empty()) return std::nullopt;
  const auto text =
      failed_statement_text(error, fn[0][0].as<std::string>(), fn[0][1].as<std::string>());
  if (!text) return std::nullopt;
  FailedStatement failed;
  failed.query_text = with_bounds(*text, arg_names, lo, hi);
  try {
    pqxx::subtransaction sub(tx, "failed_statement");
    failed.plan = explain_text(sub, failed.query_text);
    sub.abort();
  } catch (const pqxx::sql_error& e) {
    const Failure f = classify(e);
    failed.why_not = "(SQLSTATE " + f.sqlstate + "): " + f.message.substr(0, f.message.find('\n'));
  }
  return failed;
}

// The estimated total cost of a plan's top node: "(cost=0.00..154.99 ..." -> 154.99.
double plan_cost(const std::string& plan) {
  const auto at = plan.find("..");
  return at == std::string::npos ? 0 : std::atof(plan.c_str() + at + 2);
}

// Whether an index on the proposal's relation already starts with its columns; its name, if so.
std::optional<std::string> existing_index(pqxx::work& tx, const IndexProposal& p) {
  try {
    pqxx::subtransaction sub(tx, "existing_index");
    start_savepoint(sub);
    // $1 the relation, $2 the proposal's columns as a list, $3 how many.
    const pqxx::result r = sub.exec_params(
        R"(
      SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index i
      WHERE i.indrelid = pg_catalog.to_regclass($1)
        AND (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n)
             FROM pg_catalog.unnest((i.indkey::int2[])[0:$3 - 1]) WITH ORDINALITY k(attnum, n)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
            = $2)",
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
    const SqlPart hypopg{"@hypopg@", quote_ident(sub.exec1(R"(
      SELECT n.nspname FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname = 'hypopg')")[0]
                                                     .as<std::string>())};
    const std::string before = explain_text(sub, p.statement);
    const std::string name =
        sub.exec_params1(
               fill_sql("SELECT indexname FROM @hypopg@.hypopg_create_index($1)", {hypopg}),
               p.sql)[0]
            .as<std::string>();
    const std::string after = explain_text(sub, p.statement);
    sub.exec(fill_sql("SELECT @hypopg@.hypopg_reset()", {hypopg}));
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
  const bool hypopg = tx.exec1(R"(
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'hypopg'))")[0]
                          .as<bool>();
  for (auto& p : proposals) {
    p.existing = existing_index(tx, p);
    if (hypopg && !p.statement.empty()) p.hypopg = check_with_hypopg(tx, p);
  }
}

BatchTime batch_time(const ExplainedBatch& b) {
  return {b.took_ms, b.fully_explained_ms.value_or(0)};
}

// How a finding names the statement it is about: its group's number in the summary, or in the
// full listing the number of its slowest run (the plan the finding was read from).
std::string statement_label(const ExplainReport& report, std::size_t group, PlanDetail detail) {
  const StatementGroup& g = report.summary.groups[group];
  return "statement " + std::to_string(detail == PlanDetail::full ? g.slowest + 1 : group + 1);
}

void print_notices(std::ostream& out, const ExplainedBatch& b, PlanDetail detail) {
  if (detail == PlanDetail::full) {
    for (const auto& notice : b.notices)
      out << "  notice: " << terminal_text(notice, Lines::indented);
    return;
  }
  // RAISE NOTICE in a loop: each message once, with its count.
  std::vector<std::pair<std::string, std::size_t>> counted;
  for (const auto& notice : b.notices) {
    auto at = std::find_if(counted.begin(), counted.end(),
                           [&](const auto& c) { return c.first == notice; });
    if (at == counted.end())
      counted.emplace_back(notice, 1);
    else
      ++at->second;
  }
  for (const auto& [notice, times] : counted)
    out << "  notice" << (times > 1 ? " (" + std::to_string(times) + " times)" : "") << ": "
        << terminal_text(notice, Lines::indented);
}

void print_plan(std::ostream& out, const StatementPlan& s, const char* which) {
  out << indent(s.query_text, "    ") << "  " << which << " (Output lists left out):\n"
      << indent(plan_without_output(s.plan_text), "    ");
}

void print_statements(std::ostream& out, const ExplainReport& report, PlanDetail detail) {
  const ExplainedBatch& b = report.batch;
  if (detail == PlanDetail::full) {
    for (std::size_t i = 0; i < b.statements.size(); ++i) {
      const StatementPlan& s = b.statements[i];
      out << "\nstatement " << i + 1 << " of " << b.statements.size() << ", "
          << fixed(s.duration_ms, 1) << " ms:\n";
      print_plan(out, s, "plan");
    }
    return;
  }
  for (std::size_t k = 0; k < report.summary.groups.size(); ++k) {
    const StatementGroup& g = report.summary.groups[k];
    const StatementPlan& slowest = b.statements[g.slowest];
    if (g.runs.size() == 1) {
      out << "\nstatement " << k + 1 << ", " << fixed(g.total_ms, 1) << " ms:\n";
      print_plan(out, slowest, "plan");
      continue;
    }
    out << "\nstatement " << k + 1 << ", run " << g.runs.size() << " times"
        << (g.kind == StatementKind::foreign_key ? " by a foreign key's trigger" : "") << ", "
        << fixed(g.total_ms, 1) << " ms in all, at most " << fixed(g.max_ms, 1) << " ms:\n";
    print_plan(out, slowest, "plan of the slowest run");
  }
}

void print_triggers(std::ostream& out, const ExplainReport& report, PlanDetail detail) {
  const ExplainedBatch& b = report.batch;
  if (report.summary.triggers.empty()) return;
  out << "\ntriggers (their time is part of the statement that fired them):\n";
  for (const auto& total : report.summary.triggers) {
    const TriggerTime& t = total.trigger;
    const auto fk = b.foreign_keys.find(t.name);
    std::string line;
    if (fk != b.foreign_keys.end()) {
      const ForeignKeyTrigger& f = fk->second;
      line = "foreign key " + f.constraint + " of " + f.table + " (" +
             (f.on_referenced ? "rows of " + f.referenced + " deleted or updated"
                              : "references " + f.referenced) +
             "): " + fixed(t.calls, 0) + " checks";
    } else if (t.foreign_key()) {
      line = "foreign key " + t.constraint + ": " + fixed(t.calls, 0) + " checks";
    } else {
      line = "trigger " + t.name + (t.relation.empty() ? "" : " on " + t.relation) + ": " +
             fixed(t.calls, 0) + " calls";
    }
    line += ", " + fixed(t.time_ms, 1) + " ms";
    if (b.took_ms > 0)
      line += ", " + percent_of(t.time_ms, batch_time(b).of(total)) + " of the batch";
    out << "  " << terminal_text(line) << " (" << statement_label(report, total.group, detail)
        << ")\n";
  }
}

void print_findings(std::ostream& out, const ExplainReport& report, PlanDetail detail) {
  out << "\nfindings:\n";
  if (report.findings.empty())
    out << "  none: no statement reads much more than its batch needs, no sub-plan runs per "
           "row, no trigger or repeated statement takes half the batch\n";
  for (std::size_t k = 0; k < report.findings.size(); ++k) {
    const auto& [f, group] = report.findings[k];
    const std::string number = "  " + std::to_string(k + 1) + ". ";
    const std::string rest(number.size(), ' ');
    out << wrapped(statement_label(report, group, detail) + ": " + f.text, number, rest);
    if (!f.remedy.empty()) out << wrapped("remedy: " + f.remedy, rest, rest + "  ");
    if (!f.index_sql().empty())
      out << rest << "proposed: " << terminal_text(f.index_sql()) << ";\n";
  }
  if (report.proposals.empty()) return;
  out << "\nproposed indexes:\n";
  for (const auto& p : report.proposals) {
    out << "  " << terminal_text(p.sql) << ";\n";
    if (p.existing)
      out << "    an index with these leading columns exists (" << terminal_text(*p.existing)
          << ") but was not used: are the table's statistics stale? ANALYZE "
          << terminal_text(p.relation) << "\n";
    if (p.hypopg)
      out << "    hypopg: " << terminal_text(*p.hypopg) << "\n";
    else if (p.statement.empty())
      out << "    not checked with hypopg: the statement takes a value from each row\n";
    else
      out << "    hypopg is not installed, so the planner's choice was not checked (Debian: "
             "postgresql-15-hypopg)\n";
  }
}

void print_timing(std::ostream& out, const ExplainedBatch& b) {
  out << "  " << terminal_text(b.function_sql) << " ran in " << fixed(b.took_ms, 1) << " ms\n";
  if (b.fully_explained_ms)
    out << wrapped("explaining each of its " + std::to_string(b.statements.size()) +
                       " statements made it take " + fixed(*b.fully_explained_ms, 1) +
                       " ms: the times below come from a second run that explained only the "
                       "statements of " +
                       std::to_string(b.timed_over_ms) +
                       " ms or more; the statements run many times keep the first run's)",
                   "  (", "   ");
}

// Why the function failed, when a unique key refused rows that a run wrote already, and where
// to explain instead.
void print_failure(std::ostream& out, const ExplainReport& report) {
  const ExplainedBatch& b = report.batch;
  if (b.failed_statement) {
    const FailedStatement& f = *b.failed_statement;
    out << "\nthe statement that failed, planned alone without running it (EXPLAIN, estimates):\n"
        << indent(f.query_text, "    ");
    if (f.plan.empty())
      out << "  it could not be planned alone " << terminal_text(f.why_not, Lines::indented)
          << "\n";
    else
      out << "  plan:\n" << indent(f.plan, "    ");
  }
  if (b.sqlstate != "23505") return;
  const std::string range = "keys [" + b.lo + ", " + b.hi + "]";
  out << "\n";
  if (b.processed_by)
    out << wrapped(range + " were processed already, by " +
                       (b.processed_by->first == b.processed_by->second
                            ? "batch " + std::to_string(b.processed_by->first)
                            : "batches " + std::to_string(b.processed_by->first) + " to " +
                                  std::to_string(b.processed_by->second)) +
                       " of the job: the rows the function writes are in its target already, and a "
                       "unique key refuses them a second time. A run never processes a range "
                       "twice; explain runs whichever range it is given.",
                   "why: ", "  ");
  else
    out << wrapped(
        "a unique key refused a row that this batch writes: its target holds it "
        "already (written by an earlier run of the job, before a reset, or by another "
        "job).",
        "why: ", "  ");
  std::string how = "explain a range that is not processed yet";
  if (b.job_done || !b.cursor_key)
    how += b.job_done ? ": every key of this job is processed, so explain it where it has "
                        "not run yet: before the run, or on a copy of the database from "
                        "before it."
                      : ", or explain the job before its run.";
  else
    how += ": pgxform explain " + b.job + " (the next batch, after key " + *b.cursor_key +
           "), or --at a key from " + *b.cursor_key + " on; or explain the job before its run.";
  out << wrapped(how, "to explain anyway: ", "  ");
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

std::optional<std::string> failed_statement_text(const std::string& error,
                                                 const std::string& function_name,
                                                 const std::string& body) {
  const auto context = error.find("CONTEXT:  ");
  if (context == std::string::npos) return std::nullopt;
  const std::string first = error.substr(context + 10);
  auto unquoted = [](std::string name) {
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"')
      name = name.substr(1, name.size() - 2);
    return name;
  };
  // PL/pgSQL: SQL statement "INSERT ..."\nPL/pgSQL function xf.f(bigint,bigint) line 5 at ...
  const std::string quoted = "SQL statement \"";
  if (first.rfind(quoted, 0) == 0) {
    const std::string by = "\"\nPL/pgSQL function ";
    const auto end = first.find(by);
    if (end == std::string::npos) return std::nullopt;
    std::string name = first.substr(end + by.size());
    name = name.substr(0, name.find('('));
    if (const auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
    if (unquoted(name) != function_name) return std::nullopt;
    return first.substr(quoted.size(), end - quoted.size());
  }
  // SQL: SQL function "f" statement 2
  const std::string sql_function = "SQL function \"";
  if (first.rfind(sql_function, 0) == 0) {
    const auto close = first.find("\" statement ", sql_function.size());
    if (close == std::string::npos ||
        first.substr(sql_function.size(), close - sql_function.size()) != function_name)
      return std::nullopt;
    const long n = std::atol(first.c_str() + close + 12);
    const auto statements = split_statements(body);
    if (n < 1 || std::size_t(n) > statements.size()) return std::nullopt;
    return statements[std::size_t(n) - 1];
  }
  return std::nullopt;
}

void find_proposals(ExplainReport& report, const std::vector<std::string>& arg_names,
                    const std::string& lo, const std::string& hi) {
  const auto& statements = report.batch.statements;
  const auto& groups = report.summary.groups;
  const double rows = double(report.batch.rows);
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (const auto& f : find_problems(statements[groups[g].slowest], rows))
      report.findings.emplace_back(f, g);
  for (auto& found : find_costly_repeats(report.summary, statements, report.batch.foreign_keys,
                                         batch_time(report.batch), rows))
    report.findings.push_back(std::move(found));

  std::set<std::string> proposed;
  for (const auto& [f, g] : report.findings) {
    const std::string sql = f.index_sql();
    if (sql.empty() || !proposed.insert(sql).second) continue;
    std::string columns;
    for (const auto& c : f.columns) columns += (columns.empty() ? "" : ", ") + c;
    // A foreign key's check takes its value from each row: it cannot be planned alone.
    const std::string statement =
        f.kind == Finding::Kind::foreign_key
            ? ""
            : with_bounds(statements[groups[g].slowest].query_text, arg_names, lo, hi);
    report.proposals.push_back({sql, f.relation, columns, statement, std::nullopt, std::nullopt});
  }
}

void print_explained(std::ostream& out, const ExplainReport& report, PlanDetail detail) {
  const ExplainedBatch& b = report.batch;
  out << "explain " << b.job << ": " << terminal_text(b.described) << "\n  keys ["
      << terminal_text(b.lo) << ", " << terminal_text(b.hi) << "], " << b.rows << " rows of "
      << terminal_text(b.table_sql) << ", in a transaction that is rolled back\n";
  if (b.error) {
    out << "the function failed " << terminal_text(*b.error, Lines::indented)
        << (b.error->back() == '\n' ? "" : "\n");
    print_notices(out, b, detail);
    if (!b.statements.empty()) {
      out << "\nthe statements that ran before the error:\n";
      print_statements(out, report, detail);
    }
    print_failure(out, report);
    out << "\nnothing was written: the transaction was rolled back.\n";
    return;
  }
  print_timing(out, b);
  print_notices(out, b, detail);
  print_statements(out, report, detail);
  if (b.statements.empty())
    out << "\nno statement inside the function was explained (is it a C function?)\n";
  print_triggers(out, report, detail);
  print_findings(out, report, detail);
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
  b.cursor_key = start.cursor_key;
  b.job_done = start.job_done;
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
    out << "explain " << job.name << ": no keys of " << terminal_text(job.table_sql) << " in "
        << terminal_text(start.described) << "; nothing to explain (try --at KEY)\n";
    return k_exit_ok;
  }
  b.rows = tx.exec_params1(range_rows_query(job), b.lo, b.hi)[0].as<long long>();
  run_explained(tx, notices, job, b);
  b.foreign_keys = foreign_keys_of(tx, b.statements);
  report.summary = summarise_statements(b.statements);
  const std::string lo = tx.quote(b.lo) + "::" + job.key_type;
  const std::string hi = tx.quote(b.hi) + "::" + job.key_type;
  if (b.error) {
    b.failed_statement = plan_failed_statement(tx, job, *b.error, argument_names(tx, job), lo, hi);
    b.processed_by = batches_over(tx, schema, job.name, job.key_type, b.lo, b.hi);
  } else {
    find_proposals(report, argument_names(tx, job), lo, hi);
    check_proposals(tx, report.proposals);
  }
  tx.abort();
  print_explained(out, report, options.detail);
  return b.error ? k_exit_job_failed : k_exit_ok;
}

}  // namespace pgxform
