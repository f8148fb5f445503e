// capture_setup: the capture of a jobs file's capturing jobs put in place, whichever the method
// (change_capture.h for `changes: trigger`, logical_capture.h for `changes: logical`) — by run
// and catch-up before their first batch, and by `pgxform capture` ahead of them — and taken
// away (`capture --drop`).
//
// A job whose method changed in the jobs file gets the new capture first, then loses the old
// one, so that no change falls between the two (one recorded by both is refreshed twice, which
// is harmless). A job whose main pass had started, and whose capture was missing until now (a
// dropped trigger, a lost slot), has changes that no log holds: installing records that on its
// row (capture_state.h: capture_lost), which status and catch-up then say until the job is
// reset, and warns.
#pragma once

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "plan/jobs_file.h"

namespace pgxform {

// What installing did for one job.
struct CaptureInstalled {
  std::string job;
  std::vector<std::string> done;           // what changed; empty when all was in place
  std::optional<std::string> was_missing;  // its capture was missing after its main pass began
};

// The capture of every capturing job of `jobs`, in file order. The state schema must exist at
// the newest version, with the jobs registered. `command` names who installs, for the record.
std::vector<CaptureInstalled> install_captures(pqxx::connection& conn, const JobsFile& file,
                                               const std::map<std::string, ResolvedJob>& jobs,
                                               const std::string& command);

// Drops the capture of `job` (by either method, wherever it is); returns what it dropped.
std::vector<std::string> drop_captures(pqxx::connection& conn, const JobsFile& file,
                                       const std::string& job);

// The capture objects no capturing job of the file uses (change_capture.h: trigger_orphans,
// logical_capture.h: logical_orphans), one line each. Reads only.
std::vector<std::string> capture_orphans(pqxx::connection& conn, const JobsFile& file);
// Drops them; returns what it dropped.
std::vector<std::string> drop_capture_orphans(pqxx::connection& conn, const JobsFile& file);

}  // namespace pgxform
