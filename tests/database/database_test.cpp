// Tests of the parts of database.h that need no server: the runner's identity.
#include "database/database.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

using pgxform::runner_identity;

TEST_CASE("the runner identity is this host's name and this process's pid") {
  char host[256] = {0};
  REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  CHECK(runner_identity() == std::string(host) + ":" + std::to_string(::getpid()));
  CHECK_FALSE(std::string(host).empty());
}
