// status_command: `pgxform status` — per job of the jobs file: status, rows, batches, last
// key, percent done (estimated from the key's position between its smallest and largest value
// for numeric and date/time keys, else from rows done against the planner's row estimate), who
// holds it, and its last error. Reads only; writes nothing, not even the state schema.
//
// --json prints {"jobs": [{"job": ..., "list": ..., "status": ..., "rows_done": ...,
// "batches_done": ..., "last_key": ..., "percent": ..., "slices": ..., "slices_done": ...,
// "runner": ..., "started_at": ..., "updated_at": ..., "finished_at": ..., "error": ...,
// "sqlstate": ..., "error_first_key": ..., "error_last_key": ..., "trend": "insufficient" |
// "flat" | "growing", "set_aside": N}, ...]}. A growing trend (trend.h) is also printed as a
// warning.
#pragma once

#include <ostream>
#include <string>

namespace pgxform {

enum class StatusFormat { table, json };

struct StatusOptions {
  std::string file = "jobs.yaml";
  std::string dsn;
  StatusFormat format = StatusFormat::table;
};

int status_command(const StatusOptions& options, std::ostream& out);

}  // namespace pgxform
