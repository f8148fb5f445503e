// prerequisite: a test that needs a tool or a server setting the machine may lack (promtool,
// wal_level = logical, an IPv6 loopback, hypopg). Where it is missing the test FAILS — CI
// installs and configures them all (scripts/test), so a missing one there is a broken CI, not
// a reason to pass without testing — unless PGXFORM_TEST_ALLOW_SKIP=1, with which a
// developer's machine skips the part that needs it knowingly: a warning names what was not
// tested and why.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

namespace pgxform_test {

// True when `met`. Else a test failure, or with PGXFORM_TEST_ALLOW_SKIP=1 a warning naming
// `missing` and false: `if (!prerequisite(...)) return;` skips the rest of the test.
inline bool prerequisite(bool met, const std::string& missing) {
  if (met) return true;
  const char* allow = std::getenv("PGXFORM_TEST_ALLOW_SKIP");
  if (allow && std::string(allow) == "1") {
    WARN("skipped (PGXFORM_TEST_ALLOW_SKIP=1): " << missing);
    return false;
  }
  FAIL(missing << " (set PGXFORM_TEST_ALLOW_SKIP=1 to skip this knowingly)");
  return false;
}

}  // namespace pgxform_test
