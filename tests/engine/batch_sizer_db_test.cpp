// Batches sized by time against a real PostgreSQL, on a transform of known cost per row
// (pg_sleep per row, which a busy machine does not make cheaper or dearer): the sizes asked
// for, as batch_log records them, are counts to judge, not clocks.
#include <catch2/catch.hpp>
#include <sstream>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// The sizes the job's batches asked for, in commit order; those after batch `after` only.
std::vector<long> batch_sizes(TestDatabase& db, long long after = 0) {
  std::vector<long> sizes;
  std::istringstream in(
      db.scalar("SELECT string_agg(batch_size::text, ' ' ORDER BY batch_no) FROM pgxform.batch_log"
                " WHERE job = 'items' AND batch_no > " +
                std::to_string(after)));
  for (long size; in >> size;) sizes.push_back(size);
  return sizes;
}

std::string describe(const std::vector<long>& sizes) {
  std::string out;
  for (long size : sizes) out += std::to_string(size) + " ";
  return out;
}

}  // namespace

TEST_CASE(
    "time-sized batches grow from a small start, settle near the target and are cut at once "
    "after a slow batch",
    "[timing]") {
  TestDatabase db;
  create_items(db, 2500);  // keys 3, 6, ..., 7500
  // 0.5 ms per row: 100 rows make the 50 ms target. The batch holding key 6000 (row 2000)
  // takes 600 ms more.
  per_row_items_function(db, 0.5, 6000, 600);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml",
                items_jobs_yaml(10, 1, "        target_batch_ms: 50\n        min_batch_size: 5\n"));
  const auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);

  const std::vector<long> sizes = batch_sizes(db);
  INFO("sizes: " << describe(sizes));
  REQUIRE(sizes.size() > 12);
  CHECK(sizes.front() == 10);
  // The first batch is a probe that sizes the second; growth is bounded after it: never more
  // than twice the size before.
  for (std::size_t i = 2; i < sizes.size(); ++i) CHECK(sizes[i] <= 2 * sizes[i - 1]);
  const long long slow = db.count(
      "SELECT batch_no FROM pgxform.batch_log WHERE first_key::bigint <= 6000"
      " AND last_key::bigint >= 6000");
  REQUIRE(slow > 8);
  const auto at = [&](long long batch_no) { return sizes[std::size_t(batch_no - 1)]; };
  // Settled near the target before the slow batch: ~100 rows (less the batch's fixed cost),
  // and steady, not oscillating.
  int changes = 0;
  for (long long b = 8; b < slow; ++b) {
    CHECK(at(b) >= 50);
    CHECK(at(b) <= 150);
    changes += at(b) != at(b - 1);
  }
  CHECK(changes <= 4);
  // Cut at once after the slow batch, and grown back since.
  CHECK(at(slow + 1) <= at(slow) / 4);
  CHECK(sizes[sizes.size() - 2] >= 50);
}

TEST_CASE("target_batch_ms: 0 keeps every batch at batch_size") {
  TestDatabase db;
  create_items(db, 300);
  per_row_items_function(db, 0.2);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(7, 1, "        target_batch_ms: 0\n"));
  const auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::vector<long> sizes = batch_sizes(db);
  CHECK(sizes.size() == 43);  // 300 rows: 42 batches of 7 and one of 6, each asking for 7
  for (long size : sizes) CHECK(size == 7);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE rows <> 7") == 1);
  CHECK(missing_items(db) == 0);
}

TEST_CASE("without history, time-sized batches reach their target size by the second batch",
          "[timing]") {
  TestDatabase db;
  create_items(db, 400);
  // 1 ms per row: 100 rows make the 100 ms target; the first batch, a probe, takes 20.
  per_row_items_function(db, 1.0);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml", items_jobs_yaml(20, 1, "        target_batch_ms: 100\n"));
  const auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(missing_items(db) == 0);
  const std::vector<long> sizes = batch_sizes(db);
  INFO("sizes: " << describe(sizes));
  REQUIRE(sizes.size() >= 3);
  CHECK(sizes[0] == 20);
  // Near 100 less the batch's fixed cost, which the probe's 20 rows bear alone: at least half.
  CHECK(sizes[1] >= 50);
  CHECK(sizes[1] <= 150);
}

TEST_CASE(
    "a job run again sizes its first batch from its recent batches of the same function version") {
  TestDatabase db;
  create_items(db, 300);
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml",
                items_jobs_yaml(10, 1, "        target_batch_ms: 50\n        min_batch_size: 5\n"));
  auto r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const long long first_run = db.count("SELECT max(batch_no) FROM pgxform.batch_log");
  // The history, made known: 0.25 ms a row, so 200 rows make the 50 ms target.
  db.exec("UPDATE pgxform.batch_log SET duration_ms = rows * 0.25");
  long expected = 200;
  SECTION("the same function version: its history sizes the first batch") {}
  SECTION("another function version: not its history, the first batch is batch_size") {
    db.exec("UPDATE pgxform.batch_log SET fn_version = 'another version'");
    expected = 10;
  }
  // Rows appended after the job finished: the next run goes on with them.
  db.exec("INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(301, 2000) g");
  r = run_cli(with_db(db, path, {"run"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  const std::vector<long> sizes = batch_sizes(db, first_run);
  INFO("sizes: " << describe(sizes));
  REQUIRE(!sizes.empty());
  CHECK(sizes.front() == expected);
}
