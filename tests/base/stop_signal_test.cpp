// What SIGINT and SIGTERM ask of a run (stop_signal.h), without a run: the handler counts the
// signals, the first asks to take no new batch, the second to cancel those in flight.
#include "base/stop_signal.h"

#include <catch2/catch.hpp>
#include <csignal>

using pgxform::stop_level;

TEST_CASE("each SIGINT or SIGTERM raises the stop level by one, until it is reset") {
  pgxform::reset_stop();
  pgxform::install_stop_handlers();
  CHECK(stop_level() == 0);
  REQUIRE(std::raise(SIGINT) == 0);
  CHECK(stop_level() == 1);
  REQUIRE(std::raise(SIGTERM) == 0);
  CHECK(stop_level() == 2);
  pgxform::request_stop();
  CHECK(stop_level() == 3);
  pgxform::reset_stop();
  CHECK(stop_level() == 0);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}
