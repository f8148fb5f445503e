// The control table's rules without a database: which row wins for a job (job_control.h), what
// pause, resume and set accept (control_command.h), and which throttle limit a job waits for
// (health_throttle.h).
#include "state/job_control.h"

#include <catch2/catch.hpp>
#include <limits>

#include "base/errors.h"
#include "commands/control_command.h"
#include "engine/health_throttle.h"
#include "plan/jobs_file.h"

using pgxform::ControlAction;
using pgxform::ControlOptions;
using pgxform::ControlRow;
using pgxform::ControlScope;
using pgxform::resolve_control;

namespace {

ControlRow row(ControlScope scope, const std::string& name, std::optional<bool> paused,
               std::optional<long long> batch_size = std::nullopt) {
  ControlRow r;
  r.scope = scope;
  r.name = name;
  r.values.paused = paused;
  r.values.batch_size = batch_size;
  return r;
}

const char* const k_control_yaml =
    "version: 1\n"
    "lists:\n"
    "  - name: shop\n"
    "    jobs:\n"
    "      - {name: orders, table: legacy.orders, key: id, function: xf.orders}\n"
    "      - {name: analyze, sql: ANALYZE}\n"
    "  - name: events\n"
    "    jobs:\n"
    "      - {name: events, table: legacy.events, key: id, function: xf.events}\n";

pgxform::ControlRequest request(ControlAction action, std::vector<std::string> arguments,
                                bool all = false,
                                std::optional<ControlScope> names_are = std::nullopt) {
  ControlOptions o;
  o.action = action;
  o.arguments = std::move(arguments);
  o.all = all;
  o.names_are = names_are;
  return pgxform::parse_control_request(pgxform::parse_jobs_text(k_control_yaml, "jobs.yaml"), o);
}

}  // namespace

TEST_CASE("a job's own control row wins over its list's, which wins over every job's") {
  const std::vector<ControlRow> rows = {row(ControlScope::all, "", true, 50),
                                        row(ControlScope::list, "shop", std::nullopt, 70),
                                        row(ControlScope::job, "orders", false)};
  const auto orders = resolve_control(rows, "orders", "shop");
  CHECK_FALSE(orders.paused);       // its own row resumed it
  CHECK(*orders.batch_size == 70);  // its list's size
  const auto events = resolve_control(rows, "events", "events");
  CHECK(events.paused);
  CHECK(events.paused_by == "all");
  CHECK(*events.batch_size == 50);
  // A row of another job or list does not apply; nothing set, nothing applies.
  CHECK_FALSE(resolve_control({row(ControlScope::job, "events", true)}, "orders", "shop").paused);
  CHECK(resolve_control({}, "orders", "shop") == pgxform::JobControl());
  CHECK(resolve_control({row(ControlScope::list, "shop", true)}, "orders", "shop").paused_by ==
        "list shop");
}

TEST_CASE("a control value out of its limit is ignored, listed, and the next row's applies") {
  ControlRow huge =
      row(ControlScope::job, "orders", std::nullopt, std::numeric_limits<long long>::max());
  huge.values.pause_ms = 86400000;  // a day
  ControlRow list = row(ControlScope::list, "shop", std::nullopt, 700);
  list.values.target_batch_ms = -5;
  const auto c =
      resolve_control({row(ControlScope::all, "", std::nullopt, 50), list, huge}, "orders", "shop");
  CHECK(*c.batch_size == 700);  // its list's: its own is ignored
  CHECK_FALSE(c.target_batch_ms);
  CHECK(c.pause_ms == 0);
  CHECK(c.ignored ==
        std::vector<std::string>{"batch_size 9223372036854775807 > 1000000000 (job orders)",
                                 "target_batch_ms -5 < 0 (list shop)",
                                 "pause_ms 86400000 > 3600000 (job orders)"});
  // A wider row's bad value that a narrower valid one overrides is not listed.
  ControlRow wide = row(ControlScope::all, "", std::nullopt, 0);
  const auto own =
      resolve_control({wide, row(ControlScope::job, "orders", std::nullopt, 10)}, "orders", "shop");
  CHECK(*own.batch_size == 10);
  CHECK(own.ignored.empty());
  CHECK(resolve_control({wide}, "orders", "shop").ignored ==
        std::vector<std::string>{"batch_size 0 < 1 (all)"});
}

TEST_CASE(
    "pause, resume and set resolve names, refusing one that is both a list and a job unless "
    "told which, and parse settings") {
  // "events" is a list and a job: refused, unless --list or --job says which.
  CHECK_THROWS_WITH(request(ControlAction::pause, {"events"}),
                    Catch::Contains("'events' is both a list and a job"));
  CHECK(request(ControlAction::pause, {"events"}, false, ControlScope::job).targets[0].text() ==
        "job events");
  const auto paused =
      request(ControlAction::pause, {"events", "shop", "shop"}, false, ControlScope::list);
  REQUIRE(paused.targets.size() == 2);
  CHECK(paused.targets[0].text() == "list events");
  CHECK(paused.targets[1].text() == "list shop");
  CHECK_THROWS_AS(request(ControlAction::pause, {"analyze"}, false, ControlScope::list),
                  pgxform::UsageError);
  CHECK(request(ControlAction::pause, {"orders"}).targets[0].text() == "job orders");
  CHECK(*paused.values.paused);
  CHECK_FALSE(*request(ControlAction::resume, {}, true).values.paused);
  CHECK(request(ControlAction::resume, {}, true).targets[0].text() == "every job");

  const auto set = request(ControlAction::set, {"orders", "batch_size=500", "pause_ms=20"});
  CHECK(*set.values.batch_size == 500);
  CHECK(*set.values.pause_ms == 20);
  CHECK_FALSE(set.values.target_batch_ms);
  CHECK_FALSE(set.values.paused);
  CHECK(set.settings_text == "batch_size=500 pause_ms=20");

  using pgxform::UsageError;
  CHECK_THROWS_AS(request(ControlAction::pause, {}), UsageError);
  CHECK_THROWS_AS(request(ControlAction::pause, {"orders"}, true), UsageError);
  CHECK_THROWS_AS(request(ControlAction::pause, {"analyze"}), UsageError);
  CHECK_THROWS_AS(request(ControlAction::pause, {"orders", "batch_size=1"}), UsageError);
  CHECK_THROWS_AS(request(ControlAction::set, {"orders"}), UsageError);
  CHECK_THROWS_AS(request(ControlAction::set, {"orders", "size=1"}), UsageError);
  CHECK_THROWS_AS(request(ControlAction::set, {"orders", "batch_size=0"}), UsageError);
  CHECK_THROWS_AS(request(ControlAction::set, {"orders", "batch_size=1e3"}), UsageError);
  CHECK_THROWS_WITH(request(ControlAction::pause, {"order"}),
                    Catch::Contains("did you mean 'orders'?"));
}

TEST_CASE("a throttle limit names the first signal over it, and none within the limits") {
  using pgxform::HealthSignals;
  using pgxform::throttle_reason;
  pgxform::ThrottleLimits limits;
  HealthSignals s;
  s.active_sessions = 9;
  s.xact_age_s = 12.7;
  CHECK_FALSE(throttle_reason(s, limits));  // no limit set
  limits.max_xact_age_s = 10;
  CHECK(*throttle_reason(s, limits) == "max_xact_age_s 12 > 10");
  limits.max_active_sessions = 8;
  CHECK(*throttle_reason(s, limits) == "max_active_sessions 9 > 8");
  s.active_sessions = 8;  // at the limit is within it
  s.xact_age_s.reset();   // no other transaction open
  CHECK_FALSE(throttle_reason(s, limits));
  limits.max_wal_mb_per_s = 50;
  s.wal_mb_per_s = 80.2;
  CHECK(*throttle_reason(s, limits) == "max_wal_mb_per_s 80 > 50");
  limits.max_replica_lag_s = 30;
  s.replica_lag_s = 31;
  CHECK(*throttle_reason(s, limits) == "max_replica_lag_s 31 > 30");
}
