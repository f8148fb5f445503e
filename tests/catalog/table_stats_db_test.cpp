// What the leading table can tell beyond its definition (table_stats.h), against a real
// PostgreSQL: the planner's row estimate, whether a btree index leads with the key and whether
// the table was analyzed, the key span on the key's own scale, and keys at positions of the
// key's distribution, with and without the planner's histogram.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/table_stats.h"
#include "plan/jobs_file.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// The job items (fixtures.h), resolved against the catalog of `conn`.
pgxform::ResolvedJob items_job(pqxx::connection& conn) {
  const auto file = pgxform::parse_jobs_text(items_jobs_yaml(10), "jobs.yaml");
  return pgxform::resolve_jobs(conn, file, {"items"}).at(0);
}

}  // namespace

TEST_CASE("a table never analyzed has no row estimate, and once analyzed the planner's") {
  TestDatabase db;
  create_items(db, 1000);  // analyzed
  db.exec(
      "CREATE TABLE legacy.fresh (id bigint PRIMARY KEY);"
      "INSERT INTO legacy.fresh SELECT g FROM generate_series(1, 50) g");
  pqxx::connection conn(db.dsn());
  const auto job = items_job(conn);
  pqxx::read_transaction tx(conn);
  REQUIRE(pgxform::estimated_rows(tx, job));
  CHECK(*pgxform::estimated_rows(tx, job) == Approx(1000));
  CHECK_FALSE(pgxform::estimated_rows(tx, std::string("\"legacy\".\"fresh\"")));
  CHECK_FALSE(pgxform::estimated_rows(tx, std::string("\"legacy\".\"no_such_table\"")));
  const pgxform::TableHealth health = pgxform::table_health(tx, job);
  CHECK(health.key_index);
  CHECK(health.analyzed);
}

TEST_CASE("a key without a leading btree index, on a table never analyzed, reads as such") {
  TestDatabase db;
  create_items(db, 0);
  db.exec(
      "DROP TABLE legacy.items; CREATE TABLE legacy.items (v int, id bigint NOT NULL);"
      "CREATE INDEX ON legacy.items (v, id); CREATE INDEX ON legacy.items USING hash (id)");
  pqxx::connection conn(db.dsn());
  const auto job = items_job(conn);
  pqxx::read_transaction tx(conn);
  const pgxform::TableHealth health = pgxform::table_health(tx, job);
  CHECK_FALSE(health.key_index);
  CHECK_FALSE(health.analyzed);
  CHECK_FALSE(health.estimated_rows);
}

TEST_CASE("the key span is the first and last key, and a key of the job on the same scale") {
  TestDatabase db;
  create_items(db, 1000);  // keys 3, 6, ..., 3000
  pqxx::connection conn(db.dsn());
  const auto job = items_job(conn);
  pqxx::read_transaction tx(conn);
  const auto span = pgxform::key_span(tx, job, std::string("1500"));
  tx.commit();
  REQUIRE(span);
  CHECK(span->first == 3);
  CHECK(span->last == 3000);
  REQUIRE(span->at);
  CHECK(*span->at == 1500);
  db.exec("TRUNCATE legacy.items");
  pqxx::read_transaction empty(conn);
  CHECK_FALSE(pgxform::key_span(empty, job));
}

TEST_CASE("keys at positions of the distribution come in the order asked, histogram or not") {
  TestDatabase db;
  create_items(db, 1000);  // analyzed: from the histogram
  pqxx::connection conn(db.dsn());
  const auto job = items_job(conn);
  const auto near = [](const std::string& key, long long expected) {
    INFO(key << " near " << expected);
    CHECK(std::abs(std::stoll(key) - expected) <= 30);
  };
  {
    pqxx::read_transaction tx(conn);
    const auto keys = pgxform::keys_at(tx, job, {0.5, 0.25, 0.75});
    REQUIRE(keys.size() == 3);
    near(keys[0], 1500);
    near(keys[1], 750);
    near(keys[2], 2250);
  }
  // Without statistics: one ordered pass over the key.
  db.exec(
      "SELECT pg_stat_reset(); DELETE FROM pg_statistic WHERE starelid = 'legacy.items'::regclass");
  pqxx::read_transaction tx(conn);
  const auto keys = pgxform::keys_at(tx, job, {0.5});
  REQUIRE(keys.size() == 1);
  near(keys[0], 1500);
}
