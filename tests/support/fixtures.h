// fixtures: the small migrations the database tests run — a leading table, a target with no
// unique constraint (so that a batch applied twice shows as a duplicate), and its transform.
#pragma once

#include <functional>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/test_db.h"
#include "support/test_json.h"

namespace pgxform_test {

// legacy.items(id bigint PRIMARY KEY, v int) with `rows` rows, keys 3, 6, 9, ... (gaps);
// target.items(id bigint, v int) with no constraint; xf.items(bigint, bigint) copies a range,
// sleeping `sleep_ms` per batch, and returns the row count.
void create_items(TestDatabase& db, int rows, int sleep_ms = 0);

// Replaces xf.items with a plain INSERT ... SELECT of the range: no sleep, no failure (the
// fix a test applies after planting a slow or failing transform).
void plain_items_function(TestDatabase& db);

// A jobs file with one list holding one job over legacy.items, of fixed batch_size (no time
// sizing) unless `settings` (more lines of the job, e.g. "        target_batch_ms: 50\n")
// says otherwise.
std::string items_jobs_yaml(int batch_size, int parallel = 1, const std::string& settings = "");
// items_jobs_yaml(100) and, after the items job, the one-shot step count-step, which adds a row
// to target.step_runs (created here) each time it runs.
std::string items_and_counting_step_yaml(TestDatabase& db);

// A jobs file with one list `main` of one job `items` whose fields (after its name, indented
// by 8) are `fields`.
std::string items_job_with(const std::string& fields);
// Runs `pgxform run` on the jobs file `yaml` (written into `dir`) and checks the three promises
// of bad input: exit 2, no state schema, no row of target.items. Returns what it said.
CliResult expect_run_refused(TestDatabase& db, const TempDir& dir, const std::string& yaml);

// legacy.items (keys 3, 6, ...; create_items) and legacy.others (keys 1, 2, ...), `rows` rows
// each, both copied to their targets as a transform would, the targets keyed by id. The
// transforms xf.items and xf.others skip the rows already there: idempotent.
void create_verified_tables(TestDatabase& db, int rows);
// The jobs items and others over those tables, in one list, batches of fixed size, each with a
// verify query that returns the source rows missing in the target, bounded on both sides;
// `items_more` and `others_more` are SQL appended to their queries.
std::string verify_jobs_yaml(int batch_size, const std::string& items_more = "",
                             const std::string& others_more = "");

// Whether a job with on_error: skip narrows a failing batch down to the keys that fail.
enum class Bisect { off, on };
// A jobs file with the job items (batch_size 100, not idempotent) of on_error: skip, bisecting
// or not, and a verify: query that finds the keys missing in the target.
std::string items_skip_yaml(Bisect bisect);

// Replaces xf.items with a set-based copy of the range that divides by zero (SQLSTATE 22012)
// on key `poisoned_key`: a permanent error of the batch that holds it, until cured
// (plain_items_function).
void poisoned_items_function(TestDatabase& db, long long poisoned_key);

// Takes the "pgxform" state schema back to version 9, as a pgxform before versions 10 to 12
// left it: their columns, tables and function dropped, their rows of schema_version deleted.
void state_back_to_version_9(TestDatabase& db);

// Polls `condition` for up to 30 s, then REQUIREs it; a condition that throws (the state
// schema does not exist yet) is not met yet. `explain`, when given, says at a timeout what was
// seen instead (asked then, not before).
void wait_until(const std::function<bool()>& condition,
                const std::function<std::string()>& explain = {});

// Replaces xf.items with the copy of its range, then `then` (PL/pgSQL; `n` holds the rows
// copied, first_key and last_key the range), returning n.
void items_function_then(TestDatabase& db, const std::string& then);

// Replaces xf.items with a transform that costs `ms_per_row` per row of its range (pg_sleep),
// and `slow_ms` more for the batch that holds key `slow_key` (none: 0).
void per_row_items_function(TestDatabase& db, double ms_per_row, long long slow_key = 0,
                            int slow_ms = 0);

// `args`, then -f `path` --dsn for `db`: a command line for run_cli or Child.
std::vector<std::string> with_db(TestDatabase& db, const std::string& path,
                                 std::vector<std::string> args);
// `value` as a quoted libpq conninfo value: '...' with \ and ' escaped.
std::string conninfo_value(const std::string& value);
// `count` application sessions of `db` busy with a statement (SELECT pg_sleep(60)) from
// construction, once all are active, until end() cancels them (the destructor does too).
class BusySessions {
 public:
  BusySessions(TestDatabase& db, int count);
  ~BusySessions() { end(); }
  void end();

 private:
  TestDatabase& m_db;
  std::vector<std::thread> m_threads;
};

// `yaml` with every `changes: trigger` (and `mode: trigger`) made `changes: <mode>`: a jobs file
// of the fixtures captured by the other method (`logical`).
std::string with_capture(std::string yaml, const std::string& mode);

// A login role of the test's own (`db`'s name and `suffix`), with `options` (CREATE ROLE's),
// dropped with everything it owns at the end: the least-privilege role of docs/security.md,
// once granted what that says.
class TestRole {
 public:
  TestRole(TestDatabase& db, const std::string& suffix, const std::string& options = "");
  ~TestRole();
  TestRole(const TestRole&) = delete;
  TestRole& operator=(const TestRole&) = delete;
  const std::string& name() const { return m_name; }
  // `db` as this role, with its password.
  std::string dsn() const;

 private:
  TestDatabase& m_db;
  std::string m_name;
};

// What docs/security.md grants the migrating role on create_items' schemas: read the legacy
// table, write the target, call the transform, own the state schema (created here).
void grant_items(TestDatabase& db, const TestRole& role);
// run_cli of that command line: `args` against `db` with the jobs file `path`.
CliResult run_with_db(TestDatabase& db, const std::string& path, std::vector<std::string> args);

// The server holding `db`, driven with pg_ctl as the owner of its data directory, waiting until
// each step is done. Only in tests tagged [restart]: every other test uses that server too.
class TestServer {
 public:
  explicit TestServer(TestDatabase& db);
  // pg_ctl restart -m `mode` (fast, immediate).
  void restart(const std::string& mode);
  // pg_ctl stop -m fast, then start with the options it ran with (postmaster.opts).
  void stop();
  void start();

 private:
  void pg_ctl(const std::string& arguments);
  std::string m_data, m_bin, m_options;
};

// Source rows that are missing in the target, and target rows that are there twice.
long long missing_items(TestDatabase& db);
long long duplicate_items(TestDatabase& db);

// The sessions of pgxform runners in this database that are running a batch statement (see
// batch_sql.h), as a FROM clause over pg_stat_activity.
constexpr const char* k_batches_in_flight =
    "pg_stat_activity WHERE datname = current_database() AND state = 'active'"
    " AND application_name LIKE 'pgxform %' AND query LIKE 'EXPLAIN (ANALYZE%'";

// Two independent lists over two tables, non-idempotent transforms (the runs that SIGKILL,
// SIGINT and a second runner interrupt): list `main` holds the job items over legacy.items
// (create_items, `rows` rows, `sleep_ms` per batch), sliced in `parallel` slices when
// parallel > 1, and after it the step after-items; list `other` holds the job others over
// legacy.others (rows / 2 rows, keys 7, 14, ...). The batches are of fixed sizes unless
// `items_sizing` sizes those of items otherwise.
void create_two_lists(TestDatabase& db, int rows, int sleep_ms);
std::string two_lists_yaml(int parallel,
                           const std::string& items_sizing = "batch_size: 50, target_batch_ms: 0");
// `run -q --threads 3` of the two lists: a command line for Child.
std::vector<std::string> two_lists_run_args(TestDatabase& db, const std::string& path);
// Every row of both lists' tables in its target exactly once, the step run once, and the
// state agreeing with the target.
void check_two_lists_done_once(TestDatabase& db, int rows);

// Whether a runner of `db` is running a batch statement now (k_batches_in_flight).
bool batch_in_flight(TestDatabase& db);

// The batches committed in `db` by every job (0 before the state schema exists).
long long batches_committed(TestDatabase& db);

// Nothing was written since `tables_before` tables (relkind r) were counted: no state schema,
// no row of target.items, no new table anywhere.
void check_nothing_written(TestDatabase& db, long long tables_before);

// The batch log and the job's counters agree: every committed batch counted once.
void check_log_matches_counters(TestDatabase& db);

// The object of `job` in `status --json` of `db` with the jobs file `path`.
Json job_status_json(TestDatabase& db, const std::string& path, const std::string& job);

// For Child's `in_child`: the child's progress lines come every `ms` milliseconds
// (PGXFORM_PROGRESS_INTERVAL_MS).
std::function<void()> progress_every(int ms);

// The number of lines of `text` that hold every one of `parts`.
long long lines_with(const std::string& text, const std::vector<std::string>& parts);

}  // namespace pgxform_test

namespace pgxform_test {

// legacy.people(id bigint PRIMARY KEY, name text, score int), ids 1..rows, captured through
// the slot (changes: logical) into target.people (no key: a row applied twice shows);
// `sleep_ms` per main batch; `top_level`: lines of jobs.yaml before its lists.
// xf.people_refresh appends each key it refreshed to target.refreshed.
struct SlotPeople {
  TestDatabase db;
  TempDir dir;
  std::string path;

  explicit SlotPeople(int rows, int batch_size = 100, int sleep_ms = 0,
                      const std::string& top_level = "");

  CliResult pgxform(std::vector<std::string> args);
  std::vector<std::string> command(std::vector<std::string> args);
  // Rows that differ between target.people and a from-scratch transform, both ways (EXCEPT ALL).
  long long differences();
  // Rows in change_log.
  long long logged();
  // From now on every change_log row is counted per key in target.changes (id).
  void count_changes();
  // Keys refreshed more often than the log recorded a change of them.
  long long refreshed_too_often();
  // The replication slots of this database; the publications.
  long long slots();
  long long publications();
};

// A shop migrated by two capturing jobs in two lists that run side by side: `orders`
// (legacy.orders -> target.orders) and `lines` (legacy.order_lines -> target.lines), whose
// transform reads the status of each line's order, and so declares legacy.orders in its
// changes.also (by order_id). Orders 1..`orders`, each with `lines_per_order` lines numbered
// from 1; the sequences legacy.order_seq and legacy.line_seq give new keys above them. The
// targets have no key, so that a row applied twice shows; every refresh appends its keys to
// target.refreshed (job, id). `lines_sleep_ms`: per batch of the lines' main pass.
struct Shop {
  TestDatabase db;
  TempDir dir;
  std::string path;

  Shop(int orders, int lines_per_order, int batch_size = 50, int lines_sleep_ms = 0);
  static std::string yaml(int batch_size, int lines_parallel = 1);

  CliResult pgxform(std::vector<std::string> args);
  std::vector<std::string> command(std::vector<std::string> args);

  // Rows that differ between each target and a from-scratch transform of the current source,
  // both ways, duplicates counted (EXCEPT ALL).
  long long differences();
  long long pending();
  // From now on every change-log row of a job's own keys (via 0) is counted per key in
  // target.changes (job, id); the state schema must exist.
  void count_changes();
  // Keys refreshed more often than their job's log recorded a change of them.
  long long refreshed_too_often();
  // One random change of the source, as an application would make it: a status, a quantity, a
  // line moved to another order, new orders and lines above every key, lines into gaps, a
  // deleted line or order (its lines go with it), a deleted order's key used again.
  void change(std::mt19937& rng);
  void change(pqxx::connection& conn, std::mt19937& rng);
  // The shop changed by a writer while `run --threads 2` and `catch-up --follow` work beside it
  // (the capture installed first, every change counted); once the writer stopped, the follow
  // stopped with SIGINT and a last catch-up: no change left, the targets as a from-scratch
  // transform, no key refreshed more often than it changed, and some orders' changes applied
  // through the lines' job (changes.also).
  void check_exact_beside_run_and_follow();
};

}  // namespace pgxform_test
