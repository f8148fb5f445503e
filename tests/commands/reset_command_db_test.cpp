// reset against a real PostgreSQL: a job's cursor moved back to its start or after a key, each
// row counted once by the rerun, even after a reset into the middle of a batch; a step to run
// again; and reset, retry-failed and verify --repair leave a job that a runner holds alone.
#include <catch2/catch.hpp>

#include "state/state_locks.h"
#include "state/state_schema.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("reset moves a job's cursor back: to its start, or after a key") {
  TestDatabase db;
  create_items(db, 500);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  db.exec("TRUNCATE target.items");
  auto to = run_cli(with_db(db, path, {"reset", "items", "--to", "900"}));
  CHECK(to.exit_code == 0);
  CHECK(db.scalar("SELECT status || ' ' || last_key FROM pgxform.job_state") == "pending 900");
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.items") == 200);
  CHECK(db.count("SELECT min(id) FROM target.items") == 903);

  db.exec("TRUNCATE target.items");
  CHECK(run_cli(with_db(db, path, {"reset", "items"})).exit_code == 0);
  CHECK(db.scalar("SELECT status || ' ' || coalesce(last_key, '-') || ' ' || rows_done FROM"
                  " pgxform.job_state") == "pending - 0");
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 0);
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);

  CHECK(run_cli(with_db(db, path, {"reset", "items", "--to", "not-a-number"})).exit_code == 2);
  CHECK(run_cli(with_db(db, path, {"reset", "nope"})).exit_code == 2);
}

TEST_CASE("reset of a one-shot step says the next run runs it again, not a first key") {
  TestDatabase db;
  create_items(db, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_and_counting_step_yaml(db));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  const auto step = run_cli(with_db(db, path, {"reset", "count-step"}));
  INFO(step.err);
  CHECK(step.exit_code == 0);
  CHECK(step.out == "count-step: reset; the next run runs the step again\n");
  // A batched job still starts again from its first key.
  const auto job = run_cli(with_db(db, path, {"reset", "items"}));
  CHECK(job.out == "items: reset; the next run starts it from its first key\n");
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.step_runs") == 2);
}

TEST_CASE(
    "retry-failed, reset and verify --repair leave a job that a runner holds alone: exit 2, "
    "nothing written") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  std::string yaml = items_skip_yaml(Bisect::off);
  yaml.replace(yaml.find("idempotent: false"), 17, "idempotent: true");
  const auto path = dir.write("jobs.yaml", yaml);
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  plain_items_function(db);
  const auto state = [&] {
    return db.scalar("SELECT count(*) FROM target.items") + " " +
           db.scalar(
               "SELECT string_agg(first_key || '-' || last_key || ' ' || attempts || ' ' ||"
               " (resolved_at IS NULL), ',') FROM pgxform.failed_batches") +
           " " +
           db.scalar(
               "SELECT status || ' ' || last_key || ' ' || rows_done FROM"
               " pgxform.job_state") +
           " " + db.scalar("SELECT count(*) FROM pgxform.batch_log");
  };
  const std::string before = state();

  // The claim a runner holds on the job (state schema pgxform, task items).
  pqxx::connection runner(db.dsn());
  pqxx::nontransaction claim(runner);
  pgxform::session_lock(claim, pgxform::task_lock(pgxform::StateSchema("pgxform"), {"items", 0}));
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"retry-failed"}, {"reset", "items"}, {"verify", "--repair"}}) {
    const auto r = run_cli(with_db(db, path, command));
    INFO(command.front() << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("job 'items' is held by a running pgxform"));
    CHECK(state() == before);
  }

  runner.disconnect();
  const auto retried = run_cli(with_db(db, path, {"retry-failed"}));
  INFO(retried.err);
  CHECK(retried.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE("after reset --to a key inside a batch and a rerun each row is counted once") {
  TestDatabase db;
  create_items(db, 500);  // keys 3, 6, ..., 1500: batches of 100 end at 300, 600, 900, ...
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  REQUIRE(job_status_json(db, path, "items")["rows_done"].get<long long>() == 500);

  // 750 cuts the batch [603, 900]: its rows up to 750 stay counted, the rest are run again.
  db.exec("DELETE FROM target.items WHERE id > 750");
  REQUIRE(run_cli(with_db(db, path, {"reset", "items", "--to", "750"})).exit_code == 0);
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state") == 250);
  check_log_matches_counters(db);

  const auto again = run_cli(with_db(db, path, {"run"}));
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(job_status_json(db, path, "items")["rows_done"].get<long long>() == 500);
  check_log_matches_counters(db);
  // The run's last line counts this run's rows, and the job's rows in all as status does.
  CHECK_THAT(again.err, Catch::Contains("items: done, 250 rows in 3 batches this run"));
  CHECK_THAT(again.err, Catch::Contains("; 500 rows in all"));
}
