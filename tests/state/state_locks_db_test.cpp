// The advisory-lock names (state_locks.h) shared by every process: status finds the runner
// holding a slice by the lock a runner takes, named as state_locks names it.
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
