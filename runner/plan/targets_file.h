// targets_file: reads targets.yaml, the databases of a fleet run (fleet_run.h), into plain
// structs. Knows no database: the rows of a targets_query are read by the command layer
// (fleet_targets.h) and checked here like the file's own entries.
//
//   targets:                       # named targets, in the order a fleet run takes them
//     - name: s1                   # letters, digits, '_', '-', '.'; unique
//       dsn: "host=db1 dbname=shard1"   # a libpq connection string or URI, completed from
//                                       # the PG* environment like --dsn; or
//       service: shard2                 # a service of pg_service.conf (one of the two)
//       max_threads: 4             # at most this many of the fleet's workers (default: any)
//       host: db1                  # the server it shares with others, for max_threads_per_host
//                                  # (default: the host and port of its connection string)
//   targets_query:                 # and/or: the rows (name, dsn) of a query on one database
//     dsn: "dbname=coordinator"
//     sql: "SELECT name, dsn FROM shards ORDER BY name"
//   max_threads_per_host: 8        # at most this many workers on one host (default: any)
//
// A password is never written in the file (it would be in every copy, backup and diff): a
// connection string with one is refused, pointing at libpq's passfile (~/.pgpass) or
// PGPASSWORD. Every problem is a TargetsFileError `file:line: message` (exit 2).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/errors.h"

namespace pgxform {

class TargetsFileError : public InputError {
 public:
  TargetsFileError(const std::string& file, int line, const std::string& message);
};

struct FleetTarget {
  std::string name;
  std::string dsn;  // the connection string: `dsn`, or "service=NAME" of `service`
  std::optional<int> max_threads;
  std::string host;  // as written; empty: the fleet takes it from the connection string
  int line = 0;      // of its entry (of targets_query for a queried one)
};

struct TargetsQuery {
  std::string dsn;
  std::string sql;
  int line = 0;
};

struct TargetsFile {
  std::string path;
  std::vector<FleetTarget> targets;  // the file's own; a query's rows are added after them
  std::optional<TargetsQuery> query;
  std::optional<int> max_threads_per_host;
};

TargetsFile parse_targets_file(const std::string& path);
TargetsFile parse_targets_text(const std::string& text, const std::string& path);

// A row of targets_query, as read: name, dsn, and optionally max_threads and host (NULL: none).
struct TargetRow {
  std::optional<std::string> name;
  std::optional<std::string> dsn;
  std::optional<std::string> max_threads;
  std::optional<std::string> host;
};
// Adds the query's rows to `file.targets`, each checked as an entry of the file is (a
// duplicate name, a password, a bad name); problems name the query's line and the row.
void add_queried_targets(TargetsFile& file, const std::vector<TargetRow>& rows);

// The target named `name`; a TargetsFileError (with the nearest name) when there is none.
const FleetTarget& find_target(const TargetsFile& file, const std::string& name);

}  // namespace pgxform
