// The bound finder (bound_finder.h) against a real PostgreSQL: it walks the next batch's last key
// on a session of its own, gives it only to the task and cursor that asked and for a size the
// task still wants, gives the end of a range with the keys left there, and gives up on a server
// it cannot reach. And a run whose batches take their last keys from it: the same batches as
// walked ones, the last one too, every row once, also when the range loses keys between the
// walk and its batch.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <string>

#include "catalog/catalog.h"
#include "engine/bound_finder.h"
#include "plan/jobs_file.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;
using pgxform::BoundFinder;
using pgxform::BoundRequest;

namespace {

// The job items (fixtures.h: keys 3, 6, 9, ...), resolved against the catalog of `db`.
pgxform::ResolvedJob items_job(TestDatabase& db) {
  pqxx::connection conn(db.dsn());
  const auto file = pgxform::parse_jobs_text(items_jobs_yaml(10), "jobs.yaml");
  return pgxform::resolve_jobs(conn, file, {"items"}).at(0);
}

BoundRequest walk_of(const pgxform::ResolvedJob& job, const std::string& task,
                     std::optional<std::string> after, long size) {
  pgxform::BatchShape shape;
  if (after) shape.start = pgxform::CursorStart::after_last_key;
  return {task, &job, shape, std::move(after), size, 0, std::nullopt};
}

// Asks for the walk and waits until the finder did it (a request still queued when its task
// comes to take it is withdrawn: the batch walks for itself).
void walked(BoundFinder& finder, BoundRequest request) {
  const long long before = finder.walks();
  finder.request(std::move(request));
  wait_until([&] { return finder.walks() > before; });
}

// legacy.items of `rows` rows (create_items: keys 3, 6, ...), its job, and a finder on its
// database.
struct ItemsFinder {
  explicit ItemsFinder(int rows) : finder(db.dsn()) {
    create_items(db, rows);
    job = items_job(db);
  }
  TestDatabase db;
  pgxform::ResolvedJob job;
  BoundFinder finder;
};

}  // namespace

TEST_CASE("the bound finder walks the size-th key after the cursor on a session of its own",
          "[threads]") {
  ItemsFinder f(1000);
  TestDatabase& db = f.db;
  const pgxform::ResolvedJob& job = f.job;
  BoundFinder& finder = f.finder;
  walked(finder, walk_of(job, "items", std::string("30"), 100));
  // Keys 33, 36, ...: the 100th after 30 is 330. Taken once, for that cursor.
  const auto found = finder.take("items", std::string("30"), 100);
  REQUIRE(found);
  CHECK(found->last_key == "330");
  CHECK(found->size == 100);
  CHECK_FALSE(finder.take("items", std::string("30"), 100));
  CHECK(finder.walks() == 1);
  CHECK(finder.taken() == 1);
  // From the first key, no cursor yet.
  walked(finder, walk_of(job, "items", std::nullopt, 10));
  const auto first = finder.take("items", std::nullopt, 10);
  REQUIRE(first);
  CHECK(first->last_key == "30");
  // Its session is named apart from the pool's workers (their application_name ends in the
  // runner's pid), and reads only.
  CHECK(db.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                 " AND application_name LIKE 'pgxform %:%' AND application_name LIKE '% bounds'") ==
        1);
}

TEST_CASE("a found last key serves only its task, its cursor and a size up to twice its own",
          "[threads]") {
  ItemsFinder f(1000);
  const pgxform::ResolvedJob& job = f.job;
  BoundFinder& finder = f.finder;
  const auto found_for = [&](const std::string& task, const std::string& after, long size) {
    walked(finder, walk_of(job, "items", std::string("300"), 100));
    return finder.take(task, after, size).has_value();
  };
  CHECK(found_for("items", "300", 100));
  CHECK(found_for("items", "300", 200));          // the sizer grew: a batch of the old size serves
  CHECK_FALSE(found_for("items", "300", 201));    // more than twice: the batch walks for itself
  CHECK_FALSE(found_for("items", "300", 99));     // smaller: never more keys than asked for
  CHECK_FALSE(found_for("items", "303", 100));    // another cursor
  CHECK_FALSE(found_for("items#1", "300", 100));  // another task
  CHECK(finder.walks() == 6);
  CHECK(finder.taken() == 2);
}

TEST_CASE(
    "at the end of a range the finder gives its last key and the keys left, for a batch"
    " that takes them all",
    "[threads]") {
  ItemsFinder f(1000);  // the last key is 3000
  const pgxform::ResolvedJob& job = f.job;
  BoundFinder& finder = f.finder;
  walked(finder, walk_of(job, "items", std::string("2700"), 100));
  const auto full = finder.take("items", std::string("2700"), 100);  // exactly 100 keys left
  REQUIRE(full);
  CHECK_FALSE(full->end);
  // The end of a range: its last key, and how many keys up to it.
  const auto check_end = [](const std::optional<pgxform::FoundBound>& found,
                            const std::string& last_key, long keys) {
    REQUIRE(found);
    CHECK(found->end);
    CHECK(found->last_key == last_key);
    CHECK(found->size == keys);
  };
  // 99 keys left after 2703.
  walked(finder, walk_of(job, "items", std::string("2703"), 100));
  check_end(finder.take("items", std::string("2703"), 100), "3000", 99);
  // It serves any size that takes them all (no half rule), and none that takes fewer.
  walked(finder, walk_of(job, "items", std::string("2703"), 100));
  CHECK(finder.take("items", std::string("2703"), 100000));
  walked(finder, walk_of(job, "items", std::string("2703"), 100));
  CHECK_FALSE(finder.take("items", std::string("2703"), 98));
  // A bounded slice ends at its hi_key: 100 keys after 1200 up to 1500.
  BoundRequest slice = walk_of(job, "items", std::string("1200"), 1000);
  slice.shape.upper = pgxform::UpperBound::hi_key;
  slice.hi_key = "1500";
  walked(finder, slice);
  check_end(finder.take("items", std::string("1200"), 1000), "1500", 100);
  // No key left: nothing.
  walked(finder, walk_of(job, "items", std::string("3000"), 100));
  CHECK_FALSE(finder.take("items", std::string("3000"), 100));
  CHECK(finder.walks() == 6);
}

TEST_CASE("a bound finder that cannot connect gives up after three tries and the run goes on",
          "[threads]") {
  TestDatabase db;
  create_items(db, 100);
  const auto job = items_job(db);
  BoundFinder finder(db.dsn() + " port=1 connect_timeout=2");
  for (int i = 0; i < BoundFinder::k_max_failures; ++i) {
    CHECK_FALSE(finder.gave_up());
    finder.request(walk_of(job, "items", std::string("30"), 10));
    wait_until([&] { return finder.tries() > i; });
    CHECK_FALSE(finder.take("items", std::string("30"), 10));
  }
  CHECK(finder.gave_up());
  finder.request(walk_of(job, "items", std::string("30"), 10));  // not queued: no fourth try
  CHECK_FALSE(finder.take("items", std::string("30"), 10));
  CHECK(finder.tries() == BoundFinder::k_max_failures);
  CHECK(finder.walks() == 0);
  // A run on a working server: its batches take their keys from its own finder.
  TempDir dir;
  const auto run = run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(10)), {"run", "-v"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(missing_items(db) == 0);
}

TEST_CASE("a run's batches take their last keys found beforehand: the same batches, every row once",
          "[exact][threads]") {
  TestDatabase db;
  create_items(db, 5000);  // keys 3, 6, ..., 15000
  TempDir dir;
  const auto run = run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(100)), {"run", "-v"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  // 50 batches of exactly 100 keys each, as a walk from each cursor gives them.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE rows = 100 AND"
                 " first_key::bigint = (batch_no - 1) * 300 + 3 AND"
                 " last_key::bigint = batch_no * 300") == 50);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  // Most of them from the finder: the first batch walks for itself, and the finder may be late
  // for a few on a busy machine.
  const auto taken = run.err.find("batches took their last key found beforehand");
  REQUIRE(taken != std::string::npos);
  const auto line_start = run.err.rfind('\n', taken) + 1;
  const std::string line = run.err.substr(line_start, taken - line_start);
  INFO(line);
  const long long n = std::stoll(line.substr(line.find_last_of(' ', line.size() - 2) + 1));
  CHECK(n >= 25);
}

TEST_CASE("the last batch of a range takes its last key and its rows from the finder too",
          "[exact][threads]") {
  TestDatabase db;
  create_items(db, 450, 200);  // keys 3, ..., 1350; each batch sleeps 200 ms: the finder is done
  TempDir dir;
  const auto run = run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(100)), {"run", "-v"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  // Batches 2 to 5 took found keys, the fifth the 50 keys left: rows and keys as walked, and
  // the size it asked for.
  CHECK_THAT(run.err, Catch::Contains("4 batches took their last key found beforehand (4 walks)"));
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE batch_no = 5 AND rows = 50 AND"
                 " batch_size = 100 AND first_key = '1203' AND last_key = '1350'") == 1);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == 5);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "keys deleted between the finder's walk and their batch are never processed, and every"
    " other key once",
    "[exact][threads]") {
  TestDatabase db;
  create_items(db, 5000);
  // Each batch deletes, after copying its range, the keys ahead of it that the finder has
  // walked by then for the next batch (it sleeps first, to let the walk finish): 150 of the next
  // 100 keys' range, or all of it.
  items_function_then(db,
                      "PERFORM pg_sleep(0.01); DELETE FROM legacy.items WHERE id > last_key AND"
                      " id <= last_key + CASE WHEN last_key % 2 = 0 THEN 150 ELSE 450 END");
  TempDir dir;
  const auto run = run_with_db(db, dir.write("jobs.yaml", items_jobs_yaml(100)), {"run"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  // What is left of the table was copied once; nothing deleted before its batch was copied.
  CHECK(db.count("SELECT count(*) FROM (SELECT id, v * 10 FROM legacy.items EXCEPT ALL"
                 " SELECT id, v FROM target.items) d") == 0);
  CHECK(db.count("SELECT count(*) FROM (SELECT id, v FROM target.items EXCEPT ALL"
                 " SELECT id, v * 10 FROM legacy.items) d") == 0);
  CHECK(db.count("SELECT count(*) FROM legacy.items") < 5000);
  // A batch whose found last key lost every key up to it walked for itself: no batch was
  // logged over an empty range (first key past the last).
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE first_key::bigint >"
                 " last_key::bigint") == 0);
}
