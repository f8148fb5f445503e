// Tests of retry: the SQLSTATE and libpqxx exception classification, and the backoff bounds.
#include "database/retry.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>

using pgxform::backoff_delay;
using pgxform::classify;
using pgxform::classify_sqlstate;
using pgxform::Failure;
using pgxform::FailureKind;
using std::chrono::milliseconds;

namespace Catch {
template <>
struct StringMaker<FailureKind> {
  static std::string convert(FailureKind kind) {
    switch (kind) {
      case FailureKind::transient:
        return "transient";
      case FailureKind::connection_lost:
        return "connection_lost";
      case FailureKind::in_doubt:
        return "in_doubt";
      case FailureKind::cancelled:
        return "cancelled";
      case FailureKind::permanent:
        return "permanent";
    }
    return "?";
  }
};
}  // namespace Catch

// --- classify_sqlstate ----------------------------------------------------------------------

TEST_CASE("serialization failure, deadlock, lock timeout and too many connections are transient") {
  const std::string sqlstate =
      GENERATE(as<std::string>{}, "40001", "40P01", "55P03", "53300", "57P03");
  CAPTURE(sqlstate);
  CHECK(classify_sqlstate(sqlstate) == FailureKind::transient);
}

TEST_CASE("connection failures and admin or crash shutdown are a lost connection") {
  const std::string sqlstate =
      GENERATE(as<std::string>{}, "08006", "08001", "08000", "08003", "57P01", "57P02");
  CAPTURE(sqlstate);
  CHECK(classify_sqlstate(sqlstate) == FailureKind::connection_lost);
}

TEST_CASE("query_canceled 57014 is cancelled") {
  CHECK(classify_sqlstate("57014") == FailureKind::cancelled);
}

TEST_CASE("unique violation, division by zero, undefined function and no sqlstate are permanent") {
  const std::string sqlstate = GENERATE(as<std::string>{}, "23505", "22012", "42883", "");
  CAPTURE(sqlstate);
  CHECK(classify_sqlstate(sqlstate) == FailureKind::permanent);
}

// --- classify on exceptions -----------------------------------------------------------------

TEST_CASE("a libpqxx serialization_failure is transient with sqlstate 40001") {
  const Failure f = classify(pqxx::serialization_failure("could not serialize access"));
  CHECK(f.kind == FailureKind::transient);
  CHECK(f.sqlstate == "40001");
  CHECK(f.message == "could not serialize access");
}

TEST_CASE("a libpqxx deadlock_detected is transient with sqlstate 40P01") {
  const Failure f = classify(pqxx::deadlock_detected("deadlock detected"));
  CHECK(f.kind == FailureKind::transient);
  CHECK(f.sqlstate == "40P01");
}

TEST_CASE("a libpqxx too_many_connections is transient with sqlstate 53300") {
  const Failure f = classify(pqxx::too_many_connections("sorry, too many clients already"));
  CHECK(f.kind == FailureKind::transient);
  CHECK(f.sqlstate == "53300");
}

TEST_CASE("a libpqxx in_doubt_error is in doubt") {
  const Failure f = classify(pqxx::in_doubt_error("connection lost during commit"));
  CHECK(f.kind == FailureKind::in_doubt);
  CHECK(f.sqlstate.empty());
}

TEST_CASE("a libpqxx statement_completion_unknown is in doubt, not a transient rollback") {
  const Failure f = classify(pqxx::statement_completion_unknown("completion unknown"));
  CHECK(f.kind == FailureKind::in_doubt);
}

TEST_CASE("a libpqxx broken_connection is a lost connection") {
  const Failure f = classify(pqxx::broken_connection("server closed the connection"));
  CHECK(f.kind == FailureKind::connection_lost);
  CHECK(f.sqlstate.empty());
}

TEST_CASE("an sql_error is classified by its sqlstate") {
  SECTION("23505 is permanent") {
    const Failure f = classify(pqxx::sql_error("duplicate key", "SELECT 1", "23505"));
    CHECK(f.kind == FailureKind::permanent);
    CHECK(f.sqlstate == "23505");
  }
  SECTION("57014 is cancelled") {
    const Failure f = classify(pqxx::sql_error("canceling statement", "SELECT 1", "57014"));
    CHECK(f.kind == FailureKind::cancelled);
    CHECK(f.sqlstate == "57014");
  }
  SECTION("40001 is transient even when it comes as a plain sql_error") {
    const Failure f = classify(pqxx::sql_error("could not serialize", "SELECT 1", "40001"));
    CHECK(f.kind == FailureKind::transient);
    CHECK(f.sqlstate == "40001");
  }
  SECTION("57P01 is a lost connection") {
    const Failure f = classify(pqxx::sql_error("terminating connection", "SELECT 1", "57P01"));
    CHECK(f.kind == FailureKind::connection_lost);
    CHECK(f.sqlstate == "57P01");
  }
}

TEST_CASE("an exception that is not from libpqxx is permanent with no sqlstate") {
  const Failure f = classify(std::runtime_error("something else\n"));
  CHECK(f.kind == FailureKind::permanent);
  CHECK(f.sqlstate.empty());
  // Trailing newlines, as in libpq's messages, are trimmed.
  CHECK(f.message == "something else");
}

// --- backoff_delay --------------------------------------------------------------------------

TEST_CASE("the backoff for attempt n lies within [base*2^n/2, base*2^n]") {
  const milliseconds base(100);
  for (int attempt = 0; attempt <= 5; ++attempt) {
    const long long ceiling = base.count() << attempt;
    long long low = ceiling;
    long long high = 0;
    for (int sample = 0; sample < 2000; ++sample) {
      const long long d = backoff_delay(attempt, base).count();
      low = std::min(low, d);
      high = std::max(high, d);
    }
    CAPTURE(attempt, low, high);
    CHECK(low >= ceiling / 2);
    CHECK(high <= ceiling);
    // Jitter: the waits are spread, not one fixed value.
    CHECK(low < high);
  }
}

TEST_CASE("the backoff grows with the attempt") {
  const milliseconds base(100);
  for (int attempt = 0; attempt < 5; ++attempt) {
    long long longest_now = 0;
    long long shortest_next = 1LL << 62;
    for (int sample = 0; sample < 500; ++sample) {
      longest_now = std::max<long long>(longest_now, backoff_delay(attempt, base).count());
      shortest_next = std::min<long long>(shortest_next, backoff_delay(attempt + 1, base).count());
    }
    CAPTURE(attempt, longest_now, shortest_next);
    CHECK(shortest_next >= longest_now);
  }
}

TEST_CASE("the backoff is capped at 30 seconds for large attempts and bases") {
  const int attempt = GENERATE(9, 10, 20, 21, 30, 63, 1000);
  const long long base = GENERATE(100LL, 1000LL, 3600000LL);
  CAPTURE(attempt, base);
  for (int sample = 0; sample < 200; ++sample) {
    const long long d = backoff_delay(attempt, milliseconds(base)).count();
    CHECK(d <= 30000);
    CHECK(d >= 15000);
  }
}

TEST_CASE("an error's context keeps the DBA's function and drops pgxform's own wrapper") {
  const std::string message =
      "ERROR:  division by zero\n"
      "CONTEXT:  SQL function \"items\" statement 1\n"
      "PL/pgSQL function pg_temp_4.pgxform_batch_1758_call(bigint,bigint) line 1 at RETURN\n"
      "SQL statement \"WITH b AS MATERIALIZED (SELECT pg_temp.pgxform_batch_1758_call(b.lo, "
      "b.hi))\"\n"
      "PL/pgSQL function pg_temp_4.pgxform_batch_1758(text,bigint,text,integer,text) line 1";
  CHECK(pgxform::without_own_context(message) ==
        "ERROR:  division by zero\nCONTEXT:  SQL function \"items\" statement 1");
  CHECK(classify(pqxx::sql_error(message, "SELECT 1", "22012")).message ==
        "ERROR:  division by zero\nCONTEXT:  SQL function \"items\" statement 1");
}
