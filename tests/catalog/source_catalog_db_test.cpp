// Reading a legacy schema for init (source_catalog.h) against a real PostgreSQL: its tables
// (a partitioned table, not its partitions), columns with their types, indexes and foreign
// keys; a schema that does not exist reads as one without tables.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <string>

#include "catalog/source_catalog.h"
#include "support/test_db.h"

using namespace pgxform_test;

TEST_CASE("a legacy schema is read with its tables, columns, indexes and foreign keys") {
  TestDatabase db;
  db.exec(
      "CREATE SCHEMA legacy; CREATE TYPE legacy.mood AS ENUM ('ok', 'sad');"
      "CREATE TABLE legacy.customers (id bigint PRIMARY KEY, name varchar(20) NOT NULL,"
      " mood legacy.mood);"
      "CREATE TABLE legacy.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL"
      " CONSTRAINT orders_customer_fk REFERENCES legacy.customers, total numeric(12,2))"
      " ;CREATE INDEX orders_by_total ON legacy.orders (total) WHERE total > 0;"
      "CREATE TABLE legacy.events (at date NOT NULL, note text) PARTITION BY RANGE (at);"
      "CREATE TABLE legacy.events_2024 PARTITION OF legacy.events"
      " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
      "CREATE SCHEMA xf; CREATE FUNCTION xf.existing() RETURNS int LANGUAGE sql AS 'SELECT 1'");
  pqxx::connection conn(db.dsn());
  pqxx::read_transaction tx(conn);
  const pgxform::SourceSchema s = pgxform::read_source_schema(tx, "legacy", "xf");
  CHECK(s.name == "legacy");
  REQUIRE(s.tables.size() == 3);
  CHECK(s.tables[0].name == "customers");
  CHECK(s.tables[1].name == "events");  // the partitioned table, not its partition
  CHECK(s.tables[2].name == "orders");
  const auto& customers = s.tables[0];
  REQUIRE(customers.find_column("name"));
  CHECK(customers.find_column("name")->type == "character varying(20)");
  CHECK(customers.find_column("name")->base_type == "character varying");
  CHECK(customers.find_column("name")->not_null);
  CHECK(customers.find_column("mood")->type == "legacy.mood");
  REQUIRE(customers.indexes.size() == 1);
  CHECK(customers.indexes[0].primary);
  const auto& orders = s.tables[2];
  REQUIRE(orders.foreign_keys.size() == 1);
  CHECK(orders.foreign_keys[0].name == "orders_customer_fk");
  CHECK(orders.foreign_keys[0].columns == std::vector<std::string>{"customer_id"});
  CHECK(orders.foreign_keys[0].referenced_table == "customers");
  CHECK(orders.foreign_keys[0].referenced_columns == std::vector<std::string>{"id"});
  bool partial_seen = false;
  for (const auto& index : orders.indexes)
    if (index.name == "orders_by_total") partial_seen = index.partial;
  CHECK(partial_seen);
  CHECK(s.schemas.count("legacy") == 1);
  CHECK(s.functions.count("existing") == 1);
}

TEST_CASE("a schema that does not exist reads as a schema without tables, and is not listed") {
  TestDatabase db;
  pqxx::connection conn(db.dsn());
  pqxx::read_transaction tx(conn);
  const pgxform::SourceSchema s = pgxform::read_source_schema(tx, "no_such_schema", "xf");
  CHECK(s.tables.empty());
  CHECK(s.schemas.count("no_such_schema") == 0);
  CHECK(s.schemas.count("public") == 1);
}
