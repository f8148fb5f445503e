// The --json output's values (json_output.h): numbers rounded to the table's decimals, unknown
// and non-finite figures null, and one value per line whatever bytes a string holds.
#include "output/json_output.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

using pgxform::Json;

TEST_CASE("a figure is rounded to the decimals its table shows, and an unknown one is null") {
  CHECK(pgxform::rounded(12.3456, 2) == 12.35);
  CHECK(pgxform::json_number(0.1 + 0.2, 1).dump() == "0.3");
  CHECK(pgxform::json_number(std::nullopt, 1).is_null());
  CHECK(pgxform::json_number(std::nan(""), 1).is_null());
  CHECK(pgxform::json_number(std::numeric_limits<double>::infinity(), 1).is_null());
  CHECK(pgxform::json_text(std::nullopt).is_null());
  CHECK(pgxform::json_text(std::string("x")) == "x");
}

TEST_CASE("print_json writes one line, keys in the order they were added, bad UTF-8 replaced") {
  Json j;
  j["zeta"] = 1;
  j["alpha"] = std::string("caf\xc3") + "\n";
  std::ostringstream out;
  pgxform::print_json(out, j);
  CHECK(out.str() == "{\"zeta\":1,\"alpha\":\"caf\xef\xbf\xbd\\n\"}\n");
}
