// Tests of the pure scheduler and of select_lists: which task may run next, what a failure
// stops, and which --only/--exclude selections can run. No database, no threads.
#include "plan/scheduler.h"

#include <catch2/catch.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "plan/jobs_file.h"

using Catch::Matchers::Contains;
using pgxform::JobsFile;
using pgxform::parse_jobs_text;
using pgxform::Phase;
using pgxform::PlannedList;
using pgxform::Scheduler;
using pgxform::select_lists;
using pgxform::SelectionError;
using pgxform::TaskId;

namespace {

using Names = std::vector<std::string>;

// Three lists: `logistics` waits for `orders`, `reports` waits for `logistics`, and `audit`
// depends on nothing. `customers` runs in three slices.
const char* const k_jobs = R"(version: 1
lists:
  - name: orders
    jobs:
      - name: customers
        table: legacy.customers
        key: id
        function: xf.customers
        parallel: 3
      - name: shop-orders
        table: legacy.orders
        key: id
        function: xf.orders
      - name: analyze-orders
        sql: ANALYZE orders.orders
  - name: logistics
    after: [orders]
    jobs:
      - name: events
        table: legacy.events
        key: event_id
        function: xf.events
  - name: reports
    after: [logistics]
    jobs:
      - name: summary
        sql: SELECT 1
  - name: audit
    jobs:
      - name: audit-log
        sql: SELECT 2
      - name: audit-check
        sql: SELECT 3
)";

JobsFile jobs_file(const std::string& text = k_jobs) {
  return parse_jobs_text(text, "jobs.yaml");
}

std::vector<PlannedList> plan_of(const std::string& text) {
  return select_lists(jobs_file(text), {}, {}, {});
}

TaskId task(const std::string& job, int slice = 0) {
  return TaskId{job, slice};
}

// Every task next_task() offers now, in the order offered.
std::vector<TaskId> take_all(Scheduler& scheduler) {
  std::vector<TaskId> tasks;
  while (auto t = scheduler.next_task()) tasks.push_back(*t);
  return tasks;
}

std::vector<std::string> texts(const std::vector<TaskId>& tasks) {
  std::vector<std::string> out;
  for (const auto& t : tasks) out.push_back(t.text());
  return out;
}

// Finishes the tasks one by one.
void finish(Scheduler& scheduler, const std::vector<TaskId>& tasks) {
  for (const auto& t : tasks) scheduler.task_finished(t);
}

Names job_names(const PlannedList& list) {
  Names out;
  for (const auto& job : list.jobs) out.push_back(job.name);
  return out;
}

Names list_names(const std::vector<PlannedList>& plan) {
  Names out;
  for (const auto& list : plan) out.push_back(list.name);
  return out;
}

// The error select_lists raises; fails the test when there is none.
SelectionError selection_error(const Names& only, const Names& exclude,
                               const std::set<std::string>& done = {}) {
  const JobsFile file = jobs_file();
  try {
    select_lists(file, only, exclude, done);
  } catch (const SelectionError& e) {
    return e;
  }
  FAIL("the selection was accepted");
  throw std::logic_error("unreachable");
}

}  // namespace

// --- Order ----------------------------------------------------------------------------------

TEST_CASE("a task id names its slice only when it is not the first") {
  CHECK(task("customers").text() == "customers");
  CHECK(task("customers", 2).text() == "customers#2");
}

TEST_CASE("a catch-up task carries its phase and names it, apart from the job's main pass") {
  Scheduler s({{"l", {}, {{"orders", 1, pgxform::Phase::catch_up}}}});
  const auto task = s.next_task();
  REQUIRE(task);
  CHECK(task->phase == pgxform::Phase::catch_up);
  CHECK(task->text() == "orders (catch-up)");
  CHECK_FALSE(*task == (TaskId{"orders", 0, pgxform::Phase::main}));
  CHECK(std::string(pgxform::phase_name(task->phase)) == "catch_up");
  s.task_finished(*task);
  CHECK(s.all_done());
}

TEST_CASE("jobs of one list run in order: the second is not offered while the first runs") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: first
        sql: SELECT 1
      - name: second
        sql: SELECT 2
)"));
  auto t = scheduler.next_task();
  REQUIRE(t);
  CHECK(*t == task("first"));
  CHECK_FALSE(scheduler.next_task());
  scheduler.task_finished(*t);
  auto u = scheduler.next_task();
  REQUIRE(u);
  CHECK(*u == task("second"));
  CHECK_FALSE(scheduler.next_task());
}

TEST_CASE("a list after another gets nothing until every job of the first is finished") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: orders
    jobs:
      - name: customers
        sql: SELECT 1
      - name: shop-orders
        sql: SELECT 2
  - name: logistics
    after: [orders]
    jobs:
      - name: events
        sql: SELECT 3
)"));
  CHECK(texts(take_all(scheduler)) == Names{"customers"});
  scheduler.task_finished(task("customers"));
  CHECK(texts(take_all(scheduler)) == Names{"shop-orders"});
  scheduler.task_finished(task("shop-orders"));
  CHECK(texts(take_all(scheduler)) == Names{"events"});
}

TEST_CASE("independent lists are ready in parallel") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: a1
        sql: SELECT 1
      - name: a2
        sql: SELECT 2
  - name: b
    jobs:
      - name: b1
        sql: SELECT 3
)"));
  auto first = scheduler.next_task();
  auto second = scheduler.next_task();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(std::set<std::string>{first->text(), second->text()} == std::set<std::string>{"a1", "b1"});
  CHECK_FALSE(scheduler.next_task());
  CHECK(scheduler.running_count() == 2);
}

TEST_CASE("a job with three slices offers three tasks at once and its successor after all") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: sliced
        table: t
        key: id
        function: f
        parallel: 3
      - name: after-sliced
        sql: SELECT 1
)"));
  auto slices = take_all(scheduler);
  CHECK(texts(slices) == Names{"sliced", "sliced#1", "sliced#2"});
  CHECK(scheduler.running_count() == 3);
  scheduler.task_finished(slices[0]);
  scheduler.task_finished(slices[2]);
  CHECK_FALSE(scheduler.next_task());
  scheduler.task_finished(slices[1]);
  CHECK(texts(take_all(scheduler)) == Names{"after-sliced"});
}

TEST_CASE("the tasks that can run are those running, ready or held elsewhere, never later ones") {
  Scheduler scheduler(select_lists(jobs_file(), {}, {}, {}));
  // orders' three slices of customers and audit's first job; logistics and reports wait.
  CHECK(scheduler.runnable_count() == 4);
  const auto first = take_all(scheduler);
  CHECK(first.size() == 4);
  CHECK(scheduler.runnable_count() == 4);
  scheduler.task_deferred(first[1]);  // held by another runner: still one to try
  CHECK(scheduler.runnable_count() == 4);
  scheduler.task_finished(first[0]);
  scheduler.task_finished(first[2]);
  CHECK(scheduler.runnable_count() == 2);  // customers#1 held, audit-log running
  scheduler.task_failed(first[3]);         // audit stops: nothing of it can run
  CHECK(scheduler.runnable_count() == 1);
  scheduler.retry_deferred();
  scheduler.task_finished(*scheduler.next_task());  // customers#1 at last: shop-orders next
  CHECK(scheduler.runnable_count() == 1);
}

TEST_CASE("a task is never offered twice while it runs") {
  Scheduler scheduler(select_lists(jobs_file(), {}, {}, {}));
  std::set<TaskId> seen;
  std::set<TaskId> running;
  // Finish one running task at a time until all are done; every offer must be new.
  for (int round = 0; round < 100 && !scheduler.all_done(); ++round) {
    for (const auto& t : take_all(scheduler)) {
      CHECK(seen.insert(t).second);
      running.insert(t);
    }
    CHECK(scheduler.running_count() == int(running.size()));
    REQUIRE_FALSE(running.empty());
    scheduler.task_finished(*running.begin());
    running.erase(running.begin());
  }
  CHECK(scheduler.all_done());
  // 3 slices of customers and one task for each of the 6 other jobs.
  CHECK(seen.size() == 9);
}

TEST_CASE("when every task is finished, all are done and the scheduler is finished") {
  Scheduler scheduler(select_lists(jobs_file(), {}, {}, {}));
  CHECK_FALSE(scheduler.is_finished());
  CHECK_FALSE(scheduler.all_done());
  for (int round = 0; round < 20 && !scheduler.all_done(); ++round)
    finish(scheduler, take_all(scheduler));
  CHECK(scheduler.all_done());
  CHECK(scheduler.is_finished());
  CHECK(scheduler.running_count() == 0);
  CHECK(scheduler.failed_jobs().empty());
  CHECK(scheduler.blocked_jobs().empty());
  CHECK_FALSE(scheduler.next_task());
}

// --- Failures -------------------------------------------------------------------------------

TEST_CASE("a failed task stops its list and every list after it, while independent lists go on") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: orders
    jobs:
      - name: customers
        sql: SELECT 1
      - name: shop-orders
        sql: SELECT 2
  - name: logistics
    after: [orders]
    jobs:
      - name: events
        sql: SELECT 3
  - name: reports
    after: [logistics]
    jobs:
      - name: summary
        sql: SELECT 4
  - name: audit
    jobs:
      - name: audit-log
        sql: SELECT 5
      - name: audit-check
        sql: SELECT 6
)"));
  CHECK(texts(take_all(scheduler)) == Names{"customers", "audit-log"});
  scheduler.task_failed(task("customers"));
  CHECK_FALSE(scheduler.next_task());
  // audit-log still runs, so the run is not over yet.
  CHECK_FALSE(scheduler.is_finished());

  scheduler.task_finished(task("audit-log"));
  CHECK(texts(take_all(scheduler)) == Names{"audit-check"});
  scheduler.task_finished(task("audit-check"));

  CHECK_FALSE(scheduler.next_task());
  CHECK(scheduler.is_finished());
  CHECK_FALSE(scheduler.all_done());
  CHECK(scheduler.failed_jobs() == Names{"customers"});
  CHECK(scheduler.blocked_jobs() == Names{"shop-orders", "events", "summary"});
}

TEST_CASE("a failure in a later job of a list blocks only what comes after it") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: orders
    jobs:
      - name: customers
        sql: SELECT 1
      - name: shop-orders
        sql: SELECT 2
  - name: logistics
    after: [orders]
    jobs:
      - name: events
        sql: SELECT 3
)"));
  scheduler.task_finished(*scheduler.next_task());
  auto t = scheduler.next_task();
  REQUIRE(t);
  CHECK(*t == task("shop-orders"));
  scheduler.task_failed(*t);
  CHECK_FALSE(scheduler.next_task());
  CHECK(scheduler.is_finished());
  CHECK(scheduler.failed_jobs() == Names{"shop-orders"});
  CHECK(scheduler.blocked_jobs() == Names{"events"});
}

TEST_CASE("a failed slice stops new slices of the same job") {
  const std::string text = R"(version: 1
lists:
  - name: a
    jobs:
      - name: sliced
        table: t
        key: id
        function: f
        parallel: 3
      - name: next
        sql: SELECT 1
)";
  SECTION("a released slice is not offered again") {
    Scheduler scheduler(plan_of(text));
    auto slices = take_all(scheduler);
    REQUIRE(slices.size() == 3);
    scheduler.task_released(slices[2]);
    scheduler.task_failed(slices[0]);
    CHECK_FALSE(scheduler.next_task());
    // The slice still running keeps the run going until it reports.
    CHECK_FALSE(scheduler.is_finished());
    scheduler.task_finished(slices[1]);
    CHECK_FALSE(scheduler.next_task());
    CHECK(scheduler.is_finished());
    CHECK(scheduler.failed_jobs() == Names{"sliced"});
    CHECK(scheduler.blocked_jobs() == Names{"next"});
  }
  SECTION("a deferred slice is not offered again after retry_deferred") {
    Scheduler scheduler(plan_of(text));
    auto slices = take_all(scheduler);
    REQUIRE(slices.size() == 3);
    scheduler.task_deferred(slices[1]);
    scheduler.task_failed(slices[0]);
    scheduler.task_finished(slices[2]);
    scheduler.retry_deferred();
    CHECK_FALSE(scheduler.next_task());
    CHECK(scheduler.is_finished());
    CHECK(scheduler.failed_jobs() == Names{"sliced"});
  }
}

// --- Deferred and released tasks ------------------------------------------------------------

TEST_CASE("a deferred task is offered again only after retry_deferred") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
      - name: y
        sql: SELECT 2
)"));
  auto t = scheduler.next_task();
  REQUIRE(t);
  scheduler.task_deferred(*t);
  CHECK(scheduler.has_deferred());
  CHECK(scheduler.running_count() == 0);
  CHECK_FALSE(scheduler.next_task());
  CHECK_FALSE(scheduler.is_finished());

  scheduler.retry_deferred();
  CHECK_FALSE(scheduler.has_deferred());
  auto again = scheduler.next_task();
  REQUIRE(again);
  CHECK(*again == task("x"));
  CHECK_FALSE(scheduler.next_task());
}

TEST_CASE("a released task goes back to waiting and is offered again") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
)"));
  auto t = scheduler.next_task();
  REQUIRE(t);
  scheduler.task_released(*t);
  CHECK(scheduler.running_count() == 0);
  CHECK_FALSE(scheduler.has_deferred());
  CHECK_FALSE(scheduler.is_finished());
  CHECK(scheduler.failed_jobs().empty());
  auto again = scheduler.next_task();
  REQUIRE(again);
  CHECK(*again == task("x"));
}

TEST_CASE("an outcome for a task that is not in the plan is a logic error") {
  Scheduler scheduler(plan_of(R"(version: 1
lists:
  - name: a
    jobs:
      - name: x
        sql: SELECT 1
)"));
  CHECK_THROWS_AS(scheduler.task_finished(task("nowhere")), std::logic_error);
  CHECK_THROWS_AS(scheduler.task_finished(task("x", 1)), std::logic_error);
}

// --- select_lists ---------------------------------------------------------------------------

TEST_CASE("without --only or --exclude every list is planned with its after and slices") {
  auto plan = select_lists(jobs_file(), {}, {}, {});
  REQUIRE(list_names(plan) == Names{"orders", "logistics", "reports", "audit"});
  CHECK(job_names(plan[0]) == Names{"customers", "shop-orders", "analyze-orders"});
  CHECK(plan[0].jobs[0].slices == 3);
  CHECK(plan[0].jobs[1].slices == 1);
  CHECK(plan[0].jobs[2].slices == 1);
  CHECK(plan[0].after.empty());
  CHECK(plan[1].after == Names{"orders"});
  CHECK(plan[2].after == Names{"logistics"});
  CHECK(plan[3].after.empty());
}

TEST_CASE("selecting with --only a list plans exactly that list") {
  auto plan = select_lists(jobs_file(), {"audit"}, {}, {});
  REQUIRE(list_names(plan) == Names{"audit"});
  CHECK(job_names(plan[0]) == Names{"audit-log", "audit-check"});
}

TEST_CASE("selecting with --only the first job of a list plans that job alone") {
  auto plan = select_lists(jobs_file(), {"customers"}, {}, {});
  REQUIRE(list_names(plan) == Names{"orders"});
  CHECK(job_names(plan[0]) == Names{"customers"});
}

TEST_CASE("selecting with --exclude a list leaves it out of the plan") {
  auto plan = select_lists(jobs_file(), {}, {"audit"}, {});
  CHECK(list_names(plan) == Names{"orders", "logistics", "reports"});
}

TEST_CASE("selecting with --exclude the last list's only job leaves its list out of the plan") {
  auto plan = select_lists(jobs_file(), {}, {"summary"}, {});
  CHECK(list_names(plan) == Names{"orders", "logistics", "audit"});
}

TEST_CASE("an unknown name in --only or --exclude is a selection error naming it") {
  auto only = selection_error({"nowhere"}, {});
  CHECK_THAT(std::string(only.what()), Contains("--only nowhere") && Contains("jobs.yaml"));
  auto exclude = selection_error({}, {"nowhere"});
  CHECK_THAT(std::string(exclude.what()), Contains("--exclude nowhere"));
}

TEST_CASE(
    "selecting with --only a list whose after list is neither done nor selected is an error naming "
    "both") {
  auto e = selection_error({"logistics"}, {});
  CHECK_THAT(std::string(e.what()), Contains("job 'events' (list 'logistics')") &&
                                        Contains("needs job 'customers' (list 'orders')"));
}

TEST_CASE("selecting with --only a list whose after list is done plans it without the after") {
  auto plan =
      select_lists(jobs_file(), {"logistics"}, {}, {"customers", "shop-orders", "analyze-orders"});
  REQUIRE(list_names(plan) == Names{"logistics"});
  CHECK(job_names(plan[0]) == Names{"events"});
  CHECK(plan[0].after.empty());

  // ... and the scheduler then starts it at once.
  Scheduler scheduler(plan);
  CHECK(texts(take_all(scheduler)) == Names{"events"});
}

TEST_CASE(
    "selecting with --only a list whose after list is only partly done is an error naming the "
    "rest") {
  auto e = selection_error({"logistics"}, {}, {"customers", "shop-orders"});
  CHECK_THAT(std::string(e.what()), Contains("job 'events'") && Contains("'analyze-orders'"));
}

TEST_CASE("selecting with --only a list together with its after list keeps the after") {
  auto plan = select_lists(jobs_file(), {"orders", "logistics"}, {}, {});
  REQUIRE(list_names(plan) == Names{"orders", "logistics"});
  CHECK(plan[1].after == Names{"orders"});
}

TEST_CASE(
    "selecting with --only a job whose predecessor in its list is not done is an error naming "
    "both") {
  auto e = selection_error({"shop-orders"}, {});
  CHECK_THAT(std::string(e.what()),
             Contains("job 'shop-orders' (list 'orders')") && Contains("needs job 'customers'"));
}

TEST_CASE("selecting with --only a job whose predecessors are done plans that job alone") {
  auto plan = select_lists(jobs_file(), {"shop-orders"}, {}, {"customers"});
  REQUIRE(list_names(plan) == Names{"orders"});
  CHECK(job_names(plan[0]) == Names{"shop-orders"});
}

TEST_CASE("excluding a job in the middle of a list whose later jobs run is an error") {
  auto e = selection_error({}, {"shop-orders"});
  CHECK_THAT(std::string(e.what()), Contains("job 'analyze-orders' (list 'orders')") &&
                                        Contains("needs job 'shop-orders'"));
}

TEST_CASE("excluding a done job in the middle of a list drops it from the plan") {
  auto plan = select_lists(jobs_file(), {}, {"shop-orders"}, {"shop-orders"});
  REQUIRE(list_names(plan) == Names{"orders", "logistics", "reports", "audit"});
  CHECK(job_names(plan[0]) == Names{"customers", "analyze-orders"});
  CHECK(plan[1].after == Names{"orders"});
}

TEST_CASE("a chain of 10,000 lists is scheduled to its end without recursion") {
  std::vector<PlannedList> plan;
  for (int i = 0; i < 10000; ++i) {
    PlannedList list{"l" + std::to_string(i), {}, {{"j" + std::to_string(i), 1}}};
    if (i > 0) list.after.push_back("l" + std::to_string(i - 1));
    plan.push_back(list);
  }
  Scheduler scheduler(plan);
  int done = 0;
  while (const auto task = scheduler.next_task()) {
    CHECK(task->job == "j" + std::to_string(done));
    CHECK_FALSE(scheduler.next_task());  // the next list waits for this one
    scheduler.task_finished(*task);
    ++done;
  }
  CHECK(done == 10000);
  CHECK(scheduler.is_finished());
  CHECK(scheduler.all_done());
}

TEST_CASE("a failure at the head of a 10,000-list chain blocks the rest without recursion") {
  std::vector<PlannedList> plan;
  for (int i = 0; i < 10000; ++i) {
    PlannedList list{"l" + std::to_string(i), {}, {{"j" + std::to_string(i), 1}}};
    if (i > 0) list.after.push_back("l" + std::to_string(i - 1));
    plan.push_back(list);
  }
  Scheduler scheduler(plan);
  scheduler.task_failed(*scheduler.next_task());
  CHECK(scheduler.is_finished());
  CHECK(scheduler.blocked_jobs().size() == 9999);
}

TEST_CASE(
    "a job with parallel: auto gets a share per idle worker while one runs, and none "
    "after a share found nothing to split") {
  PlannedList list{"main", {}, {{"big", 1, Phase::main, true}, {"next", 1}}};
  Scheduler s({list});
  const auto first = s.next_task();
  REQUIRE(first);
  CHECK(first->job == "big");
  CHECK(first->is_share());
  // While the first share runs, each idle worker gets one more share of the same job.
  const auto second = s.next_task();
  const auto third = s.next_task();
  REQUIRE(second);
  REQUIRE(third);
  CHECK(second->job == "big");
  CHECK(third->job == "big");
  CHECK(second->slice != first->slice);
  CHECK(s.runnable_count() >= 1000);
  // A share that finishes found nothing left to split: no new share, and the list waits for
  // the shares that still run.
  s.task_finished(*third);
  CHECK_FALSE(s.next_task());
  s.task_finished(*first);
  CHECK_FALSE(s.next_task());
  s.task_finished(*second);
  const auto next = s.next_task();
  REQUIRE(next);
  CHECK(next->job == "next");
  CHECK_FALSE(next->is_share());
}

TEST_CASE(
    "a deferred share of a job with parallel: auto is offered again, and the job stays "
    "undone until it finishes") {
  Scheduler s({PlannedList{"main", {}, {{"big", 1, Phase::main, true}, {"next", 1}}}});
  const auto share = s.next_task();
  REQUIRE(share);
  s.task_deferred(*share);
  // Nothing runs: no new share (another runner holds the job), and the next job waits.
  CHECK_FALSE(s.next_task());
  CHECK_FALSE(s.is_finished());
  s.retry_deferred();
  const auto again = s.next_task();
  REQUIRE(again);
  CHECK(*again == *share);
  s.task_finished(*again);
  CHECK(s.next_task()->job == "next");
}

TEST_CASE(
    "an idle worker takes a task waiting in another list before a share of a job that grows") {
  Scheduler s({PlannedList{"big", {}, {{"big", 1, Phase::main, true}}},
               PlannedList{"small", {}, {{"a", 1}, {"b", 1}}}});
  const auto first = s.next_task();
  REQUIRE(first);
  CHECK(first->job == "big");
  const auto second = s.next_task();
  REQUIRE(second);
  CHECK(second->job == "a");
  // Nothing else waits: the next worker shares the big job.
  const auto third = s.next_task();
  REQUIRE(third);
  CHECK(third->job == "big");
  CHECK(third->is_share());
}
