// A task's cursor (task_cursor.h) moved by the SQL a batch statement holds, against a real
// state schema: it moves only from the key it was read at, so a batch that read a stale cursor
// moves nothing; a range redone below the cursor counts without moving it; a slice's move
// counts in its job too.
#include <catch2/catch.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "state/schema_name.h"
#include "state/task_cursor.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// The cursor's move of a batch over [lo, hi] of 7 rows, read at `read_at`: how many task rows
// it moved (0 or 1).
long long move(TestDatabase& db, pgxform::Slicing slicing, pgxform::CursorMove how,
               const std::optional<std::string>& read_at, long long lo, long long hi,
               int slice = 0) {
  const pgxform::CursorSql sql =
      pgxform::cursor_move_sql(pgxform::StateSchema("pgxform"), slicing, how);
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  const auto row = tx.exec_params1(
      "WITH r AS (SELECT $2::bigint AS lo, $5::bigint AS hi, 7::bigint AS rows, $4::int AS s)" +
          sql.ctes + " SELECT (SELECT count(*) FROM c), " + sql.batch_no,
      read_at, lo, "items", slice, hi);
  tx.commit();
  return row[0].as<long long>();
}

}  // namespace

TEST_CASE("the cursor moves only from the key it was read at, counting the batch once") {
  TestDatabase db;
  create_items(db, 100);  // keys 3..300
  TempDir dir;
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(50)), {"run"}).exit_code == 0);
  REQUIRE(db.scalar("SELECT last_key || ' ' || batches_done || ' ' || rows_done"
                    " FROM pgxform.job_state") == "300 2 100");
  using pgxform::CursorMove;
  using pgxform::Slicing;
  CHECK(move(db, Slicing::whole_job, CursorMove::advance, std::string("300"), 301, 330) == 1);
  CHECK(db.scalar("SELECT last_key || ' ' || batches_done || ' ' || rows_done"
                  " FROM pgxform.job_state") == "330 3 107");
  // Another batch that read the cursor at 300 too: it moves nothing.
  CHECK(move(db, Slicing::whole_job, CursorMove::advance, std::string("300"), 301, 360) == 0);
  CHECK(db.scalar("SELECT last_key || ' ' || batches_done FROM pgxform.job_state") == "330 3");
  // A range redone below the cursor: counted, the cursor stays.
  CHECK(move(db, Slicing::whole_job, CursorMove::stay, std::nullopt, 3, 30) == 1);
  CHECK(db.scalar("SELECT last_key || ' ' || batches_done || ' ' || rows_done"
                  " FROM pgxform.job_state") == "330 4 114");
}

TEST_CASE("a slice's cursor moves in its own row and counts in its job's") {
  TestDatabase db;
  create_items(db, 600);
  TempDir dir;
  REQUIRE(run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(50, 2)), {"run"}).exit_code == 0);
  const std::string last = db.scalar("SELECT last_key FROM pgxform.job_slice WHERE slice = 1");
  const long long job_batches = db.count("SELECT batches_done FROM pgxform.job_state");
  using pgxform::CursorMove;
  using pgxform::Slicing;
  CHECK(move(db, Slicing::slice, CursorMove::advance, last, std::stoll(last) + 1,
             std::stoll(last) + 30, 1) == 1);
  CHECK(db.scalar("SELECT last_key FROM pgxform.job_slice WHERE slice = 1") ==
        std::to_string(std::stoll(last) + 30));
  CHECK(db.count("SELECT batches_done FROM pgxform.job_state") == job_batches + 1);
  CHECK(move(db, Slicing::slice, CursorMove::advance, last, std::stoll(last) + 1,
             std::stoll(last) + 60, 1) == 0);
}
