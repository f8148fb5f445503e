// Numbers as the commands' tables print them (output_format.h): fixed decimals, a rate and an
// ETA in a few characters each.
#include "base/output_format.h"

#include <catch2/catch.hpp>

using pgxform::eta_text;
using pgxform::fixed;
using pgxform::rate_text;

TEST_CASE("fixed rounds to the decimals asked for") {
  CHECK(fixed(2.345, 1) == "2.3");
  CHECK(fixed(2.35, 0) == "2");
  CHECK(fixed(-0.5, 2) == "-0.50");
  CHECK(fixed(1234567.0, 0) == "1234567");
}

TEST_CASE("a rate shows a decimal below 10 rows per second, thousands as k and millions as M") {
  CHECK(rate_text(4.54) == "4.5");
  CHECK(rate_text(850) == "850");
  CHECK(rate_text(9999) == "9999");
  CHECK(rate_text(12345) == "12.3k");
  CHECK(rate_text(1.25e6) == "1.2M");
}

TEST_CASE("an ETA shows seconds, minutes and seconds, hours and minutes, or days and hours") {
  CHECK(eta_text(44.6) == "45s");
  CHECK(eta_text(59.4) == "59s");
  CHECK(eta_text(60) == "1m00s");
  CHECK(eta_text(725) == "12m05s");
  CHECK(eta_text(3 * 3600 + 5 * 60 + 20) == "3h05m");
  CHECK(eta_text(2 * 86400 + 4 * 3600 + 59 * 60) == "2d04h");
}
