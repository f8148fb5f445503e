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

// Replaces xf.items with a set-based copy of the range that divides by zero (SQLSTATE 22012)
// on key `poisoned_key`: a permanent error of the batch that holds it, until cured
// (plain_items_function).
void poisoned_items_function(TestDatabase& db, long long poisoned_key);

// Polls `condition` for up to 30 s, then REQUIREs it; a condition that throws (the state
// schema does not exist yet) is not met yet.
void wait_until(const std::function<bool()>& condition);

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

// run_cli of that command line: `args` against `db` with the jobs file `path`.
CliResult run_with_db(TestDatabase& db, const std::string& path, std::vector<std::string> args);

// Source rows that are missing in the target, and target rows that are there twice.
long long missing_items(TestDatabase& db);
long long duplicate_items(TestDatabase& db);

// The sessions of pgxform runners in this database that are running a batch statement (see
// batch_sql.h), as a FROM clause over pg_stat_activity.
constexpr const char* k_batches_in_flight =
    "pg_stat_activity WHERE datname = current_database() AND state = 'active'"
    " AND application_name LIKE 'pgxform %' AND query LIKE 'EXPLAIN (ANALYZE%'";

}  // namespace pgxform_test

namespace pgxform_test {

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
};

}  // namespace pgxform_test
