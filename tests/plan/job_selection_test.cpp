// Which jobs a command works on (pure), and the preflight errors those choices raise.
#include "plan/job_selection.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "base/errors.h"
#include "plan/jobs_file.h"
#include "plan/scheduler.h"

using pgxform::JobKinds;
using pgxform::PreflightError;
using pgxform::select_jobs;

namespace {

const pgxform::JobsFile k_selection_file = pgxform::parse_jobs_text(R"(version: 1
lists:
  - name: first
    jobs:
      - {name: b, table: legacy.b, key: id, function: xf.b}
      - {name: step, sql: ANALYZE legacy.b}
  - name: second
    jobs:
      - {name: a, table: legacy.a, key: id, function: xf.a}
)",
                                                                    "jobs.yaml");

std::vector<std::string> job_names(const std::vector<const pgxform::Job*>& jobs) {
  std::vector<std::string> out;
  for (const auto* job : jobs) out.push_back(job->name);
  return out;
}

std::string problem_of(const std::vector<std::string>& named, JobKinds kinds) {
  try {
    select_jobs(k_selection_file, named, kinds, "explain works on batched jobs");
  } catch (const PreflightError& e) {
    REQUIRE(e.problems().size() == 1);
    return e.problems().front();
  }
  return "";
}

}  // namespace

TEST_CASE(
    "the jobs a command names come in file order, and none named means every job it can use") {
  CHECK(job_names(select_jobs(k_selection_file, {}, JobKinds::any)) ==
        std::vector<std::string>{"b", "step", "a"});
  CHECK(job_names(select_jobs(k_selection_file, {}, JobKinds::batched)) ==
        std::vector<std::string>{"b", "a"});
  CHECK(job_names(select_jobs(k_selection_file, {"a", "b"}, JobKinds::batched)) ==
        std::vector<std::string>{"b", "a"});
  CHECK(job_names(select_jobs(k_selection_file, {"step"}, JobKinds::any)) ==
        std::vector<std::string>{"step"});
}

TEST_CASE("a name that is no job, or a step where a batched job is needed, is a preflight error") {
  CHECK(problem_of({"a", "nope"}, JobKinds::any) == "jobs.yaml: no job named 'nope'");
  CHECK(problem_of({"step"}, JobKinds::batched) ==
        "jobs.yaml: job 'step' is a one-shot sql: step; explain works on batched jobs");
  CHECK(problem_of({"step"}, JobKinds::any).empty());
}
