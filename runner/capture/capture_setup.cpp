#include "capture/capture_setup.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/redaction.h"
#include "capture/capture_check.h"
#include "capture/change_capture.h"
#include "capture/logical_capture.h"
#include "capture/slot_reader.h"
#include "state/capture_state.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

const std::string& lock_timeout_of(const JobsFile& file, const std::string& job) {
  const Job* spec = file.find_job(job);
  return spec ? spec->settings.lock_timeout : file.defaults.lock_timeout;
}

// The jobs of the file with `capture`, by name.
std::vector<std::string> jobs_with(const JobsFile& file, ChangeCapture capture) {
  std::vector<std::string> out;
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs)
      if (!job.is_step() && job.changes == capture) out.push_back(job.name);
  return out;
}

// What the slot holds still goes to the log before a job's part of it goes: a change read is
// kept (catch-up refreshes it), a change left in a dropped slot would be lost.
// A slot that cannot be read (lost, say) holds nothing to keep: it goes all the same.
void read_slot_first(pqxx::connection& conn, const JobsFile& file) {
  RunMetrics metrics;
  try {
    SlotReader(StateSchema(file.state_schema), file.max_slot_retained_mb, metrics)
        .read(conn, SlotReader::Wait::yes);
  } catch (const pqxx::sql_error& e) {
    spdlog::warn("could not read the replication slot before it goes: {}", redact(e.what()));
  }
}

bool has_logical_rows(pqxx::connection& conn, const StateSchema& schema, const std::string& job) {
  pqxx::read_transaction tx(conn);
  for (const CapturedColumn& c : captured_columns(tx, schema))
    if (c.job == job) return true;
  return false;
}

bool has_triggers(pqxx::connection& conn, const StateSchema& schema, const std::string& job) {
  pqxx::read_transaction tx(conn);
  return has_capture_triggers(tx, schema, job);
}

}  // namespace

std::vector<CaptureInstalled> install_captures(pqxx::connection& conn, const JobsFile& file,
                                               const std::map<std::string, ResolvedJob>& jobs,
                                               const std::string& command) {
  const StateSchema schema(file.state_schema);
  std::vector<const ResolvedJob*> capturing, logical;
  for (const auto& list : file.lists)
    for (const auto& spec : list.jobs)
      if (const auto it = jobs.find(spec.name); it != jobs.end() && it->second.captures) {
        capturing.push_back(&it->second);
        if (it->second.capture == ChangeCapture::logical) logical.push_back(&it->second);
      }
  std::vector<CaptureInstalled> out;
  StateStore store(conn, schema);
  const std::vector<JobStatus> states = store.read_status();
  {
    pqxx::read_transaction tx(conn);
    for (const ResolvedJob* job : capturing) {
      CaptureInstalled installed{job->name, {}, std::nullopt};
      const auto state = std::find_if(states.begin(), states.end(),
                                      [&](const JobStatus& s) { return s.job == job->name; });
      const bool started =
          state != states.end() && (state->batches_done > 0 || state->status == "done");
      if (started) installed.was_missing = capture_missing(tx, schema, *job);
      out.push_back(installed);
    }
  }
  // The slot's creation waits for every transaction in progress: all logical jobs at once.
  const std::vector<std::string> logical_done =
      logical.empty()
          ? std::vector<std::string>{}
          : install_logical(conn, schema, logical, lock_timeout_of(file, logical.front()->name));
  for (std::size_t i = 0; i < capturing.size(); ++i) {
    const ResolvedJob& job = *capturing[i];
    CaptureInstalled& installed = out[i];
    const std::string& lock_timeout = lock_timeout_of(file, job.name);
    if (job.capture == ChangeCapture::logical) {
      installed.done = logical_done;
      if (has_triggers(conn, schema, job.name) &&
          drop_capture(conn, schema, job.name, lock_timeout) > 0)
        installed.done.push_back("its capture triggers dropped (changes: logical now)");
    } else {
      if (install_capture(conn, schema, job, lock_timeout) > 0)
        installed.done.push_back("capture triggers installed");
      if (has_logical_rows(conn, schema, job.name)) {
        read_slot_first(conn, file);
        for (std::string& d : drop_logical(conn, schema, job.name, lock_timeout))
          installed.done.push_back(d + " (changes: trigger now)");
      }
    }
    if (!installed.was_missing) continue;
    const std::string reason = "its capture was missing (" + *installed.was_missing +
                               ") after its main pass began, until " + command +
                               " installed it again: changes made meanwhile are not in the log";
    pqxx::work tx(conn);
    record_capture_lost(tx, schema, job.name, reason);
    tx.commit();
    spdlog::warn("{}: {}; re-cover them: pgxform reset {} then run (or pgxform verify {} --repair)",
                 job.name, reason, job.name, job.name);
  }
  return out;
}

std::vector<std::string> drop_captures(pqxx::connection& conn, const JobsFile& file,
                                       const std::string& job) {
  const StateSchema schema(file.state_schema);
  const std::string& lock_timeout = lock_timeout_of(file, job);
  std::vector<std::string> done;
  const int triggers = drop_capture(conn, schema, job, lock_timeout);
  if (triggers > 0) done.push_back(std::to_string(triggers) + " capture trigger(s) dropped");
  if (has_logical_rows(conn, schema, job)) read_slot_first(conn, file);
  for (std::string& d : drop_logical(conn, schema, job, lock_timeout)) done.push_back(d);
  return done;
}

std::vector<std::string> capture_orphans(pqxx::connection& conn, const JobsFile& file) {
  const StateSchema schema(file.state_schema);
  std::vector<std::string> out;
  pqxx::read_transaction tx(conn);
  for (const CaptureTrigger& t :
       trigger_orphans(tx, schema, jobs_with(file, ChangeCapture::trigger)))
    out.push_back("trigger " + t.name + " on " + t.table_sql + " records the changes of job " +
                  t.job + " of state schema " + t.state_schema);
  for (std::string& o : logical_orphans(tx, schema, jobs_with(file, ChangeCapture::logical)))
    out.push_back(o);
  return out;
}

std::vector<std::string> drop_capture_orphans(pqxx::connection& conn, const JobsFile& file) {
  const StateSchema schema(file.state_schema);
  const std::string& lock_timeout = file.defaults.lock_timeout;
  std::vector<std::string> done =
      drop_trigger_orphans(conn, schema, jobs_with(file, ChangeCapture::trigger), lock_timeout);
  for (std::string& d :
       drop_logical_orphans(conn, schema, jobs_with(file, ChangeCapture::logical), lock_timeout))
    done.push_back(d);
  return done;
}

}  // namespace pgxform
