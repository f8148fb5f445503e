// verify against a real PostgreSQL: the offending keys in key order, progress per job, the
// timings, jobs verified at the same time on --threads workers, --repair of several jobs, and
// the key's index under every batch. (recovery_test.cpp has verify after a run's state.)
#include <catch2/catch.hpp>
#include <iostream>
#include <regex>
#include <sstream>

#include "analysis/query_plan.h"
#include "commands/verify_command.h"
#include "database/database.h"
#include "engine/batch_sql.h"
#include "output/logging.h"
#include "plan/job_selection.h"
#include "plan/jobs_file.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// legacy.items (keys 3, 6, ...; create_items) and legacy.others (keys 1, 2, ...), `rows` rows
// each, both copied to their targets as a transform would, the targets keyed by id. The
// transforms xf.items and xf.others skip the rows already there: idempotent.
void create_verified_tables(TestDatabase& db, int rows) {
  create_items(db, rows);
  db.exec(
      "INSERT INTO target.items SELECT id, v * 10 FROM legacy.items;"
      "CREATE UNIQUE INDEX ON target.items (id);"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM"
      " legacy.items WHERE id BETWEEN first_key AND last_key ON CONFLICT (id) DO NOTHING"
      " RETURNING 1) SELECT count(*) FROM i';"
      "CREATE TABLE legacy.others (id bigint PRIMARY KEY);"
      "INSERT INTO legacy.others SELECT g FROM generate_series(1, " +
      std::to_string(rows) +
      ") g;"
      "CREATE TABLE target.others (id bigint PRIMARY KEY);"
      "INSERT INTO target.others SELECT id FROM legacy.others;"
      "CREATE FUNCTION xf.others(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS 'WITH i AS (INSERT INTO target.others SELECT id FROM legacy.others"
      " WHERE id BETWEEN first_key AND last_key ON CONFLICT (id) DO NOTHING RETURNING 1)"
      " SELECT count(*) FROM i';"
      "ANALYZE legacy.others; ANALYZE target.items; ANALYZE target.others;");
}

// The jobs items and others over those tables, in one list, batches of fixed size, each with a
// verify query that returns the source rows missing in the target, bounded on both sides;
// `items_more` and `others_more` are SQL appended to their queries.
std::string verify_jobs_yaml(int batch_size, const std::string& items_more = "",
                             const std::string& others_more = "") {
  const auto job = [&](const std::string& name, const std::string& more) {
    return "      - name: " + name + "\n        table: legacy." + name + "\n        key: id\n" +
           "        function: xf." + name + "\n        batch_size: " + std::to_string(batch_size) +
           "\n        target_batch_ms: 0\n        idempotent: true\n"
           "        verify: >-\n          SELECT l.id FROM legacy." +
           name + " l WHERE l.id BETWEEN $1 AND $2 AND NOT EXISTS (SELECT 1 FROM target." + name +
           " t WHERE t.id = l.id AND t.id BETWEEN $1 AND $2)" + more + "\n";
  };
  return "version: 1\nlists:\n  - name: main\n    jobs:\n" + job("items", items_more) +
         job("others", others_more);
}

// verify_command in this process, its log captured as run_cli captures it.
CliResult verify_in_process(const pgxform::VerifyOptions& options) {
  std::ostringstream out, err;
  struct Restore {
    std::streambuf* old;
    ~Restore() { std::cerr.rdbuf(old); }
  } restore{std::cerr.rdbuf(err.rdbuf())};
  pgxform::setup_logging(pgxform::Verbosity::normal);
  const int code = pgxform::verify_command(options, out);
  return {code, out.str(), err.str()};
}

// The lines of `text` that hold `part`.
long long lines_holding(const std::string& text, const std::string& part) {
  std::istringstream in(text);
  long long n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(part) != std::string::npos;
  return n;
}

}  // namespace

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

TEST_CASE("verify logs each job's progress: one line per interval passed, one at its end") {
  TestDatabase db;
  create_verified_tables(db, 1000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", verify_jobs_yaml(100));
  // From the command line (a line every 10 s): one line at the end of each job, whatever the
  // time it took.
  const auto r = run_cli(with_db(db, path, {"verify"}));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(lines_holding(r.err, "items: verified 1000 rows in 10 batches in ") == 1);
  CHECK(lines_holding(r.err, "others: verified 1000 rows in 10 batches in ") == 1);
  CHECK(lines_holding(r.err, "verifying 2 jobs on 2 threads") == 1);

  // Every interval passed: with none, after every batch — each naming the batches so far, the
  // share of the rows and the last key checked.
  pgxform::VerifyOptions options;
  options.file = path;
  options.dsn = db.dsn();
  options.threads = 1;
  options.progress_every = std::chrono::milliseconds(0);
  const auto each = verify_in_process(options);
  INFO(each.err);
  CHECK(each.exit_code == 0);
  CHECK(lines_holding(each.err, "items: verified ") == 11);
  CHECK(lines_holding(each.err, "others: verified ") == 11);
  CHECK(lines_holding(each.err,
                      "items: verified 300 of about 1000 rows (30%) in 3 batches, up to "
                      "key 900, ") == 1);
  CHECK(lines_holding(each.err,
                      "others: verified 1000 of about 1000 rows (100%) in 10 batches, "
                      "up to key 1000, ") == 1);
  CHECK(lines_holding(each.err, "verifying 2 jobs on 1 thread") == 1);
}

TEST_CASE("verify says how long each job took and the whole, and on how many threads") {
  TestDatabase db;
  create_verified_tables(db, 1000);
  db.exec("DELETE FROM target.others WHERE id IN (10, 20, 30)");
  TempDir dir;
  const auto r = run_cli(
      with_db(db, dir.write("jobs.yaml", verify_jobs_yaml(100)), {"verify", "--threads", "2"}));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  const std::regex expected(
      "items: 10 batches checked, 0 offending, 1000 rows in [0-9]+\\.[0-9] s\n"
      "others: 10 batches checked, 3 offending \\(first: 10 20 30\\), 1000 rows in [0-9]+\\.[0-9] "
      "s\n"
      "2 jobs verified in [0-9]+\\.[0-9] s on 2 threads: 20 batches, 2000 rows, 3 offending\n");
  CHECK(std::regex_match(r.out, expected));
}

TEST_CASE("with --threads 2, two jobs are verified at the same time, each with its own result") {
  TestDatabase db;
  create_verified_tables(db, 100);
  db.exec("DELETE FROM target.items WHERE id IN (30, 60)");
  // A rendezvous: each job's query holds its own advisory lock and waits (up to `seconds`) for
  // a session other than its own to hold the other job's. Only queries running at the same
  // time meet; a job that waited in vain returns an offending row -1.
  db.exec(
      "CREATE FUNCTION xf.meet(me int, other int, seconds float8) RETURNS boolean"
      " LANGUAGE plpgsql AS $$ BEGIN"
      "  PERFORM pg_advisory_lock(4242, me);"
      "  FOR i IN 1 .. greatest(1, (seconds * 50)::int) LOOP"
      "    IF EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
      "        AND classid = 4242 AND objid = other::oid AND objsubid = 2"
      "        AND pid <> pg_backend_pid()) THEN RETURN true; END IF;"
      "    PERFORM pg_sleep(0.02);"
      "  END LOOP;"
      "  RETURN false; END $$");
  TempDir dir;
  // One batch per job: each query runs once. `a` and `b` name the jobs' locks, new ones for
  // each verify, as a session's lock outlives it until the server notices that it ended.
  const auto yaml = [&](const std::string& a, const std::string& b, const std::string& seconds) {
    return verify_jobs_yaml(
        1000, " UNION ALL SELECT -1 WHERE NOT xf.meet(" + a + ", " + b + ", " + seconds + ")",
        " UNION ALL SELECT -1 WHERE NOT xf.meet(" + b + ", " + a + ", " + seconds + ")");
  };
  const auto both = run_cli(
      with_db(db, dir.write("jobs.yaml", yaml("1", "2", "60")), {"verify", "--threads", "2"}));
  INFO(both.err);
  CHECK(both.exit_code == 1);
  CHECK_THAT(both.out, Catch::Contains("items: 1 batches checked, 2 offending (first: 30 60)"));
  CHECK_THAT(both.out, Catch::Contains("others: 1 batches checked, 0 offending"));
  CHECK_THAT(both.out, Catch::Contains("2 jobs verified in "));
  CHECK_THAT(both.out, Catch::Contains(" on 2 threads: 2 batches, 200 rows, 2 offending"));

  // On one thread the jobs take turns, and neither meets the other.
  const auto turns = run_cli(
      with_db(db, dir.write("turns.yaml", yaml("3", "4", "0.2")), {"verify", "--threads", "1"}));
  CHECK_THAT(turns.out, Catch::Contains("items: 1 batches checked, 3 offending (first: -1 30 60)"));
  CHECK_THAT(turns.out, Catch::Contains("others: 1 batches checked, 1 offending (first: -1)"));
}

TEST_CASE("verify --repair on two threads repairs both jobs' bad batches, and only those") {
  TestDatabase db;
  create_verified_tables(db, 1000);
  db.exec(
      "DELETE FROM target.items WHERE id IN (1500, 2400, 2403);"
      "DELETE FROM target.others WHERE id IN (5, 999)");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", verify_jobs_yaml(100));
  const auto repaired = run_cli(with_db(db, path, {"verify", "--repair", "--threads", "2"}));
  INFO(repaired.err);
  CHECK(repaired.exit_code == 0);
  CHECK_THAT(repaired.out, Catch::Contains("items: re-ran [1203, 1500], 0 offending left\n"
                                           "items: re-ran [2103, 2400], 0 offending left\n"
                                           "items: re-ran [2403, 2700], 0 offending left\n"
                                           "items: 10 batches checked, 3 offending (first: 1500 "
                                           "2400 2403), 3 of 3 batches repaired, 1000 rows in "));
  CHECK_THAT(repaired.out, Catch::Contains("others: re-ran [1, 100], 0 offending left\n"
                                           "others: re-ran [901, 1000], 0 offending left\n"
                                           "others: 10 batches checked, 2 offending (first: 5 "
                                           "999), 2 of 2 batches repaired, 1000 rows in "));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM target.others") == 1000);
  const auto clean = run_cli(with_db(db, path, {"verify"}));
  CHECK(clean.exit_code == 0);
  CHECK_THAT(clean.out, Catch::Contains("20 batches, 2000 rows, 0 offending"));
}

TEST_CASE("a verify query that fails ends its job with exit 1; the other job is still verified") {
  TestDatabase db;
  create_verified_tables(db, 1000);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", verify_jobs_yaml(100, "", " UNION ALL SELECT id FROM target.gone"));
  const auto r = run_cli(with_db(db, path, {"verify", "--threads", "2"}));
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("items: 10 batches checked, 0 offending, 1000 rows in "));
  CHECK_THAT(r.out, Catch::Contains("others: 0 batches checked, 0 offending, 0 rows in "));
  CHECK_THAT(r.out, Catch::Contains(
                        "then failed (SQLSTATE 42P01): ERROR:  relation \"target.gone\" does not "
                        "exist\n"));
  CHECK_THAT(r.out, Catch::Contains(", 1 failed\n"));
  CHECK_THAT(r.err, Catch::Contains("others: verify failed (SQLSTATE 42P01)"));
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
  CHECK(lines_holding(r.err,
                      "items: the verify query reads all of target.items (about 2000 "
                      "rows) for a batch of 100 rows (a Seq Scan), and so for every "
                      "batch") == 1);
  CHECK(lines_holding(r.err, "reads all of") == 1);  // not for others, read by index
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
  CHECK(lines_holding(upto.err, "items: verified 400 rows in 4 batches in ") == 1);

  REQUIRE(run_cli(with_db(db, path, {"reset", "items"})).exit_code == 0);
  db.exec("TRUNCATE target.items");
  poison_at(3);
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 1);  // failed in its first batch
  const auto none = run_cli(with_db(db, path, {"verify"}));
  CHECK(none.exit_code == 0);
  CHECK_THAT(none.out, Catch::Contains("items: 0 batches checked, 0 offending, 0 rows in "));
  CHECK(lines_holding(none.err, "items: nothing processed yet, nothing to verify") == 1);
}
