// status_command: `pgxform status` — per job of the jobs file: status, rows, batches, last key,
// percent done (the rows done over the rows in all: those done plus the planner's estimate of
// the rows above the cursor, from the key's histogram, else the table's estimate; never from
// the key's position, which jumps where a sequence did), who holds it, and its last error. Reads
// only; writes nothing, not even the state schema.
//
// The status shown is the state row's (pending, running, done, failed), except that a job
// whose row says running while no session holds any of its tasks is `interrupted`: its runner
// died (kill -9, a lost host or connection) and the next run continues it after its last
// committed batch. A sliced job is interrupted when a slice's row says running and no slice
// is held (between two slices of a live run, no slice says running).
//
// --json prints {"jobs": [{"job": ..., "list": ..., "status": "pending" | "running" |
// "interrupted" | "done" | "failed", "rows_done": ...,
// "batches_done": ..., "last_key": ..., "percent": ..., "slices": ..., "slices_done": ...,
// "runner": ..., "started_at": ..., "updated_at": ..., "finished_at": ..., "error": ...,
// "sqlstate": ..., "error_first_key": ..., "error_last_key": ..., "trend": "insufficient" |
// "flat" | "growing", "set_aside": N, "waiting": null | "paused" | "throttled: ..." |
// "waiting for list X" | "waiting for job X", "rows_per_s": ..., "eta_s": ...,
// "batch_size": ..., "changes_pending": N, "oldest_change_s": S, "catch_up_runner": ...,
// "changes_per_s": ..., "changes_eta_s": ..., "catch_up_waiting": ..., "holders": [...],
// "in_flight_s": ..., "in_flight_wait": ..., "table": ..., "key": ..., "ignored": [...],
// "capture": ..., "capture_missing": ..., "capture_lost": ..., "slot": ...}, ...], "runners":
// [{"runner": ..., "command": ..., "workers": N, "threads": N, "tasks": N, "connections_free": N,
// "reserve": N}, ...], "ignored": [...], "overrides": ["job orders batch_size=5000",
// "all threads=2", ...]}: the settings `pgxform set` left in the control table, which every
// later run obeys until `set ... KEY=default`.
// A growing trend (trend.h) is also printed as a warning. changes_pending and oldest_change_s
// are null for a job without changes: trigger or logical; for one with it, the rows of its change
// log (change_log.h) and the age of the oldest (null when none is pending). While a catch-up
// holds the job (catch_up_runner, host:pid): changes_per_s, the keys its batches refreshed in the
// last minute per second (as rows_per_s), changes_eta_s the pending changes over that rate,
// and catch_up_waiting why it takes no batch now ("paused", "throttled: ...", "pause_ms N").
// "capture" says how a capturing job captures ("trigger", "logical"; null for another job),
// "capture_missing" why a job whose main pass began records no change now (its trigger or slot
// gone: "capture missing" in the table), "capture_lost" why its log lacks changes (a TRUNCATE the
// slot saw, a capture missing for a while); "slot", for changes: logical, the replication slot:
// {"name", "retained_wal_mb" (from its restart position to now), "read_age_s" (since its last
// read committed), "age_s" (since it was made), "wal_status"}.
//
// What the job is recorded to transform (job_identity.h): "table" (schema.table) and "key",
// null until a run recorded them; when the jobs file now names another table, key or function,
// the table says so under the job, with `pgxform reset JOB` (run refuses the job until then).
// Values of the control table out of their limits (setting_limits.h), which the runners ignore:
// a job's under it ("ignored": ["batch_size 9223372036854775807 > 1000000000 (job items)"]),
// `threads` of every runner below the jobs. The runners at work on the state schema
// (runner_pool.h), below the jobs: how many workers each has and why not more.
//
// The live figures (columns RATE, ETA, BATCH):
//   rows_per_s  rows committed by the job's own batches (not the ranges of bisect and
//               retry-failed, batch_log.h: BatchKind) in the last 60 s, over 60 s — or over
//               the time since the first of them started, when that is shorter, so that a job
//               at work for 10 s is not shown at a sixth of its rate; 0 for a running job that
//               committed nothing in that minute; null unless the job is running.
//   eta_s       the rows left over rows_per_s: the rows left as DONE% tells them (rows_done
//               times (100 - percent) / percent), else the planner's estimate less rows_done;
//               null when either is unknown or the rate is 0.
//   batch_size  the size the job's last batch asked for (batch_log.batch_size); null before
//               its first batch.
// Waiting reasons: "paused" (control table), "throttled: ..." (its runner says so in
// job_state.waiting), and, while a runner works on the file (some job of it is held), for a job
// not started or interrupted: "waiting for list X" (its list is after X, which is not done) or
// "waiting for job X" (X comes before it in its list and is not done). A job a runner holds is
// running, not waiting: its RUNNER column says who; "held by host:pid" is what a run says of
// a task another runner holds (progress.h).
//
// Batches in flight: "in_flight_s", the age of the oldest transaction of the sessions that hold
// the job's tasks (a batch: between batches a runner holds no transaction open), and
// "in_flight_wait", what it waits on (pg_stat_activity's wait_event_type:wait_event, and the
// backends pg_blocking_pids names), both null when none. Past k_slow_batch_factor (10) times the
// job's target_batch_ms (a fixed size's: 1 s), the table says so under the job, with
// `pgxform explain JOB`, and eta_s is null: how long the batch still takes, the rate
// cannot tell.
//
// Holders: "holders" lists every session that holds one of the job's task locks now: "task"
// (the job, or job#slice), "pid", "role", "application_name", "client_addr", "connected_at",
// "state", "state_since" (null where pg_stat_activity hides another role's session) and
// "recorded": whether it is the runner the job's row records as the last to claim it. The
// table says, under the job, who holds it and since when whenever that is not a recorded
// runner (holder_line): any role may take an advisory lock and name itself "pgxform host:pid".
//
// fetch (fetch_status: the state rows and what the leading tables say) -> compute
// (compute_status, pure) -> render (print_status_table, print_status_json).
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "analysis/trend.h"
#include "capture/logical_capture.h"
#include "catalog/table_stats.h"
#include "commands/command_options.h"
#include "database/database.h"
#include "plan/jobs_file.h"
#include "state/change_log.h"
#include "state/job_control.h"
#include "state/job_identity.h"
#include "state/runner_pool.h"
#include "state/state_locks.h"
#include "state/state_store.h"

namespace pgxform {

enum class StatusFormat { table, json };

struct StatusOptions : CommandOptions {
  StatusFormat format = StatusFormat::table;
  // --watch SECONDS: redraw every SECONDS until SIGINT/SIGTERM (status_watch.h).
  std::optional<double> watch_seconds;
};

int status_command(const StatusOptions& options, std::ostream& out);

// The span of time rows_per_s counts the rows of.
inline constexpr double k_rate_window_s = 60;

// What status reads about a batched job besides its state row: none of it when the job does
// not resolve against the catalog.
struct StatusFacts {
  // The job's rows in all: rows_done plus the planner's estimate of the rows above its cursor,
  // else (a sliced job) the table's estimate.
  std::optional<double> estimated_rows;
  std::vector<BatchSample> batches;        // only when there are enough for a trend
  long long recent_rows = 0;               // rows of its own batches committed in the last minute
  double recent_span_s = k_rate_window_s;  // since the first of them started, 1 to 60 s
  std::optional<long long> batch_size;     // the size its last batch asked for
  std::optional<JobIdentity> now;          // the job as the jobs file names it now, resolved
  // catch-up's batches (batch_log.catch_up) of the last minute: keys refreshed, over how long.
  long long recent_keys = 0;
  double recent_keys_span_s = k_rate_window_s;
};

struct StatusRow {
  JobStatus state;
  std::optional<double> percent;
  Trend trend = Trend::insufficient;
  // "paused": no new batch until resumed; "throttled: max_xact_age_s 12 > 10": its runner waits
  // for the database's health (health_throttle.h).
  std::optional<std::string> waiting;
  std::string paused_by;  // "job items", "list shop", "all"
  std::optional<double> rows_per_s, eta_s;
  std::optional<long long> batch_size;
  // With changes: trigger: its change log's rows and the oldest's age; none otherwise. While a
  // catch-up holds the job: the keys it refreshed per second over the last minute, the seconds
  // the pending changes take at that rate, and why it takes no batch now.
  std::optional<long long> changes_pending;
  std::optional<double> oldest_change_s;
  std::vector<TaskHolder> holders;  // the sessions that hold its tasks' locks now
  // What the state records the job transforms (job_identity.h); none before a run recorded it.
  std::optional<JobIdentity> recorded;
  // Set when the jobs file names another table, key or function now: what it names.
  std::optional<JobIdentity> names_now;
  // Control values out of their limits that would apply to it: ignored by its runner.
  std::vector<std::string> ignored;
  std::optional<double> changes_per_s, changes_eta_s;
  std::optional<std::string> catch_up_waiting;
  // The oldest batch in flight of its holders (its transaction's age), what it waits on
  // ("Lock:relation, blocked by backend 4242"), and whether it is slow: past
  // k_slow_batch_factor times the job's target_batch_ms, when its ETA is unknown.
  std::optional<double> in_flight_s;
  std::optional<std::string> in_flight_wait;
  bool slow_batch = false;
  long long target_batch_ms = 0;
  // How a capturing job captures; why its capture records nothing now (a started job's);
  // why its log lacks changes; with changes: logical, its slot.
  std::optional<std::string> capture, capture_missing, capture_lost;
  std::optional<SlotFigures> slot;
};

// What status reads of the capture (capture_check.h, capture_state.h, logical_capture.h).
struct CaptureFacts {
  std::map<std::string, std::string> missing;  // jobs whose main pass began, capture missing
  std::map<std::string, std::string> lost;     // job_state.capture_lost
  std::optional<SlotFigures> slot;
};

// Below the jobs: the runners at work on the state schema, and the control values out of their
// limits that concern whole runners (threads).
struct StatusRunners {
  std::vector<RunnerPool> pools;
  std::vector<std::string> ignored;
  // The live settings of the control table (`pgxform set`), "job orders batch_size=5000".
  std::vector<std::string> overrides;
};

struct StatusReport {
  std::vector<StatusRow> jobs;
  StatusRunners runners;
};

// What the table says under a job of a holder that is not the runner its row records: who,
// from where, since when, and how to end it.
std::string holder_line(const TaskHolder& holder);

// The status to show for a job's state row (see above).
std::string shown_status(const JobStatus& state);
// Percent done of one job; none when it cannot be told.
std::optional<double> percent_done(const JobStatus& state, bool step,
                                   const std::optional<StatusFacts>& facts);
// One row per job of the file, in file order; a job without a state row is pending.
// `control`: the control table's rows (job_control.h): a paused job that is not done is
// waiting for `pgxform resume`.
std::vector<StatusRow> compute_status(const JobsFile& file, const std::vector<JobStatus>& states,
                                      const std::map<std::string, StatusFacts>& facts,
                                      const std::vector<ControlRow>& control = {},
                                      const std::map<std::string, PendingChanges>& changes = {},
                                      const std::vector<TaskHolder>& holders = {},
                                      const std::map<std::string, RecordedJob>& recorded = {},
                                      const CaptureFacts& capture = {});

// The seconds left: the rows left (from `percent`, else from the estimate) over the rate.
std::optional<double> eta_of(const JobStatus& state, const std::optional<double>& percent,
                             const std::optional<double>& estimated_rows,
                             const std::optional<double>& rows_per_s);

// The rows of the file's jobs as status computes them, and the runners, read from the database
// once, on a connection of `contact` (database.h: the first frame of status --watch is the
// command's first contact, the next ones are not).
StatusReport read_status_report(const StatusOptions& options, const JobsFile& file,
                                Contact contact = Contact::first);

void print_status_table(std::ostream& out, const std::vector<StatusRow>& rows,
                        const StatusRunners& runners = {});
void print_status_json(std::ostream& out, const std::vector<StatusRow>& rows,
                       const StatusRunners& runners = {});

}  // namespace pgxform
