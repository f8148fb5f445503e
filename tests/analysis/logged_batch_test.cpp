// A batch as the batch log recorded it (logged_batch.h): the names of its kinds, as status,
// profile and the report print them.
#include "analysis/logged_batch.h"

#include <catch2/catch.hpp>
#include <string>

TEST_CASE("a logged batch is a batch, a bisect range or a retry-failed range, by name") {
  using pgxform::BatchKind;
  CHECK(std::string(pgxform::batch_kind_name(BatchKind::batch)) == "batch");
  CHECK(std::string(pgxform::batch_kind_name(BatchKind::bisect)) == "bisect");
  CHECK(std::string(pgxform::batch_kind_name(BatchKind::retry)) == "retry");
}
