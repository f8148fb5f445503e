// Tests of fleet_budget: how a fleet's workers are shared by its targets' pools, without a
// database or threads.
#include "engine/fleet_budget.h"

#include <catch2/catch.hpp>

using pgxform::FleetBudget;

TEST_CASE("targets start in order, one worker each, while the fleet has workers free",
          "[fleet_budget]") {
  FleetBudget budget(2, std::nullopt);
  budget.add({"a", "h1", std::nullopt});
  budget.add({"b", "h1", std::nullopt});
  budget.add({"c", "h1", std::nullopt});
  CHECK(budget.try_admit() == "a");
  CHECK(budget.try_admit() == "b");
  CHECK_FALSE(budget.try_admit());
  CHECK(budget.free() == 0);
  budget.leave("a");
  CHECK(budget.try_admit() == "c");
  CHECK(budget.waiting() == 0);
}

TEST_CASE("a waiting target comes before a second worker for a running one", "[fleet_budget]") {
  FleetBudget budget(3, std::nullopt);
  budget.add({"a", "h1", std::nullopt});
  budget.add({"b", "h1", std::nullopt});
  budget.add({"c", "h1", std::nullopt});
  CHECK(budget.try_admit() == "a");
  // Two free, two targets waiting: none for a.
  CHECK(budget.draw("a", 4) == 1);
  CHECK(budget.try_admit() == "b");
  CHECK(budget.draw("a", 4) == 1);
  CHECK(budget.try_admit() == "c");
  budget.leave("b");
  // Nobody waits: the free workers go to whoever can use them.
  CHECK(budget.draw("a", 4) == 2);
  CHECK(budget.draw("c", 4) == 1);
  CHECK(budget.free() == 0);
}

TEST_CASE("a pool that can use fewer workers gives them back at once", "[fleet_budget]") {
  FleetBudget budget(4, std::nullopt);
  budget.add({"a", "h1", std::nullopt});
  budget.add({"b", "h1", std::nullopt});
  CHECK(budget.try_admit() == "a");
  CHECK(budget.try_admit() == "b");
  CHECK(budget.draw("a", 3) == 3);
  CHECK(budget.draw("b", 3) == 1);
  CHECK(budget.draw("a", 1) == 1);
  CHECK(budget.free() == 2);
  CHECK(budget.draw("b", 3) == 3);
  // Never fewer than one while it runs.
  CHECK(budget.draw("b", 0) == 1);
}

TEST_CASE("a target's max_threads and its host's cap bound its workers", "[fleet_budget]") {
  FleetBudget budget(10, 3);
  budget.add({"a", "h1", 2});
  budget.add({"b", "h1", std::nullopt});
  budget.add({"c", "h1", std::nullopt});
  budget.add({"d", "h1", std::nullopt});
  budget.add({"e", "h2", std::nullopt});
  CHECK(budget.try_admit() == "a");
  CHECK(budget.try_admit() == "b");
  CHECK(budget.try_admit() == "c");
  // h1 is full: d waits, e (another host) starts.
  CHECK(budget.try_admit() == "e");
  CHECK_FALSE(budget.try_admit());
  CHECK(budget.draw("a", 8) == 1);
  CHECK(budget.draw("e", 8) == 3);
  budget.leave("b");
  budget.leave("c");
  CHECK(budget.try_admit() == "d");
  CHECK(budget.draw("a", 8) == 2);
  CHECK(budget.draw("d", 8) == 1);
  CHECK(budget.free() == 10 - 2 - 1 - 3);
}
