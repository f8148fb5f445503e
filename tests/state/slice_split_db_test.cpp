// The split of a slice of a `parallel: auto` job against a real PostgreSQL: it waits for the
// batch that holds the slice's row, and splits only above the cursor that batch left.
#include <catch2/catch.hpp>
#include <future>

#include "base/errors.h"
#include "catalog/catalog.h"
#include "database/database.h"
#include "plan/jobs_file.h"
#include "state/slice_split.h"
#include "state/state_locks.h"
#include "state/state_store.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

struct AutoJob {
  pgxform::JobsFile file;
  pgxform::ResolvedJob job;
  pgxform::StateSchema schema;
};

// items (create_items, keys 3 .. 3000) with parallel: auto, its state made and its slice 0 cut.
AutoJob auto_items(TestDatabase& db, const TempDir& dir, pqxx::connection& conn) {
  create_items(db, 1000);
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(10, 1, "        parallel: auto\n"));
  pgxform::JobsFile file = pgxform::parse_jobs_file(path);
  pgxform::ResolvedJob job = pgxform::resolve_jobs(conn, file, {}).front();
  const pgxform::StateSchema schema(file.state_schema);
  pgxform::StateStore store(conn, schema);
  store.ensure_schema();
  store.register_jobs(file);
  store.ensure_slices(job);
  return {file, job, schema};
}

}  // namespace

TEST_CASE("a split waits for the batch that holds the slice and splits only above its cursor") {
  TestDatabase db;
  TempDir dir;
  auto conn = pgxform::connect(db.dsn());
  auto other = pgxform::connect(db.dsn());
  const AutoJob a = auto_items(db, dir, *conn);
  REQUIRE(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'") == 1);
  // A batch in flight: it holds slice 0's row and moves its cursor past 1500.
  pqxx::work batch(*conn);
  REQUIRE(pgxform::lock_slice(batch, a.schema, "items", 0));
  batch.exec("UPDATE pgxform.job_slice SET last_key = '1800' WHERE job = 'items'");
  auto split = std::async(std::launch::async,
                          [&] { return pgxform::split_slice(*other, a.schema, a.job, 0, "1500"); });
  // The split waits for the batch's commit.
  CHECK(split.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  batch.commit();
  // ... and then finds the cursor above its median: no split.
  CHECK_FALSE(split.get());
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'") == 1);
  // Above the cursor it splits: slice 0 ends at the median, slice 1 starts there.
  const auto added = pgxform::split_slice(*other, a.schema, a.job, 0, "2400");
  REQUIRE(added);
  CHECK(*added == 1);
  CHECK(db.scalar("SELECT string_agg(slice || ':' || coalesce(lo_key, '-') || '<' ||"
                  " coalesce(last_key, '-') || '<=' || coalesce(hi_key, '-'), ' ' ORDER BY slice)"
                  " FROM pgxform.job_slice WHERE job = 'items'") ==
        "0:-<1800<=2400 1:2400<2400<=-");
  // Keys compare in the key's type, not as text: 900 is below 2400 as a number.
  CHECK_FALSE(pgxform::split_slice(*other, a.schema, a.job, 1, "900"));
  CHECK(pgxform::split_slice(*other, a.schema, a.job, 1, "2700") == 2);
  CHECK(pgxform::recorded_slices(*other, a.schema, "items") == 3);
  CHECK(pgxform::open_slices(*other, a.schema, "items").size() == 3);
}

TEST_CASE("a done slice is never split") {
  TestDatabase db;
  TempDir dir;
  auto conn = pgxform::connect(db.dsn());
  const AutoJob a = auto_items(db, dir, *conn);
  db.exec("UPDATE pgxform.job_slice SET status = 'done', last_key = '30' WHERE job = 'items'");
  CHECK_FALSE(pgxform::split_slice(*conn, a.schema, a.job, 0, "1500"));
  CHECK(pgxform::open_slices(*conn, a.schema, "items").empty());
}

TEST_CASE(
    "a job claim holds the slices split off after its caller counted them, and no slice is split "
    "while the claim holds the job") {
  TestDatabase db;
  TempDir dir;
  auto conn = pgxform::connect(db.dsn());
  auto runner = pgxform::connect(db.dsn());
  const AutoJob a = auto_items(db, dir, *conn);
  pgxform::StateStore store(*runner, a.schema);
  // A command counted one slice; a runner's split commits slice 1 before it claims the job.
  const int counted = pgxform::recorded_slices(*conn, a.schema, "items");
  REQUIRE(counted == 1);
  REQUIRE(pgxform::split_slice(*runner, a.schema, a.job, 0, "1500") == 1);
  {
    const pgxform::JobClaim claim(*conn, a.schema, "items", counted);
    // The split-off slice is held too: the runner that split it cannot take it up.
    CHECK_FALSE(store.try_claim({"items", 1}, "main"));
    CHECK_FALSE(store.try_claim({"items", 0}, "main"));
    // Nor can any runner split a slice while the command holds the job.
    CHECK_FALSE(pgxform::split_slice(*runner, a.schema, a.job, 1, "2700"));
    CHECK(pgxform::recorded_slices(*runner, a.schema, "items") == 2);
  }
  // Once the command is done, splitting goes on.
  CHECK(pgxform::split_slice(*runner, a.schema, a.job, 1, "2700") == 2);
}

TEST_CASE("a job claim taken while a split is under way is refused as held, not counted short") {
  TestDatabase db;
  TempDir dir;
  auto conn = pgxform::connect(db.dsn());
  auto runner = pgxform::connect(db.dsn());
  auto batch_conn = pgxform::connect(db.dsn());
  const AutoJob a = auto_items(db, dir, *conn);
  // A batch in flight holds slice 0's row: the split waits for it, under way.
  pqxx::work batch(*batch_conn);
  REQUIRE(pgxform::lock_slice(batch, a.schema, "items", 0));
  auto split = std::async(std::launch::async, [&] {
    return pgxform::split_slice(*runner, a.schema, a.job, 0, "1500");
  });
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
               " AND wait_event_type = 'Lock' AND query LIKE '%AS fits%'") == 1;
  });
  // Counting now would miss the slice the split is about to commit.
  CHECK_THROWS_AS(pgxform::JobClaim(*conn, a.schema, "items", 1), pgxform::JobHeldError);
  batch.commit();
  REQUIRE(split.get() == 1);
  // Refused, it held nothing: a claim now holds both slices.
  const pgxform::JobClaim claim(*conn, a.schema, "items", 1);
  pgxform::StateStore store(*runner, a.schema);
  CHECK_FALSE(store.try_claim({"items", 1}, "main"));
}
