// fixtures: the small migrations the database tests run — a leading table, a target with no
// unique constraint (so that a batch applied twice shows as a duplicate), and its transform.
#pragma once

#include <functional>
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

// Source rows that are missing in the target, and target rows that are there twice.
long long missing_items(TestDatabase& db);
long long duplicate_items(TestDatabase& db);

// The sessions of pgxform runners in this database that are running a batch statement (see
// batch_sql.h), as a FROM clause over pg_stat_activity.
constexpr const char* k_batches_in_flight =
    "pg_stat_activity WHERE datname = current_database() AND state = 'active'"
    " AND application_name LIKE 'pgxform %' AND query LIKE 'EXPLAIN (ANALYZE%'";

}  // namespace pgxform_test
