// verify against a real PostgreSQL: progress per job (a line per interval, one at its end), how
// long each job and the whole took and on how many threads, jobs verified at the same time on
// --threads workers, --repair of several jobs at once, and a failing job's verification ending
// it alone. (One job's checks and repair: tests/engine/verify_job_db_test.cpp.)
#include <catch2/catch.hpp>
#include <iostream>
#include <regex>
#include <sstream>

#include "commands/verify_command.h"
#include "output/logging.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

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

}  // namespace

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
  CHECK(lines_with(r.err, {"items: verified 1000 rows in 10 batches in "}) == 1);
  CHECK(lines_with(r.err, {"others: verified 1000 rows in 10 batches in "}) == 1);
  CHECK(lines_with(r.err, {"verifying 2 jobs on 2 threads"}) == 1);

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
  CHECK(lines_with(each.err, {"items: verified "}) == 11);
  CHECK(lines_with(each.err, {"others: verified "}) == 11);
  CHECK(lines_with(each.err, {"items: verified 300 of about 1000 rows (30%) in 3 batches, up to "
                              "key 900, "}) == 1);
  CHECK(lines_with(each.err, {"others: verified 1000 of about 1000 rows (100%) in 10 batches, "
                              "up to key 1000, "}) == 1);
  CHECK(lines_with(each.err, {"verifying 2 jobs on 1 thread"}) == 1);
}

TEST_CASE("verify says how long each job took and the whole, and on how many threads",
          "[threads]") {
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

TEST_CASE("with --threads 2, two jobs are verified at the same time, each with its own result",
          "[threads]") {
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

TEST_CASE("verify --repair on two threads repairs both jobs' bad batches, and only those",
          "[threads]") {
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

TEST_CASE(
    "a verify query that fails ends its job with exit 1 while the other job is still verified",
    "[threads]") {
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
