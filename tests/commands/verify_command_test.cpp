// verify, computed and rendered from plain structs (no database): what is wrong, the lines per
// job and in all, the progress lines, and the query as verify wraps it. The database tests
// (verify_command_db_test.cpp, and engine/verify_job_db_test.cpp for one job) run it for real.
#include "commands/verify_command.h"

#include <catch2/catch.hpp>
#include <sstream>

using pgxform::Verification;
using pgxform::VerifyMode;
using pgxform::VerifyProgress;

namespace {

Verification checked_items() {
  Verification v;
  v.job = "items";
  v.batches = 10;
  v.rows = 1000;
  v.seconds = 0.25;
  return v;
}

std::string lines_of(const Verification& v, VerifyMode mode) {
  std::ostringstream out;
  pgxform::print_verification(out, v, mode);
  return out.str();
}

}  // namespace

TEST_CASE("verify is wrong while offending rows stay, and says what --repair did") {
  Verification v = checked_items();
  CHECK_FALSE(v.wrong(VerifyMode::check));
  CHECK(lines_of(v, VerifyMode::check) ==
        "items: 10 batches checked, 0 offending, 1000 rows in 0.2 s\n");
  v.offending = 2;
  v.first_keys = {"1500", "1503"};
  v.bad_ranges = {{"1203", "1500"}, {"1503", "1800"}};
  CHECK(v.wrong(VerifyMode::check));
  v.repairs = {{{"1203", "1500"}, 0}, {{"1503", "1800"}, 1}};
  CHECK(v.repaired() == 1);
  CHECK(v.wrong(VerifyMode::repair));
  v.repairs.back().left = 0;
  CHECK_FALSE(v.wrong(VerifyMode::repair));
  CHECK(lines_of(v, VerifyMode::repair) ==
        "items: re-ran [1203, 1500], 0 offending left\n"
        "items: re-ran [1503, 1800], 0 offending left\n"
        "items: 10 batches checked, 2 offending (first: 1500 1503), 2 of 2 batches repaired, "
        "1000 rows in 0.2 s\n");
}

TEST_CASE("a verification that failed is wrong, and its line says what was checked before") {
  Verification v = checked_items();
  v.error = "(SQLSTATE 42P01): ERROR:  relation \"target.gone\" does not exist\nLINE 1: ...";
  CHECK(v.wrong(VerifyMode::check));
  CHECK(v.wrong(VerifyMode::repair));
  // The first line of the error only: the log has the rest.
  CHECK(lines_of(v, VerifyMode::check) ==
        "items: 10 batches checked, 0 offending, 1000 rows in 0.2 s, then failed (SQLSTATE "
        "42P01): ERROR:  relation \"target.gone\" does not exist\n");
}

TEST_CASE("the total line sums the jobs and says how long they took on how many threads") {
  Verification items = checked_items();
  items.offending = 3;
  Verification orders = checked_items();
  orders.job = "orders";
  orders.batches = 2;
  orders.rows = 150;
  std::ostringstream out;
  pgxform::print_verify_total(out, {items, orders}, 1.26, 2);
  CHECK(out.str() == "2 jobs verified in 1.3 s on 2 threads: 12 batches, 1150 rows, 3 offending\n");
  orders.error = "(SQLSTATE 57014): ERROR:  canceling statement due to statement timeout";
  std::ostringstream one;
  pgxform::print_verify_total(one, {orders}, 0.04, 1);
  CHECK(one.str() ==
        "1 job verified in 0.0 s on 1 thread: 2 batches, 150 rows, 0 offending, 1 failed\n");
}

TEST_CASE("a progress line says the share of the rows expected, never past 100%") {
  VerifyProgress p{37, 1200000, 3000000.0, "1200000", 8.14};
  CHECK(pgxform::progress_line("items", p) ==
        "items: verified 1200000 of about 3000000 rows (40%) in 37 batches, up to key 1200000, "
        "8.1 s");
  p.expected_rows = 1000000.0;  // the planner's estimate was low
  CHECK(pgxform::progress_line("items", p).find("of about 1000000 rows (100%)") !=
        std::string::npos);
  p.expected_rows.reset();  // a table never analyzed, and no state
  CHECK(pgxform::progress_line("items", p) ==
        "items: verified 1200000 rows in 37 batches, up to key 1200000, 8.1 s");
  Verification v = checked_items();
  v.offending = 2;
  CHECK(pgxform::finished_line(v) ==
        "items: verified 1000 rows in 10 batches in 0.2 s, 2 offending");
}

TEST_CASE(
    "the verify query is wrapped so that the server counts its rows and sends the first keys "
    "sorted") {
  const std::string sql = pgxform::verify_sql(
      "SELECT l.id FROM legacy.items l WHERE l.id BETWEEN $1 AND $2 -- the range\n  ;  \n");
  CHECK(sql ==
        "SELECT v.*, pg_catalog.count(*) OVER () FROM (\n"
        "SELECT l.id FROM legacy.items l WHERE l.id BETWEEN $1 AND $2 -- the range\n"
        ") v ORDER BY 1 LIMIT 10");
}
