// init's summary without a database: each list with what it is after, the tables without a
// job, and the files written.
#include "commands/init_command.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "support/source_schemas.h"

using namespace pgxform;
using namespace pgxform_test;

TEST_CASE(
    "init's summary names each list with what it is after, the tables without a job and "
    "the files") {
  SourceTable audit;
  audit.name = "audit";
  audit.columns = {column("at")};
  SourceTable lines = keyed("lines", {"orders"});
  lines.indexes = {index("lines_orders_id_idx", {"orders_id"})};
  lines.estimated_rows.reset();
  const Skeleton s = plan(schema_of({keyed("orders"), lines, audit}));
  std::ostringstream out;
  print_init_summary(out, s, "migration");
  CHECK(
      out.str() ==
      "schema legacy: 3 tables, 2 jobs in 2 lists, 1 table without a job\n"
      "  list orders_list: legacy.orders by id (bigint, primary key), ~1000 rows\n"
      "  list lines_list (after orders_list): legacy.lines by orders_id (bigint, not unique), rows "
      "unknown\n"
      "  no job for audit: no primary key, unique index or btree index to page it by\n"
      "1 note in jobs.yaml, above their lists: read them before the run\n"
      "wrote migration/jobs.yaml\n"
      "wrote migration/sql/V1__legacy_new_schema.sql: schema legacy_new, 3 tables\n"
      "wrote migration/sql/R__transforms.sql: 2 functions in schema xf\n"
      "next: reshape the scripts, then pgxform migrate -f migration/jobs.yaml, and validate, "
      "plan, rehearse and run\n");
}
