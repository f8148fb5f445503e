// A job's profile computed from its logged batches (job_profile.h), without a database:
// batches placed in the key range, the ETA, and the percentiles of the job's own batches
// (bisect and retry-failed ranges set apart).
#include "analysis/job_profile.h"

#include <catch2/catch.hpp>

#include "support/profile_inputs.h"

using pgxform::ProfileInputs;
using pgxform_test::Counters;
using pgxform_test::profile_inputs;

TEST_CASE("a profile places numeric keys in the key range, else keeps batch order") {
  ProfileInputs in = profile_inputs(20, Counters::without);
  in.span = pgxform::KeySpan{1, 4000, std::nullopt};
  const auto placed = pgxform::compute_profile(in);
  CHECK(placed.key_positions);
  CHECK(placed.batches.front().position == Approx(49.5 / 3999).epsilon(0.01));
  CHECK(placed.batches.back().position == Approx(1949.5 / 3999).epsilon(0.01));
  CHECK(placed.batch_numbers.back() == 20);
  CHECK(placed.first_keys.front() == "1");
  in.span.reset();
  CHECK_FALSE(pgxform::compute_profile(in).key_positions);
  in.span = pgxform::KeySpan{1, 4000, std::nullopt};
  in.batches.front().first_key = "a1";  // not a number: no position for any batch
  CHECK_FALSE(pgxform::compute_profile(in).key_positions);
}

TEST_CASE(
    "the ETA covers the rows the planner expects beyond those done, and a done job has none") {
  ProfileInputs in = profile_inputs(20, Counters::without);
  in.estimated_rows = 4000;
  const auto running = pgxform::compute_profile(in);
  REQUIRE(running.remaining_rows);
  CHECK(*running.remaining_rows == 2000);
  REQUIRE(running.eta_seconds);
  CHECK(*running.eta_seconds > 0);
  in.status = "done";
  CHECK_FALSE(pgxform::compute_profile(in).eta_seconds);
  in.status = "running";
  in.estimated_rows.reset();
  CHECK_FALSE(pgxform::compute_profile(in).eta_seconds);
}
