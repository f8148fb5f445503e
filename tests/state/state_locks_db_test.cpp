// The advisory-lock names (state_locks.h) shared by every process: status finds the runner
// holding a slice by the lock a runner takes, named as state_locks names it.
// Advisory locks (state_locks.h) against a real PostgreSQL, held by a session that is no
// runner: any role that may connect can take a job's lock, or the setup lock, and call itself
// "pgxform host:pid". status says who holds a job and since when; a run says whom it waits
// for, and with --lock-timeout gives up (exit 1); without, it waits until the lock is free.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "state/state_locks.h"
#include "state/state_schema.h"
#include "support/fixtures.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("status finds the holder of a slice by the same lock name the runner takes") {
  TestDatabase db;
  create_items(db, 600);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2));
  REQUIRE(run_cli(with_db(db, path, {"run"})).exit_code == 0);
  pqxx::connection holder("dbname=" + db.name() + " application_name='pgxform other-host:42'");
  pqxx::nontransaction hold(holder);
  pgxform::session_lock(hold, pgxform::task_lock(pgxform::StateSchema("pgxform"), {"items", 1}));
  const Json status = parse_json(run_cli(with_db(db, path, {"status", "--json"})).out);
  CHECK(job_in(status, "items")["runner"] == "other-host:42");
}

namespace {

// A session of `role`, named like a runner, that holds `key` until it ends.
struct Poser {
  pqxx::connection conn;
  Poser(const TestRole& role, const pgxform::LockKey& key)
      : conn(role.dsn() + " application_name='pgxform evilhost:1'") {
    pqxx::nontransaction tx(conn);
    pgxform::session_lock(tx, key);
  }
  int pid() { return conn.backendpid(); }
};

const pgxform::StateSchema k_schema("pgxform");

}  // namespace

TEST_CASE(
    "a job held by another role posing as a runner: status names its session and since when, "
    "and run --lock-timeout gives up on it with exit 1") {
  TestDatabase db;
  create_items(db, 200);
  TestRole mallory(db, "mallory");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50));
  Poser poser(mallory, pgxform::task_lock(k_schema, {"items", 0}));

  const auto run = run_with_db(db, path, {"run", "--lock-timeout", "2s"});
  INFO(run.err);
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Catch::Contains("items is held by another runner (evilhost:1, role " +
                                      mallory.name() + ")") &&
                          Catch::Contains("gave up waiting for it after --lock-timeout 2s"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'items'") == "pending");

  const auto status = run_with_db(db, path, {"status"});
  INFO(status.out);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("    held by backend " + std::to_string(poser.pid()) +
                                         " of role " + mallory.name() + " ('pgxform evilhost:1'") &&
                             Catch::Contains("connected since ") &&
                             Catch::Contains("not the runner recorded for the job") &&
                             Catch::Contains("SELECT pg_terminate_backend(" +
                                             std::to_string(poser.pid()) + ")"));
  const Json holder =
      job_in(parse_json(run_with_db(db, path, {"status", "--json"}).out), "items")["holders"][0];
  CHECK(holder["role"] == mallory.name());
  CHECK(holder["recorded"] == false);
  CHECK_FALSE(holder["connected_at"].is_null());

  // What the role may not do without grants on the state schema: steer or reset the job.
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"pause", "items"}, {"reset", "items"}}) {
    std::vector<std::string> args = command;
    args.insert(args.end(), {"-f", path, "--dsn", mallory.dsn()});
    const auto r = run_cli(args);
    INFO(r.err);
    CHECK(r.exit_code != 0);
  }
  CHECK(db.count("SELECT count(*) FROM pgxform.control") == 0);
}

TEST_CASE(
    "a run waits for a job held by another role, saying who holds it, and goes on once the "
    "lock is free") {
  TestDatabase db;
  create_items(db, 200);
  TestRole mallory(db, "mallory");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50));
  auto poser = std::make_unique<Poser>(mallory, pgxform::task_lock(k_schema, {"items", 0}));
  Child child({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] {
    return child.err().find("items is held by another runner (evilhost:1, role " + mallory.name() +
                            "); trying again shortly") != std::string::npos;
  });
  poser.reset();
  CHECK(child.wait() == 0);
  INFO(child.err());
  CHECK(missing_items(db) == 0);
}

TEST_CASE(
    "the setup lock held by another role: the run says whom it waits for, and --lock-timeout "
    "ends the wait with exit 1, nothing written") {
  TestDatabase db;
  create_items(db, 100);
  TestRole mallory(db, "mallory");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50));
  Poser poser(mallory, pgxform::setup_lock(k_schema));
  const auto run = run_with_db(db, path, {"run", "--lock-timeout", "1500ms"});
  INFO(run.err);
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Catch::Contains("waiting for the setup lock of state schema pgxform, held "
                                      "by evilhost:1, role " +
                                      mallory.name()) &&
                          Catch::Contains("gave up waiting for the setup lock of state schema "
                                          "pgxform, held by evilhost:1, role " +
                                          mallory.name() + " (backend " +
                                          std::to_string(poser.pid()) + ")"));
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);
}
