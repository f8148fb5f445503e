// The two tiers of failure (errors.h), without a database: every input error derives from one
// base, which the command line maps to exit 2, with its problems and its outcome; the
// database's errors never derive from it.
#include "base/errors.h"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <string>
#include <type_traits>
#include <vector>

#include "database/database.h"
#include "engine/script_migrator.h"
#include "plan/job_selection.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"

using pgxform::PreflightError;

TEST_CASE("every input error exits 2 through one base, and database errors never derive from it") {
  using pgxform::InputError;
  static_assert(std::is_base_of_v<InputError, pgxform::UsageError>);
  static_assert(std::is_base_of_v<InputError, PreflightError>);
  static_assert(std::is_base_of_v<InputError, pgxform::JobHeldError>);
  static_assert(std::is_base_of_v<InputError, pgxform::JobsFileError>);
  static_assert(std::is_base_of_v<InputError, pgxform::ScriptError>);
  static_assert(std::is_base_of_v<InputError, pgxform::SelectionError>);
  static_assert(std::is_base_of_v<InputError, pgxform::ConnectError>);
  static_assert(!std::is_base_of_v<InputError, pqxx::failure>);
  static_assert(!std::is_base_of_v<InputError, pqxx::sql_error>);
  static_assert(!std::is_base_of_v<InputError, pgxform::ScriptFailed>);
  const PreflightError preflight({"one", "two"});
  CHECK(preflight.problems() == std::vector<std::string>{"one", "two"});
  CHECK(preflight.outcome() == "2 problem(s) found; no job was started");
  CHECK(std::string(preflight.what()) == "one");
  CHECK(pgxform::ScriptError({"x"}).outcome() == "nothing was applied");
  const pgxform::JobHeldError held("items");
  CHECK(held.problems().front() ==
        "job 'items' is held by a running pgxform (see pgxform status); stop it first");
  CHECK(held.outcome() == "nothing was written");
}
