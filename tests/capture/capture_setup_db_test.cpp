// capture_setup: the capture of a jobs file put in place and taken away, whichever the method,
// checked in the catalogs: `capture --drop` leaves no slot, publication, trigger or function
// behind; a job moved from one method to the other loses no change.
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;
using Catch::Matchers::Contains;

namespace {

// The capture objects of pgxform in the database: slots, publications, triggers, functions.
struct Leftovers {
  long long slots, publications, triggers, functions;
};
Leftovers leftovers(TestDatabase& db) {
  return {db.count("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"),
          db.count("SELECT count(*) FROM pg_publication"),
          db.count("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgxform\\_%'"),
          db.count("SELECT count(*) FROM pg_proc WHERE proname LIKE 'capture\\_%'")};
}

// The Shop (fixtures.h) with `orders` captured by `orders_mode` and `lines` (which reads orders
// through changes.also) by `lines_mode`.
std::string shop_yaml(const std::string& orders_mode, const std::string& lines_mode) {
  std::string yaml = with_capture(Shop::yaml(50), lines_mode);
  const std::string orders = "changes: " + lines_mode;
  yaml.replace(yaml.find(orders), orders.size(), "changes: " + orders_mode);
  return yaml;
}

}  // namespace

TEST_CASE("capture --drop leaves no slot, publication, trigger or function behind",
          "[capture][logical]") {
  Shop shop(100, 3);
  shop.path = shop.dir.write("jobs.yaml", shop_yaml("trigger", "logical"));
  const auto run = shop.pgxform({"run"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  const Leftovers before = leftovers(shop.db);
  CHECK(before.slots == 1);
  CHECK(before.publications == 1);
  CHECK(before.triggers == 4);
  CHECK(before.functions == 2);
  CHECK(shop.db.count("SELECT count(*) FROM pg_publication_tables") == 2);
  shop.db.exec("UPDATE legacy.orders SET status = 'paid' WHERE id <= 10");
  const auto dropped = shop.pgxform({"capture", "--drop"});
  INFO(dropped.err);
  REQUIRE(dropped.exit_code == 0);
  CHECK_THAT(dropped.out,
             Contains("orders: capture dropped") && Contains("lines: capture dropped"));
  const Leftovers after = leftovers(shop.db);
  CHECK(after.slots == 0);
  CHECK(after.publications == 0);
  CHECK(after.triggers == 0);
  CHECK(after.functions == 0);
  CHECK(shop.db.count("SELECT count(*) FROM pgxform.capture_table") == 0);
  CHECK(shop.db.count("SELECT count(*) FROM pgxform.capture_slot") == 0);
  // Again: nothing to drop, and nothing fails.
  const auto again = shop.pgxform({"capture", "--drop"});
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Contains("orders: no capture"));
  // One job's drop keeps what the other still uses.
  shop.path = shop.dir.write("jobs.yaml", shop_yaml("logical", "logical"));
  REQUIRE(shop.pgxform({"capture"}).exit_code == 0);
  REQUIRE(shop.pgxform({"capture", "--drop", "orders"}).exit_code == 0);
  CHECK(leftovers(shop.db).slots == 1);
  CHECK(shop.db.count("SELECT count(*) FROM pg_publication_tables WHERE tablename = 'orders'") ==
        1);  // lines reads orders through changes.also
  REQUIRE(shop.pgxform({"capture", "--drop", "lines"}).exit_code == 0);
  const Leftovers last = leftovers(shop.db);
  CHECK(last.slots == 0);
  CHECK(last.publications == 0);
}

TEST_CASE("a job moved from triggers to the slot and back loses no change", "[capture][logical]") {
  Shop shop(100, 3);
  shop.path = shop.dir.write("jobs.yaml", shop_yaml("trigger", "trigger"));
  REQUIRE(shop.pgxform({"run"}).exit_code == 0);
  std::mt19937 rng(Catch::rngSeed());
  for (const std::string mode : {"logical", "trigger", "logical"}) {
    INFO(mode);
    // Changes recorded by the method that captures now, read (from the slot) before it goes.
    for (int i = 0; i < 20; ++i) shop.change(rng);
    shop.db.exec("UPDATE legacy.orders SET status = 'returned' WHERE id % 9 = 0");
    shop.path = shop.dir.write("jobs.yaml", shop_yaml(mode, mode));
    const auto capture = shop.pgxform({"capture"});
    INFO(capture.err);
    REQUIRE(capture.exit_code == 0);
    const Leftovers now = leftovers(shop.db);
    CHECK(now.triggers == (mode == "trigger" ? 12 : 0));  // lines also on orders
    CHECK(now.slots == (mode == "logical" ? 1 : 0));
    shop.db.exec("UPDATE legacy.order_lines SET qty = qty + 1 WHERE id % 4 = 0");
    const auto caught_up = shop.pgxform({"catch-up"});
    INFO(caught_up.err);
    REQUIRE(caught_up.exit_code == 0);
    CHECK(shop.differences() == 0);
  }
}
