// Permanent failures set aside and retried, cursors reset, results verified and repaired.
#include <catch2/catch.hpp>

#include "state/state_locks.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

namespace {

void cure(TestDatabase& db) {
  plain_items_function(db);
}

std::string skip_yaml(bool bisect) {
  return "version: 1\n"
         "defaults: {on_error: skip, bisect: " +
         std::string(bisect ? "true" : "false") +
         "}\n"
         "lists:\n"
         "  - name: main\n"
         "    jobs:\n"
         "      - {name: items, table: legacy.items, key: id, function: xf.items, batch_size: 100, "
         "target_batch_ms: 0,"
         " idempotent: false,\n"
         "         verify: 'SELECT l.id FROM legacy.items l WHERE l.id BETWEEN $1 AND $2 AND NOT"
         " EXISTS (SELECT 1 FROM target.items t WHERE t.id = l.id)'}\n";
}

}  // namespace

TEST_CASE(
    "with on_error: skip and bisect, exactly the poisoned key is set aside and the rest of "
    "its batch is processed") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", skip_yaml(true));
  auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(db.scalar("SELECT first_key || '-' || last_key || ' ' || sqlstate FROM"
                  " pgxform.failed_batches") == "1500-1500 22012");
  CHECK(db.count("SELECT count(*) FROM target.items") == 999);
  CHECK(db.count("SELECT count(*) FROM target.items WHERE id = 1500") == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state") == "done");
  CHECK_THAT(r.err, Catch::Contains("1 key range(s) of 1 job(s) are set aside"));
  CHECK(job_in(parse_json(run_cli(with_db(db, path, {"status", "--json"})).out),
               "items")["set_aside"] == 1);

  // retry-failed while still broken: the range stays, with one more attempt.
  auto again = run_cli(with_db(db, path, {"retry-failed"}));
  CHECK(again.exit_code == 1);
  CHECK(db.scalar("SELECT attempts || ' ' || (resolved_at IS NULL) FROM pgxform.failed_batches") ==
        "2 true");
  // After the fix, retry-failed completes and every row is there exactly once.
  cure(db);
  auto fixed = run_cli(with_db(db, path, {"retry-failed", "items"}));
  CHECK(fixed.exit_code == 0);
  CHECK_THAT(fixed.out, Catch::Contains("[1500, 1500] resolved"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.failed_batches WHERE resolved_at IS NULL") == 0);
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state") == 1000);
  // Every batch names the function's version and carries its counters: the bisected ranges,
  // and the range retry-failed redid, which it processed as a run processes a range.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE fn_version IS NULL") == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE shared_blks_hit IS NULL") == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE first_key = '1500'"
                 " AND last_key = '1500' AND rows = 1") == 1);
  CHECK(run_cli(with_db(db, path, {"retry-failed"})).exit_code == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "retry-failed logs a sliced job's range with its slice, and counts it in the slice and the "
    "job") {
  TestDatabase db;
  create_items(db, 1000);
  // Key 2400, in the upper slice of two, is poison until cured.
  poisoned_items_function(db, 2400);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", "version: 1\ndefaults: {on_error: skip, bisect: true}\n" +
                                 items_jobs_yaml(100, 2).substr(11));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  const std::string slice = db.scalar("SELECT slice FROM pgxform.failed_batches");
  REQUIRE(slice == db.scalar("SELECT slice FROM pgxform.job_slice WHERE hi_key IS NULL"));
  const long long slice_rows =
      db.count("SELECT rows_done FROM pgxform.job_slice WHERE slice = " + slice);
  cure(db);
  const auto fixed = run_cli(with_db(db, path, {"retry-failed"}));
  INFO(fixed.out);
  CHECK(fixed.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT slice || ' ' || rows || ' ' || (shared_blks_hit IS NOT NULL) FROM"
                  " pgxform.batch_log WHERE first_key = '2400'") == slice + " 1 true");
  CHECK(db.count("SELECT rows_done FROM pgxform.job_slice WHERE slice = " + slice) ==
        slice_rows + 1);
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state") == 1000);
  // The cursors stayed where the run left them: at the end of each slice.
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE status = 'done'") == 2);
}

TEST_CASE("with on_error: skip and no bisect, the whole failing batch is set aside") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  auto r = run_cli(with_db(db, dir.write("jobs.yaml", skip_yaml(false)), {"run"}));
  CHECK(r.exit_code == 0);
  CHECK(db.scalar("SELECT first_key || '-' || last_key FROM pgxform.failed_batches") ==
        "1203-1500");
  CHECK(db.count("SELECT count(*) FROM target.items") == 900);
}

TEST_CASE("with on_error: stop, a poisoned row fails the job with its key range and exits 1") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  auto r = run_cli(with_db(db, dir.write("jobs.yaml", items_jobs_yaml(100)), {"run"}));
  CHECK(r.exit_code == 1);
  CHECK(db.scalar("SELECT status || ' ' || error_first_key || ' ' || error_last_key FROM"
                  " pgxform.job_state") == "failed 1203 1500");
  CHECK(db.count("SELECT count(*) FROM pgxform.failed_batches") == 0);
  // The next run, after the fix, finishes the job exactly once.
  cure(db);
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  // The fixed function is another version: the run refuses to split the job silently...
  auto refused = run_cli(with_db(db, path, {"run"}));
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err, Catch::Contains("job 'items'") && Catch::Contains("changed"));
  // ...and goes on when told to, recording the version of every batch.
  CHECK(run_cli(with_db(db, path, {"run", "--accept-changed", "items"})).exit_code == 0);
  CHECK(db.count("SELECT count(DISTINCT fn_version) FROM pgxform.batch_log") == 2);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE("a statement timeout is a permanent error of the batch, not an endless retry") {
  TestDatabase db;
  create_items(db, 300, 2000);
  TempDir dir;
  auto r = run_cli(with_db(
      db,
      dir.write("jobs.yaml", "version: 1\ndefaults: {statement_timeout: 300ms}\n" +
                                 items_jobs_yaml(100).substr(std::string("version: 1\n").size())),
      {"run"}));
  CHECK(r.exit_code == 1);
  CHECK(db.scalar("SELECT status || ' ' || sqlstate FROM pgxform.job_state") == "failed 57014");
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
}

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

TEST_CASE("verify finds a deleted target row, and --repair restores it for an idempotent job") {
  TestDatabase db;
  create_items(db, 1000);
  // An idempotent transform: it skips rows already in the target.
  db.exec(
      "CREATE UNIQUE INDEX ON target.items (id);"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM"
      " legacy.items WHERE id BETWEEN first_key AND last_key ON CONFLICT (id) DO NOTHING"
      " RETURNING 1) SELECT count(*) FROM i'");
  TempDir dir;
  std::string yaml = skip_yaml(false);
  const auto non_idempotent = dir.write("plain.yaml", yaml);
  yaml.replace(yaml.find("idempotent: false"), 17, "idempotent: true");
  const auto path = dir.write("jobs.yaml", yaml);
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  auto clean = run_cli(with_db(db, path, {"verify"}));
  CHECK(clean.exit_code == 0);
  CHECK_THAT(clean.out, Catch::Contains("items: 10 batches checked, 0 offending"));

  db.exec("DELETE FROM target.items WHERE id IN (1500, 2400)");
  auto found = run_cli(with_db(db, path, {"verify", "items"}));
  CHECK(found.exit_code == 1);
  CHECK_THAT(found.out, Catch::Contains("2 offending (first: 1500 2400)"));
  // Refused for a job that does not say it is idempotent.
  CHECK(run_cli(with_db(db, non_idempotent, {"verify", "--repair"})).exit_code == 2);
  CHECK(db.count("SELECT count(*) FROM target.items") == 998);

  auto repaired = run_cli(with_db(db, path, {"verify", "--repair"}));
  CHECK(repaired.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(run_cli(with_db(db, path, {"verify"})).exit_code == 0);
}

TEST_CASE(
    "a function changed mid-job is refused naming both versions; reset starts the job "
    "again with the new one") {
  TestDatabase db;
  create_items(db, 1000, 0);
  poisoned_items_function(db, 1500);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 1);
  const std::string before = db.scalar("SELECT fn_version FROM pgxform.job_state");
  CHECK(before.size() == 32);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE fn_version <> '" + before + "'") ==
        0);
  cure(db);
  auto refused = run_cli(with_db(db, path, {"run"}));
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err, Catch::Contains(before.substr(0, 12)));
  CHECK(db.scalar("SELECT fn_version FROM pgxform.job_state") == before);
  // A change of whitespace alone is not a change.
  db.exec(
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 / CASE WHEN"
      " id = 1500   THEN 0   ELSE 1 END FROM legacy.items WHERE id BETWEEN first_key AND"
      "    last_key RETURNING 1)   SELECT count(*) FROM i'");
  CHECK(run_cli(with_db(db, path, {"run"})).exit_code == 1);  // runs (and fails on 1500 again)
  cure(db);
  REQUIRE(run_cli(with_db(db, path, {"reset", "items"})).exit_code == 0);
  db.exec("TRUNCATE target.items");
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(DISTINCT fn_version) FROM pgxform.batch_log") == 1);
  CHECK(db.scalar("SELECT fn_version FROM pgxform.job_state") != before);
}

TEST_CASE(
    "retry-failed, reset and verify --repair leave a job that a runner holds alone: exit 2, "
    "nothing written") {
  TestDatabase db;
  create_items(db, 1000);
  poisoned_items_function(db, 1500);
  TempDir dir;
  std::string yaml = skip_yaml(false);
  yaml.replace(yaml.find("idempotent: false"), 17, "idempotent: true");
  const auto path = dir.write("jobs.yaml", yaml);
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  cure(db);
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
