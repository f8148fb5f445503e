#include "commands/status_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iomanip>

#include "base/exit_code.h"
#include "base/output_format.h"
#include "base/text_check.h"
#include "capture/capture_check.h"
#include "catalog/catalog.h"
#include "database/database.h"
#include "output/json_output.h"
#include "output/progress.h"
#include "output/terminal_text.h"
#include "state/batch_log.h"
#include "state/capture_state.h"
#include "state/state_schema.h"

namespace pgxform {

namespace {

StatusFacts read_facts(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                       const JobStatus& state) {
  StatusFacts facts;
  pqxx::read_transaction tx(conn);
  if (state.batches_done > 0) {
    const RecentBatches recent = read_recent_batches(tx, schema, job.name, k_rate_window_s);
    facts.recent_rows = recent.rows;
    if (recent.span_s) facts.recent_span_s = std::clamp(*recent.span_s, 1.0, k_rate_window_s);
    facts.batch_size = recent.batch_size;
  }
  if (state.catch_up_runner) {
    const RecentBatches recent =
        read_recent_batches(tx, schema, job.name, k_rate_window_s, Phase::catch_up);
    facts.recent_keys = recent.rows;
    if (recent.span_s) facts.recent_keys_span_s = std::clamp(*recent.span_s, 1.0, k_rate_window_s);
  }
  if (state.status != "done" && state.batches_done > 0) {
    // The rows in all: those done and those the planner sees above the cursor, which holds
    // where the key space has jumps; a sliced job has no one cursor: the table's estimate.
    facts.estimated_rows =
        estimated_total_rows(tx, job, state.rows_done, state.last_key, state.slices);
  }
  // The same early warning as during the run: do the batches get slower per row? The job's
  // own batches only, as during the run: not the ranges of bisect and retry-failed.
  if (state.batches_done >= long(k_min_batches))
    for (const auto& b : read_batches(tx, schema, job.name)) {
      if (b.kind != BatchKind::batch) continue;
      BatchSample sample;
      sample.rows = b.rows;
      sample.asked = b.asked;
      sample.duration_ms = b.duration_ms;
      facts.batches.push_back(sample);
    }
  return facts;
}

std::map<std::string, StatusFacts> fetch_facts(pqxx::connection& conn, const JobsFile& file,
                                               const std::vector<JobStatus>& states) {
  const Preflight preflight = inspect_catalog(conn, file, {});
  for (const auto& p : preflight.problems) spdlog::warn("{}", p);
  std::map<std::string, StatusFacts> facts;
  for (const auto& [name, job] : preflight.jobs) {
    const auto state = std::find_if(states.begin(), states.end(),
                                    [&](const JobStatus& s) { return s.job == name; });
    if (state == states.end()) {
      facts[name] = {};  // never started: nothing to read
      facts[name].now = identity_of(job);
      continue;
    }
    try {
      facts[name] = read_facts(conn, StateSchema(file.state_schema), job, *state);
    } catch (const pqxx::sql_error& e) {
      spdlog::debug("{}: no estimate: {}", name, redact(e.what()));
    }
    facts[name].now = identity_of(job);
  }
  return facts;
}

// The capture of the file's capturing jobs: missing (for a job whose main pass began), lost, and
// the slot.
CaptureFacts fetch_capture(pqxx::connection& conn, const JobsFile& file,
                           const std::vector<JobStatus>& states) {
  CaptureFacts out;
  const StateSchema schema(file.state_schema);
  std::vector<std::string> started;
  for (const JobStatus& s : states)
    if (s.batches_done > 0 || s.status == "done") started.push_back(s.job);
  if (started.empty()) return out;
  const Preflight preflight = inspect_catalog(conn, file, started);
  pqxx::read_transaction tx(conn);
  for (const auto& [name, job] : preflight.jobs)
    if (job.captures)
      if (auto missing = capture_missing(tx, schema, job)) out.missing[name] = *missing;
  out.lost = captures_lost(tx, schema);
  out.slot = slot_figures(tx, schema);
  return out;
}

// A value from the state, the data or another session, on one line (terminal_text.h).
std::string text_or(const std::optional<std::string>& v, const std::string& fallback) {
  return v ? terminal_text(*v) : fallback;
}

}  // namespace

std::string shown_status(const JobStatus& state) {
  const bool held = state.runner.has_value();
  const bool claimed = state.slices <= 1 || state.slices_running > 0;
  return state.status == "running" && !held && claimed ? "interrupted" : state.status;
}

std::optional<double> percent_done(const JobStatus& state, bool step,
                                   const std::optional<StatusFacts>& facts) {
  if (step) return state.status == "done" ? 100.0 : 0.0;
  if (!facts) return std::nullopt;
  if (state.status == "done") return 100.0;
  if (state.batches_done == 0) return 0.0;
  // Rows, not the key's position: keys that jump (a sequence leapt to 4,000,000) say nothing
  // of the rows between them. Never 100 for a job that is not done: one a handful of rows
  // short rounds to 99.9, not 100.0.
  if (!facts->estimated_rows || *facts->estimated_rows <= 0) return std::nullopt;
  return std::min(99.9, 100.0 * double(state.rows_done) / *facts->estimated_rows);
}

std::optional<double> eta_of(const JobStatus& state, const std::optional<double>& percent,
                             const std::optional<double>& estimated_rows,
                             const std::optional<double>& rows_per_s) {
  if (!rows_per_s || *rows_per_s <= 0) return std::nullopt;
  std::optional<double> left;
  if (percent && *percent > 0 && *percent < 100)
    left = double(state.rows_done) * (100 - *percent) / *percent;
  else if (estimated_rows && *estimated_rows > 0)
    left = std::max(0.0, *estimated_rows - double(state.rows_done));
  if (!left) return std::nullopt;
  return *left / *rows_per_s;
}

namespace {

// What a job not started waits for while a runner works on the file: the first list of its
// list's `after:` that is not done, else the job before it in its list when that is not done.
std::optional<std::string> waiting_for(const JobsFile& file, const JobList& list, const Job& job,
                                       const std::map<std::string, std::string>& shown) {
  const auto done = [&](const std::string& name) {
    const auto s = shown.find(name);
    return s != shown.end() && s->second == "done";
  };
  for (const auto& name : list.after)
    for (const auto& other : file.lists)
      if (other.name == name)
        for (const auto& j : other.jobs)
          if (!done(j.name)) return "waiting for list " + name;
  for (const auto& j : list.jobs) {
    if (j.name == job.name) break;
    if (!done(j.name)) return "waiting for job " + j.name;
  }
  return std::nullopt;
}

// While a catch-up holds the job: its rate over the last minute, the pending changes' ETA at
// that rate, and what it waits for.
void catch_up_figures(StatusRow& row, const Job& job, const std::string& list,
                      const std::vector<ControlRow>& control,
                      const std::optional<StatusFacts>& facts) {
  if (!row.state.catch_up_runner) return;
  if (facts) {
    row.changes_per_s = double(facts->recent_keys) / facts->recent_keys_span_s;
    if (*row.changes_per_s > 0)
      row.changes_eta_s = double(row.changes_pending.value_or(0)) / *row.changes_per_s;
  }
  if (resolve_control(control, job.name, list).paused)
    row.catch_up_waiting = "paused";
  else
    row.catch_up_waiting = row.state.catch_up_waiting;
}

// The oldest batch in flight among the job's holders, what it waits on, and whether it is slow.
void in_flight_figures(StatusRow& row, const Job& job, const JobControl& control) {
  for (const auto& h : row.holders) {
    if (!h.in_flight_s || (row.in_flight_s && *row.in_flight_s >= *h.in_flight_s)) continue;
    row.in_flight_s = h.in_flight_s;
    row.in_flight_wait.reset();
    if (h.wait_event) row.in_flight_wait = *h.wait_event;
    for (std::size_t i = 0; i < h.blocked_by.size(); ++i)
      row.in_flight_wait = row.in_flight_wait.value_or("") + (i ? ", " : ", blocked by backend ") +
                           std::to_string(h.blocked_by[i]);
  }
  row.target_batch_ms = control.target_batch_ms.value_or(job.settings.target_batch_ms);
  if (row.target_batch_ms <= 0) row.target_batch_ms = (long long)k_fixed_batch_target_ms;
  row.slow_batch = row.in_flight_s &&
                   *row.in_flight_s * 1000 >= k_slow_batch_factor * double(row.target_batch_ms);
}

}  // namespace

namespace {

void capture_figures(StatusRow& row, const Job& job, const CaptureFacts& capture) {
  row.capture = capture_name(job.changes);
  if (const auto it = capture.missing.find(job.name); it != capture.missing.end())
    row.capture_missing = it->second;
  if (const auto it = capture.lost.find(job.name); it != capture.lost.end())
    row.capture_lost = it->second;
  if (job.changes == ChangeCapture::logical) row.slot = capture.slot;
}

}  // namespace

std::vector<StatusRow> compute_status(const JobsFile& file, const std::vector<JobStatus>& states,
                                      const std::map<std::string, StatusFacts>& facts,
                                      const std::vector<ControlRow>& control,
                                      const std::map<std::string, PendingChanges>& changes,
                                      const std::vector<TaskHolder>& holders,
                                      const std::map<std::string, RecordedJob>& recorded,
                                      const CaptureFacts& capture) {
  // A runner works on the file when it holds one of its jobs: only then does a job wait.
  std::map<std::string, std::string> shown;
  bool at_work = false;
  for (const auto& s : states) {
    shown[s.job] = s.status;
    at_work = at_work || s.runner.has_value();
  }
  std::vector<StatusRow> rows;
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs) {
      StatusRow row;
      const auto state = std::find_if(states.begin(), states.end(),
                                      [&](const JobStatus& s) { return s.job == job.name; });
      if (state != states.end()) {
        row.state = *state;
      } else {
        row.state.job = job.name;
        row.state.status = "pending";
      }
      row.state.list = list.name;
      row.state.status = shown_status(row.state);
      const auto f = facts.find(job.name);
      const std::optional<StatusFacts> job_facts =
          f == facts.end() ? std::nullopt : std::optional<StatusFacts>(f->second);
      row.percent = percent_done(row.state, job.is_step(), job_facts);
      if (job_facts && !job_facts->batches.empty())
        row.trend = analyze_batches(job_facts->batches).trend;
      if (!job.is_step()) row.ignored = resolve_control(control, job.name, list.name).ignored;
      if (const auto r = recorded.find(job.name); r != recorded.end()) {
        row.recorded = r->second.identity;
        if (job_facts && job_facts->now && !job_facts->now->same_source(*row.recorded))
          row.names_now = job_facts->now;
      }
      if (!job.is_step() && row.state.status != "done") {
        const JobControl c = resolve_control(control, job.name, list.name);
        if (c.paused) {
          row.waiting = "paused";
          row.paused_by = c.paused_by;
        } else if (row.state.waiting && row.state.runner) {
          row.waiting = row.state.waiting;  // a runner holds it and waits: "throttled: ..."
        }
      }
      for (const auto& h : holders)
        if (h.job == job.name) row.holders.push_back(h);
      if (!job.is_step())
        in_flight_figures(row, job, resolve_control(control, job.name, list.name));
      if (job.captures()) {
        const auto c = changes.find(job.name);
        row.changes_pending = c == changes.end() ? 0 : c->second.count;
        if (c != changes.end()) row.oldest_change_s = c->second.oldest_s;
        catch_up_figures(row, job, list.name, control, job_facts);
        capture_figures(row, job, capture);
      }
      if (!row.waiting && at_work && !row.state.runner &&
          (row.state.status == "pending" || row.state.status == "interrupted"))
        row.waiting = waiting_for(file, list, job, shown);
      if (job_facts) {
        row.batch_size = job_facts->batch_size;
        if (row.state.status == "running")
          row.rows_per_s = double(job_facts->recent_rows) / job_facts->recent_span_s;
        if (!row.slow_batch)
          row.eta_s = eta_of(row.state, row.percent, job_facts->estimated_rows, row.rows_per_s);
      }
      rows.push_back(row);
    }
  return rows;
}

namespace {

Json slot_json(const std::optional<SlotFigures>& slot) {
  if (!slot) return Json();
  return Json{{"name", slot->slot},
              {"retained_wal_mb", json_number(slot->retained_mb, 1)},
              {"read_age_s", json_number(slot->read_age_s, 0)},
              {"age_s", json_number(std::optional<double>(slot->age_s), 0)},
              {"wal_status", json_text(slot->wal_status)}};
}

Json holders_json(const std::vector<TaskHolder>& holders) {
  Json out = Json::array();
  for (const auto& h : holders)
    out.push_back({{"task", h.slice == 0 ? h.job : h.job + "#" + std::to_string(h.slice)},
                   {"pid", h.pid},
                   {"role", h.role},
                   {"application_name", h.application_name},
                   {"client_addr", json_text(h.client_addr)},
                   {"connected_at", json_text(h.connected_at)},
                   {"state", json_text(h.state)},
                   {"state_since", json_text(h.state_since)},
                   {"recorded", h.recorded}});
  return out;
}

}  // namespace

std::string holder_line(const TaskHolder& h) {
  std::string line = "held by backend " + std::to_string(h.pid) + " of role " + h.role + " ('" +
                     h.application_name + "'" + (h.client_addr ? ", from " + *h.client_addr : "") +
                     ")";
  if (h.slice > 0) line += " (slice " + std::to_string(h.slice) + ")";
  if (h.connected_at)
    line += ", connected since " + *h.connected_at +
            (h.state && h.state_since ? ", " + *h.state + " since " + *h.state_since : "");
  else
    line += ", since a time pg_stat_activity hides from this role (pg_read_all_stats shows it)";
  return line + ": not the runner recorded for the job; if it is no runner of yours, end it: " +
         "SELECT pg_terminate_backend(" + std::to_string(h.pid) + ")";
}

void print_status_json(std::ostream& out, const std::vector<StatusRow>& rows,
                       const StatusRunners& runners) {
  Json jobs = Json::array();
  for (const auto& row : rows) {
    const JobStatus& s = row.state;
    jobs.push_back({{"job", s.job},
                    {"list", s.list},
                    {"status", s.status},
                    {"rows_done", s.rows_done},
                    {"batches_done", s.batches_done},
                    {"last_key", json_text(s.last_key)},
                    {"percent", json_number(row.percent, 1)},
                    {"slices", s.slices},
                    {"slices_done", s.slices_done},
                    {"slices_held", s.slices_held},
                    {"runner", json_text(s.runner)},
                    {"started_at", json_text(s.started_at)},
                    {"updated_at", json_text(s.updated_at)},
                    {"finished_at", json_text(s.finished_at)},
                    {"error", json_text(s.error)},
                    {"sqlstate", json_text(s.sqlstate)},
                    {"error_first_key", json_text(s.error_first_key)},
                    {"error_last_key", json_text(s.error_last_key)},
                    {"trend", trend_name(row.trend)},
                    {"set_aside", s.set_aside},
                    {"waiting", json_text(row.waiting)},
                    {"rows_per_s", json_number(row.rows_per_s, 1)},
                    {"eta_s", json_number(row.eta_s, 0)},
                    {"batch_size", row.batch_size ? Json(*row.batch_size) : Json()},
                    {"changes_pending", row.changes_pending ? Json(*row.changes_pending) : Json()},
                    {"oldest_change_s", json_number(row.oldest_change_s, 1)},
                    {"catch_up_runner", json_text(s.catch_up_runner)},
                    {"changes_per_s", json_number(row.changes_per_s, 1)},
                    {"changes_eta_s", json_number(row.changes_eta_s, 0)},
                    {"catch_up_waiting", json_text(row.catch_up_waiting)},
                    {"holders", holders_json(row.holders)},
                    {"in_flight_s", json_number(row.in_flight_s, 1)},
                    {"in_flight_wait", json_text(row.in_flight_wait)},
                    {"table", row.recorded ? Json(row.recorded->table_text()) : Json()},
                    {"key", row.recorded ? Json(row.recorded->key_column) : Json()},
                    {"ignored", row.ignored},
                    {"capture", json_text(row.capture)},
                    {"capture_missing", json_text(row.capture_missing)},
                    {"capture_lost", json_text(row.capture_lost)},
                    {"slot", slot_json(row.slot)}});
  }
  Json pools = Json::array();
  for (const auto& pool : runners.pools) {
    const PoolFigures& f = pool.figures;
    pools.push_back({{"runner", terminal_text(pool.runner)},
                     {"command", terminal_text(pool.command)},
                     {"workers", f.workers},
                     {"threads", f.threads},
                     {"tasks", f.tasks},
                     {"connections_free", f.connections_free ? Json(*f.connections_free) : Json()},
                     {"reserve", f.reserve}});
  }
  print_json(out, Json{{"jobs", jobs},
                       {"runners", pools},
                       {"ignored", runners.ignored},
                       {"overrides", runners.overrides}});
}

namespace {

// The status as the table shows it: a sliced job's with its slices done, and how many workers
// hold its slices now (parallel: auto splits a job among idle workers).
std::string status_text(const JobStatus& s) {
  if (s.slices <= 1) return s.status;
  return s.status + " " + std::to_string(s.slices_done) + "/" + std::to_string(s.slices) +
         (s.slices_held > 0 ? " (" + std::to_string(s.slices_held) + " at work)" : "");
}

}  // namespace

namespace {

// The lines of a capturing job's capture: missing, lost, its slot.
void print_capture(std::ostream& out, const StatusRow& row) {
  const std::string& job = row.state.job;
  if (row.capture_lost)
    out << "    its change log lacks changes: " << terminal_text(*row.capture_lost)
        << ": pgxform reset " << terminal_text(job) << ", then run, re-covers them\n";
  if (!row.slot) return;
  const SlotFigures& slot = *row.slot;
  out << "    slot " << terminal_text(slot.slot);
  if (!slot.exists) {
    out << ": gone\n";
    return;
  }
  out << ": retains " << fixed(slot.retained_mb.value_or(0), 1) << " MB of WAL, ";
  if (slot.read_age_s)
    out << "read " << fixed(*slot.read_age_s, 0) << " s ago";
  else
    out << "never read";
  if (slot.wal_status && *slot.wal_status != "reserved")
    out << ", wal_status " << terminal_text(*slot.wal_status);
  out << "\n";
}

// The line of a capturing job: its pending changes, and the catch-up at work on them.
void print_changes(std::ostream& out, const StatusRow& row) {
  const JobStatus& s = row.state;
  if (row.capture_missing) {
    out << "    capture missing: " << terminal_text(*row.capture_missing) << ": pgxform capture "
        << terminal_text(s.job)
        << " installs it again; what changed meanwhile is in no log (pgxform reset "
        << terminal_text(s.job) << ", then run); " << *row.changes_pending << " changes pending\n";
    print_capture(out, row);
    return;
  }
  print_capture(out, row);
  if (*row.changes_pending == 0 && !s.catch_up_runner) {
    out << "    capturing changes: none pending\n";
    return;
  }
  out << "    capturing changes: " << *row.changes_pending << " pending";
  if (*row.changes_pending > 0)
    out << ", the oldest " << fixed(row.oldest_change_s.value_or(0), 0) << " s old";
  if (!s.catch_up_runner) {
    out << ": pgxform catch-up " << terminal_text(s.job) << "\n";
    return;
  }
  out << "; catch-up at work (" << terminal_text(*s.catch_up_runner) << "), "
      << rate_text(row.changes_per_s.value_or(0)) << " keys/s";
  if (row.changes_eta_s) out << ", ETA " << eta_text(*row.changes_eta_s);
  if (row.catch_up_waiting) out << "; " << terminal_text(*row.catch_up_waiting);
  out << "\n";
}

}  // namespace

void print_status_table(std::ostream& out, const std::vector<StatusRow>& rows,
                        const StatusRunners& runners) {
  // The STATUS column as wide as its longest entry ("interrupted 3/8").
  // LIST and JOB at least as wide as their longest name, so that no two columns run together.
  int status_width = 9, list_width = 14, job_width = 20, key_width = 20;
  for (const auto& row : rows) {
    status_width = std::max(status_width, int(status_text(row.state).size()) + 1);
    // A timestamptz key ("2026-11-21 12:28:55.857754+00") is wider than the column's default.
    key_width = std::max(key_width, int(text_or(row.state.last_key, "-").size()) + 2);
    list_width = std::max(list_width, int(row.state.list.size()) + 2);
    job_width = std::max(job_width, int(row.state.job.size()) + 2);
  }
  out << std::left << std::setw(list_width) << "LIST" << std::setw(job_width) << "JOB"
      << std::setw(status_width) << "STATUS" << std::right << std::setw(12) << "ROWS"
      << std::setw(9) << "BATCHES" << std::setw(8) << "DONE%" << std::setw(9) << "RATE"
      << std::setw(9) << "ETA" << std::setw(9) << "BATCH"
      << "  " << std::left << std::setw(key_width) << "LAST KEY"
      << "RUNNER\n";
  for (const auto& row : rows) {
    const JobStatus& s = row.state;
    out << std::left << std::setw(list_width) << s.list << std::setw(job_width) << s.job
        << std::setw(status_width) << status_text(s) << std::right << std::setw(12) << s.rows_done
        << std::setw(9) << s.batches_done << std::setw(8)
        << (row.percent ? fixed(*row.percent, 1) : "?") << std::setw(9)
        << (row.rows_per_s ? rate_text(*row.rows_per_s) : "-") << std::setw(9)
        << (row.eta_s ? eta_text(*row.eta_s) : "-") << std::setw(9)
        << (row.batch_size ? std::to_string(*row.batch_size) : "-") << "  " << std::left
        << std::setw(key_width) << text_or(s.last_key, "-") << text_or(s.runner, "") << "\n";
    if (s.set_aside > 0)
      out << "    " << s.set_aside
          << " key range(s) set aside in failed_batches: fix, then pgxform retry-failed " << s.job
          << "\n";
    if (row.trend == Trend::growing)
      out << "    warning: batches get slower per row as the job goes on (the O(N^2) signature);"
             " see pgxform profile and pgxform explain "
          << s.job << "\n";
    if (row.waiting && *row.waiting != "paused")
      out << "    " << terminal_text(*row.waiting) << "\n";
    if (row.waiting && *row.waiting == "paused")
      out << "    paused (" << terminal_text(row.paused_by)
          << "): no new batch until pgxform resume "
          << terminal_text(row.paused_by == "all"
                               ? std::string("--all")
                               : row.paused_by.substr(row.paused_by.find(' ') + 1))
          << "\n";
    for (const auto& h : row.holders)
      if (!h.recorded) out << "    " << terminal_text(holder_line(h)) << "\n";
    if (row.slow_batch)
      out << "    a batch in flight for " << fixed(*row.in_flight_s, 0) << " s, past "
          << fixed(k_slow_batch_factor, 0) << "x its target of " << row.target_batch_ms << " ms"
          << (row.in_flight_wait ? ", waiting on " + terminal_text(*row.in_flight_wait) : "")
          << ": ETA unknown; see pgxform explain " << terminal_text(s.job) << " --running\n";
    if (row.changes_pending) print_changes(out, row);
    if (s.error)
      out << "    error" << (s.sqlstate ? " (SQLSTATE " + terminal_text(*s.sqlstate) + ")" : "")
          << " in batch [" << text_or(s.error_first_key, "?") << ", "
          << text_or(s.error_last_key, "?") << "]: " << terminal_text(*s.error, Lines::indented)
          << "\n";
    if (row.names_now)
      out << "    recorded on " << terminal_text(row.recorded->text())
          << "; the jobs file now names " << terminal_text(row.names_now->text())
          << ": pgxform reset " << terminal_text(s.job) << " to start it over\n";
    for (const auto& ignored : row.ignored)
      out << "    ignored: " << terminal_text(ignored) << "\n";
  }
  for (const auto& pool : runners.pools)
    out << "runner " << terminal_text(pool.runner) << " (" << terminal_text(pool.command)
        << "): " << pool_text(pool.figures) << "\n";
  for (const auto& ignored : runners.ignored) out << "ignored: " << terminal_text(ignored) << "\n";
  for (const auto& text : runners.overrides)
    out << "set: " << terminal_text(text) << " (pgxform set ... KEY=default clears it)\n";
}

StatusReport read_status_report(const StatusOptions& options, const JobsFile& file,
                                Contact contact) {
  auto conn = connect(options.dsn, Access::read_write, contact);
  const StateSchema schema(file.state_schema);
  int version = 0;
  {
    pqxx::read_transaction tx(*conn);
    version = checked_state_version(tx, schema);  // a table dropped by hand: said as such
  }
  if (version > newest_state_version())
    spdlog::warn(
        "the state schema {} is at version {}, newer than this pgxform knows ({}): a newer "
        "pgxform wrote it, and status shows only what version {} has (a run refuses it); use "
        "that pgxform",
        schema.name, version, newest_state_version(), newest_state_version());
  const std::vector<JobStatus> states = StateStore(*conn, schema).read_status();
  std::vector<ControlRow> control;
  StatusRunners runners;
  if (has_feature(version, StateFeature::control)) {
    pqxx::read_transaction tx(*conn);
    control = read_all_control(tx, schema);
    runners.overrides = read_overrides(tx, schema);
    if (const auto threads = ignored_threads(tx, schema)) runners.ignored.push_back(*threads);
  }
  std::map<std::string, PendingChanges> changes;  // change_log.h
  std::vector<TaskHolder> holders;
  std::map<std::string, RecordedJob> recorded;
  {
    pqxx::read_transaction tx(*conn);
    changes = pending_changes(tx, schema);
    if (version > 0) holders = task_holders(tx, schema);
    recorded = read_identities(tx, schema);
    runners.pools = read_runner_pools(tx, schema);
  }
  const std::map<std::string, StatusFacts> facts = fetch_facts(*conn, file, states);
  return {compute_status(file, states, facts, control, changes, holders, recorded,
                         fetch_capture(*conn, file, states)),
          runners};
}

int status_command(const StatusOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const StatusReport report = read_status_report(options, file);
  if (options.format == StatusFormat::json)
    print_status_json(out, report.jobs, report.runners);
  else
    print_status_table(out, report.jobs, report.runners);
  return k_exit_ok;
}

}  // namespace pgxform
