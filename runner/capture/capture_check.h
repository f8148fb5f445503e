// capture_check: what the capture of a job (`changes: trigger` or `logical`, docs/catch-up.md)
// needs from the server and from the role — checked by run, catch-up, capture and validate
// before anything is written, each problem naming its fix (docs/security.md) — and whether a
// job's capture is in place now.
//
// Both methods change the captured tables (a trigger, or a place in a publication), which only
// their owner may do: the role must own each table whose capture is not in place yet, or be a
// member of its owner's role. `changes: logical` also needs PostgreSQL 14 or later, wal_level =
// logical, a role with REPLICATION, a free replication slot when the schema has none, CREATE on
// the database when its publication does not exist, and, on every captured table, a replica
// identity that carries the recorded column (the key of a deleted row, the old key of a changed
// one, are in the WAL only then).
#pragma once

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "plan/jobs_file.h"
#include "state/schema_name.h"

namespace pgxform {

// What the server and the role give `changes: logical` (read once per command).
struct ServerFacts {
  int version_num = 0;  // server_version_num
  std::string wal_level;
  bool replication = false;  // the role has REPLICATION (or is a superuser)
  std::string role;          // quoted
  int slots_used = 0, max_slots = 0;
  bool slot_exists = false;         // the schema's slot (a new one needs a free place)
  bool publication_exists = false;  // the schema's publication (a new one needs CREATE)
  bool can_create = false;          // CREATE on the database
  std::string database;             // quoted
};
// The problems of `facts` for changes: logical, each prefixed with `where` (the file and job
// that need it) and naming its fix. Pure.
std::vector<std::string> logical_server_problems(const ServerFacts& facts,
                                                 const std::string& where);

// One problem per missing requirement of the capturing jobs among `jobs`, each naming the jobs
// file, the job and what fixes it (an ALTER SYSTEM, an ALTER ROLE, a GRANT, an ALTER TABLE).
// Reads only.
std::vector<std::string> capture_problems(pqxx::connection& conn, const JobsFile& file,
                                          const std::map<std::string, ResolvedJob>& jobs);

// Why the capture of `job` does not record its changes now — "no capture trigger on
// legacy.items", "the replication slot pgxform_... does not exist" — none when it does, by its
// method or by the other one (a job moved from one to the other in the jobs file is captured by
// the old one until the new one is installed). Reads only.
std::optional<std::string> capture_missing(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const ResolvedJob& job);

}  // namespace pgxform
