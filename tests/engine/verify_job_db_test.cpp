// One job's verification (verify_job.h) against a real PostgreSQL: the offending keys in key
// order whatever order the query returns them in; each batch found on the key's index and the
// query bounded on both sides read by index; a warning, once per job, when the query reads a
// whole table for every batch; a job not done verified up to its cursor only; a deleted target
// row found and, for an idempotent job, restored by --repair.
#include <catch2/catch.hpp>
#include <regex>
#include <sstream>

#include "analysis/query_plan.h"
#include "database/database.h"
#include "engine/batch_sql.h"
#include "engine/verify_job.h"
#include "plan/job_selection.h"
#include "plan/jobs_file.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("verify shows the offending keys in key order, whatever order the query returns") {
  TestDatabase db;
  // Stored from the last key to the first, so that a scan returns them backwards; and keys
  // whose text sorts otherwise than their numbers ("100" < "12" < "5").
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.codes (id bigint PRIMARY KEY);"
      "INSERT INTO legacy.codes SELECT g FROM generate_series(1000, 1, -1) g;"
      "CREATE TABLE target.codes (id bigint PRIMARY KEY);"
      "INSERT INTO target.codes SELECT id FROM legacy.codes WHERE id NOT IN (999, 100, 12, 7, 5);"
      "CREATE FUNCTION xf.codes(a bigint, b bigint) RETURNS bigint LANGUAGE sql"
      " AS 'SELECT 0::bigint';"
      "ANALYZE legacy.codes; ANALYZE target.codes;");
  const std::string query =
      "SELECT c.id FROM legacy.codes c WHERE c.id BETWEEN $1 AND $2 AND NOT EXISTS (SELECT 1"
      " FROM target.codes t WHERE t.id = c.id)";
  const auto yaml = [&](int batch_size) {
    return "version: 1\nlists:\n  - name: main\n    jobs:\n"
           "      - {name: codes, table: legacy.codes, key: id, function: xf.codes, batch_size: " +
           std::to_string(batch_size) + ",\n         target_batch_ms: 0, verify: '" + query +
           "'}\n";
  };
  TempDir dir;
  // The query alone returns them in the order it reads them.
  std::string alone = query;
  alone.replace(alone.find("$1"), 2, "1");
  alone.replace(alone.find("$2"), 2, "1000");
  CHECK(db.scalar("SELECT string_agg(id::text, ' ') FROM (" + alone + ") q") != "5 7 12 100 999");
  const auto one = run_cli(with_db(db, dir.write("one.yaml", yaml(1000)), {"verify"}));
  INFO(one.err);
  CHECK(one.exit_code == 1);
  CHECK_THAT(one.out,
             Catch::Contains("codes: 1 batches checked, 5 offending (first: 5 7 12 100 999)"));

  // Over several batches, and past the ten shown: the first ten of the whole job, in order.
  db.exec("DELETE FROM target.codes WHERE id BETWEEN 990 AND 995 OR id IN (600, 3)");
  const auto many = run_cli(with_db(db, dir.write("many.yaml", yaml(100)), {"verify"}));
  CHECK(many.exit_code == 1);
  CHECK_THAT(many.out, Catch::Contains("codes: 10 batches checked, 13 offending (first: 3 5 7 12 "
                                       "100 600 990 991 992 993)"));
}

TEST_CASE(
    "verify finds each batch on the key's index, and its query bounded on both sides reads by "
    "index") {
  TestDatabase db;
  create_verified_tables(db, 100000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", verify_jobs_yaml(1000));
  const pgxform::JobsFile file = pgxform::parse_jobs_file(path);
  auto conn = pgxform::connect(db.dsn());
  const auto jobs = pgxform::resolve_jobs(*conn, file, {"items"});
  REQUIRE(jobs.size() == 1);
  pqxx::read_transaction tx(*conn);
  // Each shape of a verify batch: the first, one after a key, one up to a job's cursor.
  for (const auto& [start, upper] :
       {std::pair<pgxform::CursorStart, pgxform::UpperBound>{pgxform::CursorStart::none,
                                                             pgxform::UpperBound::open},
        {pgxform::CursorStart::after_last_key, pgxform::UpperBound::open},
        {pgxform::CursorStart::after_last_key, pgxform::UpperBound::hi_key}}) {
    const std::string sql =
        pgxform::next_range_query(jobs[0], {pgxform::Slicing::whole_job, start, upper});
    const std::optional<std::string> cursor =
        start == pgxform::CursorStart::none ? std::nullopt : std::optional<std::string>("150000");
    const std::optional<std::string> hi =
        upper == pgxform::UpperBound::open ? std::nullopt : std::optional<std::string>("240000");
    const std::string plan =
        tx.exec_params1("EXPLAIN (VERBOSE, FORMAT JSON) " + sql, cursor, 1000, "items", 0, hi)[0]
            .as<std::string>();
    INFO(plan);
    CHECK(pgxform::unbounded_scans(plan).empty());
    CHECK(plan.find("\"Index Name\": \"items_pkey\"") != std::string::npos);
  }
  // The query as verify runs it, over a batch of 1000 keys: both tables read by index.
  const std::string plan = tx.exec_params1("EXPLAIN (VERBOSE, FORMAT JSON) " +
                                               pgxform::verify_sql(file.find_job("items")->verify),
                                           "150003", "153000")[0]
                               .as<std::string>();
  INFO(plan);
  CHECK(pgxform::unbounded_scans(plan).empty());
  tx.commit();
  // And verify has nothing to warn of.
  const auto r = run_cli(with_db(db, path, {"verify", "items"}));
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, !Catch::Contains("reads all of"));
}

TEST_CASE("verify warns once per job when its query reads a whole table for every batch") {
  TestDatabase db;
  create_verified_tables(db, 2000);
  // The target without an index on id: the query reads it whole, batch after batch.
  db.exec("DROP INDEX target.items_id_idx; ANALYZE target.items");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", verify_jobs_yaml(100));
  const auto r = run_cli(with_db(db, path, {"verify"}));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(lines_with(r.err, {"items: the verify query reads all of target.items (about 2000 "
                           "rows) for a batch of 100 rows (a Seq Scan), and so for every "
                           "batch"}) == 1);
  CHECK(lines_with(r.err, {"reads all of"}) == 1);  // not for others, read by index
}

TEST_CASE(
    "verify checks a job that is not done up to its cursor only, and one that processed nothing "
    "not at all") {
  TestDatabase db;
  create_items(db, 1000);
  // The transform divides by zero on key `key`.
  const auto poison_at = [&](int key) {
    db.exec(
        "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
        " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 / CASE WHEN"
        " id = " +
        std::to_string(key) +
        " THEN 0 ELSE 1 END FROM legacy.items WHERE id BETWEEN first_key AND last_key"
        " RETURNING 1) SELECT count(*) FROM i'");
  };
  poison_at(1500);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", items_jobs_yaml(100, 1,
                                   "        verify: SELECT l.id FROM legacy.items l WHERE l.id"
                                   " BETWEEN $1 AND $2 AND NOT EXISTS (SELECT 1 FROM target.items"
                                   " t WHERE t.id = l.id)\n"));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 1);  // failed in [1203, 1500]
  const auto upto = run_cli(with_db(db, path, {"verify"}));
  INFO(upto.err);
  CHECK(upto.exit_code == 0);  // the keys above the cursor are missing, and not checked
  CHECK_THAT(upto.out, Catch::Contains("items: 4 batches checked, 0 offending, 400 rows in "));
  // The line at its end counts the rows below the cursor.
  CHECK(lines_with(upto.err, {"items: verified 400 rows in 4 batches in "}) == 1);

  REQUIRE(run_cli(with_db(db, path, {"reset", "items"})).exit_code == 0);
  db.exec("TRUNCATE target.items");
  poison_at(3);
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 1);  // failed in its first batch
  const auto none = run_cli(with_db(db, path, {"verify"}));
  CHECK(none.exit_code == 0);
  CHECK_THAT(none.out, Catch::Contains("items: 0 batches checked, 0 offending, 0 rows in "));
  CHECK(lines_with(none.err, {"items: nothing processed yet, nothing to verify"}) == 1);
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
  std::string yaml = items_skip_yaml(Bisect::off);
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
