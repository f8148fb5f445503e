// The "did you mean ...?" of a mistyped name (pure): the nearest known name by edit distance,
// and nothing when no name is near enough to be a typo.
#include "base/name_suggestion.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using pgxform::edit_distance;
using pgxform::suggest_name;

namespace {

const std::vector<std::string> k_names{"run",          "status", "migrate", "info",    "repair",
                                       "validate",     "plan",   "profile", "explain", "rehearse",
                                       "retry-failed", "reset",  "verify"};

}  // namespace

TEST_CASE("edit distance counts insertions, deletions, substitutions and swapped neighbours") {
  CHECK(edit_distance("status", "status") == 0);
  CHECK(edit_distance("statu", "status") == 1);    // a letter missing
  CHECK(edit_distance("statuss", "status") == 1);  // one too many
  CHECK(edit_distance("stotus", "status") == 1);   // one wrong
  CHECK(edit_distance("sttaus", "status") == 1);   // two swapped
  CHECK(edit_distance("", "run") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("a mistyped name is answered with the nearest known name, a far one with nothing") {
  CHECK(suggest_name("statu", k_names) == std::optional<std::string>("status"));
  CHECK(suggest_name("stauts", k_names) == std::optional<std::string>("status"));
  CHECK(suggest_name("rn", k_names) == std::optional<std::string>("run"));
  CHECK(suggest_name("retry-faild", k_names) == std::optional<std::string>("retry-failed"));
  CHECK(suggest_name("verfy", k_names) == std::optional<std::string>("verify"));
  // Too far from every name to be a typo of one.
  CHECK_FALSE(suggest_name("frobnicate", k_names));
  CHECK_FALSE(suggest_name("x", k_names));
  CHECK_FALSE(suggest_name("", k_names));
  // A tie goes to the name listed first.
  CHECK(suggest_name("plat", {"plan", "play"}) == std::optional<std::string>("plan"));
  CHECK(suggest_name("plat", {"play", "plan"}) == std::optional<std::string>("play"));
}
