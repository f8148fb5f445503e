// validate's warning of a foreign key between two capturing jobs' targets, against a real
// PostgreSQL: the targets known from `writes:` (a PL/pgSQL function) and from pg_depend (a
// SQL-standard body); no warning when only one of the two jobs captures.
#include <catch2/catch.hpp>
#include <string>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// legacy.customers and legacy.orders, their targets, target.orders with a foreign key to
// target.customers; xf.customers (PL/pgSQL: its targets only by `writes:`) and xf.orders (a
// SQL-standard body: its targets by pg_depend), each with a refresh function.
void create_shop(TestDatabase& db) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.customers (id bigint PRIMARY KEY, name text);"
      "CREATE TABLE legacy.orders (id bigint PRIMARY KEY, customer_id bigint);"
      "CREATE TABLE target.customers (id bigint PRIMARY KEY, name text);"
      "CREATE TABLE target.orders (id bigint PRIMARY KEY,"
      " customer_id bigint CONSTRAINT orders_customer_fk REFERENCES target.customers (id));"
      "CREATE FUNCTION xf.customers(lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$"
      " BEGIN INSERT INTO target.customers SELECT * FROM legacy.customers"
      " WHERE id BETWEEN lo AND hi; RETURN 0; END $$;"
      "CREATE FUNCTION xf.orders(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql BEGIN ATOMIC"
      " INSERT INTO target.orders SELECT * FROM legacy.orders WHERE id BETWEEN lo AND hi;"
      " SELECT count(*) FROM legacy.orders WHERE id BETWEEN lo AND hi; END;"
      "CREATE FUNCTION xf.refresh(keys bigint[]) RETURNS bigint LANGUAGE sql AS $$ SELECT "
      "0::bigint $$;");
}

std::string shop_yaml(const std::string& customers_changes) {
  return "version: 1\nlists:\n  - name: shop\n    jobs:\n"
         "      - name: customers\n        table: legacy.customers\n        key: id\n"
         "        function: xf.customers\n        writes: [target.customers]\n" +
         customers_changes +
         "      - name: orders\n        table: legacy.orders\n        key: id\n"
         "        function: xf.orders\n        changes: trigger\n"
         "        refresh_function: xf.refresh\n";
}

}  // namespace

TEST_CASE("validate warns of a foreign key between two capturing jobs' targets, naming both jobs",
          "[validate]") {
  TestDatabase db;
  create_shop(db);
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml", shop_yaml("        changes: trigger\n        refresh_function: xf.refresh\n"));
  const auto r = run_with_db(db, path, {"validate"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out,
             Catch::Contains("warning: " + path +
                             ":12: job 'orders': foreign key orders_customer_fk of target.orders "
                             "references target.customers, which job 'customers' writes; both "
                             "capture changes") &&
                 Catch::Contains("add that foreign key in a script of the window, after the final "
                                 "catch-up"));

  // Only one of them captures: the main pass's order (after:) keeps the key whole.
  const auto one = run_with_db(db, dir.write("one.yaml", shop_yaml("")), {"validate"});
  INFO(one.out << one.err);
  CHECK(one.exit_code == 0);
  CHECK_THAT(one.out, !Catch::Contains("foreign key orders_customer_fk"));
}
