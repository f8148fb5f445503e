#include "cli/cli.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <functional>
#include <iostream>
#include <regex>

#include "base/errors.h"
#include "base/exit_code.h"
#include "base/name_suggestion.h"
#include "base/output_format.h"
#include "base/setting_limits.h"
#include "base/stop_signal.h"
#include "base/text_check.h"
#include "commands/catch_up_command.h"
#include "commands/control_command.h"
#include "commands/explain_command.h"
#include "commands/fleet_profile.h"
#include "commands/fleet_run.h"
#include "commands/fleet_status.h"
#include "commands/fleet_targets.h"
#include "commands/fleet_watch.h"
#include "commands/init_command.h"
#include "commands/plan_command.h"
#include "commands/profile_command.h"
#include "commands/rehearse_command.h"
#include "commands/reset_command.h"
#include "commands/retry_failed_command.h"
#include "commands/run_command.h"
#include "commands/running_batch.h"
#include "commands/script_commands.h"
#include "commands/status_command.h"
#include "commands/status_watch.h"
#include "commands/validate_command.h"
#include "commands/verify_command.h"
#include "database/database.h"
#include "output/logging.h"
#include "output/run_metrics.h"
#include "plan/jobs_file.h"

namespace po = boost::program_options;

namespace pgxform {

namespace {

// A command line after parsing: its options, and the job names given as arguments.
struct Parsed {
  po::variables_map vm;
  std::vector<std::string> jobs;

  bool has(const char* option) const { return vm.count(option) > 0; }
  template <typename T>
  T get(const char* option) const {
    return vm[option].as<T>();
  }
  template <typename T>
  std::optional<T> optional(const char* option) const {
    return has(option) ? std::optional<T>(get<T>(option)) : std::nullopt;
  }
  std::vector<std::string> all(const char* option) const {
    return has(option) ? get<std::vector<std::string>>(option) : std::vector<std::string>();
  }
  // The options struct of a command, with what every command shares filled in.
  template <typename Options>
  Options options() const {
    Options o;
    o.file = get<std::string>("file");
    o.dsn = get<std::string>("dsn");
    return o;
  }
  std::string one_job(const char* command) const {
    if (jobs.size() != 1) throw UsageError(std::string(command) + " takes exactly one job");
    return jobs.front();
  }
};

enum class Arguments { none, jobs };
// Whether the command reads a jobs file (-f FILE) or, as init, writes one.
enum class JobsFileOption { read, none };

// What a command does with --targets FILE (a fleet, fleet_run.h):
//   each    runs once per target (or the one --target names), one after the other, each with
//           the target's connection string as its --dsn, under a line "== target NAME";
//   own     runs over the fleet itself (run: one budget; status: a line per target; profile:
//           one HTML report comparing the targets);
//   refuse  makes no sense over a fleet (explain, rehearse: about one database's plans and
//           timings): refused, naming --dsn.
enum class Fleet { each, own, refuse };

// One command of the table below: its name, its line in `pgxform --help`, its own --help
// (usage line and what it does), its options beyond the common ones, and how it runs.
struct Command {
  const char* name;
  const char* listing;
  const char* usage;
  const char* about;
  Arguments arguments;
  std::function<void(po::options_description_easy_init)> add_options;
  std::function<int(const Parsed&, std::ostream&)> run;
  JobsFileOption jobs_file = JobsFileOption::read;
  Fleet fleet = Fleet::each;
};

// pause, resume, set --list / --job: what their NAMEs are (a name may be both).
std::optional<ControlScope> names_are(const Parsed& p) {
  if (p.has("list") && p.has("job")) throw UsageError("--list and --job: one or the other");
  if (p.has("list")) return ControlScope::list;
  if (p.has("job")) return ControlScope::job;
  return std::nullopt;
}

// set --threads N: a whole number (its range is the command's to check), or default.
int set_threads_option(const std::string& text) {
  int threads = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), threads);
  if (error != std::errc() || end != text.data() + text.size())
    throw UsageError("set: --threads must be a number of threads from 1 to " +
                     std::to_string(k_threads.max) + ", or default");
  return threads;
}

FleetOrder fleet_order_option(const Parsed& p) {
  const std::string order = p.optional<std::string>("order").value_or("file");
  if (order == "file") return FleetOrder::file;
  if (order == "size") return FleetOrder::size;
  throw UsageError("--order is file or size, not '" + order + "'");
}

int threads_option(const Parsed& p) {
  const int threads = p.get<int>("threads");
  if (threads < 0 || threads > k_threads.max)
    throw UsageError(
        "--threads must be 0 (the jobs file's defaults.threads) or a number of "
        "threads from 1 to " +
        std::to_string(k_threads.max));
  return threads;
}

// --reserve-connections: what a runner's pool leaves free on the server (worker_pool.h).
int reserve_option(const Parsed& p) {
  const int reserve = p.get<int>("reserve-connections");
  if (!k_reserve_connections.contains(reserve))
    throw UsageError("--reserve-connections must be a number of connections from 0 to " +
                     std::to_string(k_reserve_connections.max));
  return reserve;
}

const char* const k_reserve_help =
    "connections left free on the server for everyone else: the workers take no more than the "
    "rest";

// --metrics-port and --metrics-address: where run serves its metrics, if anywhere.
std::optional<MetricsEndpoint> metrics_option(const Parsed& p) {
  if (!p.has("metrics-port")) {
    if (p.has("metrics-address"))
      throw UsageError("--metrics-address needs --metrics-port, the port to serve the metrics on");
    return std::nullopt;
  }
  MetricsEndpoint endpoint;
  endpoint.port = p.get<int>("metrics-port");
  if (endpoint.port < 1 || endpoint.port > 65535)
    throw UsageError("--metrics-port must be a TCP port from 1 to 65535, not " +
                     std::to_string(endpoint.port));
  if (p.has("metrics-address")) {
    endpoint.address = p.get<std::string>("metrics-address");
    if (!is_ip_address(endpoint.address))
      throw UsageError("--metrics-address must be an IPv4 or IPv6 address (127.0.0.1, ::1), not '" +
                       endpoint.address + "'");
  }
  return endpoint;
}

// --lock-timeout DURATION: a whole number and its unit (ms, s, min, h), more than 0.
std::optional<LockTimeout> lock_timeout_option(const Parsed& p) {
  if (!p.has("lock-timeout")) return std::nullopt;
  const std::string text = p.get<std::string>("lock-timeout");
  static const std::regex k_duration(R"(^([0-9]{1,9})\s*(ms|s|min|h)$)");
  std::smatch m;
  if (!std::regex_match(text, m, k_duration) || std::stoll(m[1]) == 0)
    throw UsageError(
        "--lock-timeout takes a duration with its unit, more than 0: 30s, 5min, "
        "500ms, 1h; not '" +
        text + "'");
  const long long n = std::stoll(m[1]);
  const long long unit = m[2] == "ms" ? 1 : m[2] == "s" ? 1000 : m[2] == "min" ? 60000 : 3600000;
  return LockTimeout{std::chrono::milliseconds(n * unit), text};
}

// --watch [SECONDS]: `--watch=5` or `--watch 5` (the number then parses as an argument).
double watch_seconds_option(const Parsed& p) {
  std::string text = p.get<std::string>("watch");
  if (text.empty() && p.jobs.size() == 1)
    text = p.jobs.front();
  else if (!p.jobs.empty())
    throw UsageError("status takes no job names (unexpected '" + p.jobs.back() + "')");
  if (text.empty()) return k_default_watch_seconds;
  std::size_t used = 0;
  double seconds = 0;
  try {
    seconds = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(seconds >= 0.1 && seconds <= k_max_watch_seconds))
    throw UsageError("--watch takes seconds from 0.1 to " + fixed(k_max_watch_seconds, 0) +
                     ", not '" + text + "'");
  return seconds;
}

// The option the names on the command line (jobs, lists) are stored under: not "job", which
// pause, resume and set have as a flag of their own (--job).
constexpr const char* k_positional = "positional-name";

// Every string on the command line may reach the database or a log line (text_check.h).
void check_text(const Parsed& p) {
  for (const auto& [name, value] : p.vm) {
    std::vector<std::string> texts;
    if (const auto* one = boost::any_cast<std::string>(&value.value())) texts.push_back(*one);
    if (const auto* many = boost::any_cast<std::vector<std::string>>(&value.value())) texts = *many;
    const std::string option = name == k_positional ? "a job name" : "--" + name;
    for (const auto& text : texts)
      if (const auto flaw = text_flaw(text)) throw UsageError(option + " holds " + flaw->what);
  }
}

void no_options(po::options_description_easy_init) {}

// The commands, in the order `pgxform --help` lists them.
const Command k_commands[] = {
    {"init", "init     write a starting migration (jobs.yaml, sql/) from a legacy schema",
     "init --schema SCHEMA [--target-schema NAME] [--dir DIR] [--dsn DSN]",
     "Reads the catalog of SCHEMA (tables, columns, keys, indexes, foreign keys) and\n"
     "writes a starting migration into DIR: jobs.yaml, one job per table with a\n"
     "usable key, in lists ordered by the foreign keys; sql/V1__<target>_schema.sql,\n"
     "the target tables as copies of the legacy ones; sql/R__transforms.sql, one\n"
     "function per job copying its rows. Reads catalogs only; never overwrites a file.",
     Arguments::none,
     [](po::options_description_easy_init add) {
       add("schema", po::value<std::string>(), "the legacy schema to copy (required)")(
           "target-schema", po::value<std::string>(),
           "the schema the V1 script creates (default: SCHEMA_new)")(
           "dir", po::value<std::string>()->default_value("."),
           "where to write jobs.yaml and sql/ (created when missing)");
     },
     [](const Parsed& p, std::ostream& out) {
       InitOptions o;
       o.dsn = p.get<std::string>("dsn");
       o.schema = p.optional<std::string>("schema").value_or("");
       if (o.schema.empty()) throw UsageError("init needs --schema, the legacy schema to copy");
       o.target_schema = p.optional<std::string>("target-schema").value_or("");
       if (p.has("target-schema") && o.target_schema.empty())
         throw UsageError("--target-schema may not be empty");
       o.dir = p.get<std::string>("dir");
       return init_command(o, out);
     },
     JobsFileOption::none},
    {"run", "run      run the jobs of a jobs file (resumes where the last run stopped)",
     "run [-f FILE] [--dsn DSN] [--threads N] [--reserve-connections N] [--only NAME]...\n"
     "                   [--exclude NAME]... [--accept-changed JOB]... [--no-migrate]\n"
     "                   [--metrics-port N [--metrics-address ADDRESS]]\n"
     "                   [--lock-timeout DURATION]\n"
     "                   [--targets FILE [--target NAME] [--order file|size]]",
     "Runs the jobs of FILE, each list once the lists it is after are done,\n"
     "resuming every job after its last committed batch.",
     Arguments::none,
     [](po::options_description_easy_init add) {
       add("threads", po::value<int>()->default_value(0),
           "worker threads, one connection each (default: defaults.threads, else 4)")(
           "reserve-connections", po::value<int>()->default_value(k_default_reserve_connections),
           k_reserve_help)("only", po::value<std::vector<std::string>>(),
                           "run only this list or job (repeatable)")(
           "exclude", po::value<std::vector<std::string>>(), "skip this list or job (repeatable)")(
           "accept-changed", po::value<std::vector<std::string>>(),
           "go on with JOB although its function changed since it started (repeatable)")(
           "no-migrate", "do not apply pending scripts first")(
           "metrics-port", po::value<int>(),
           "serve Prometheus metrics on this port while the run lasts (http://ADDRESS:N/metrics)")(
           "metrics-address", po::value<std::string>(),
           "the address to serve the metrics on (default: 127.0.0.1)")(
           "lock-timeout", po::value<std::string>(),
           "give up waiting for a job, the setup or the scripts that another session holds "
           "after DURATION (30s, 5min) (default: wait)")(
           "order", po::value<std::string>(),
           "with --targets: start the targets in the file's order (file, the default) or the "
           "largest database first (size)");
     },
     [](const Parsed& p, std::ostream&) {
       auto o = p.options<RunOptions>();
       o.threads = threads_option(p);
       o.reserve_connections = reserve_option(p);
       o.only = p.all("only");
       o.exclude = p.all("exclude");
       o.accept_changed = p.all("accept-changed");
       o.migrate = !p.has("no-migrate");
       o.metrics = metrics_option(p);
       o.lock_timeout = lock_timeout_option(p);
       if (!p.has("targets")) {
         if (p.has("order")) throw UsageError("--order goes with --targets");
         return run_command(o);
       }
       FleetRunOptions fleet;
       fleet.run = o;
       fleet.targets = p.get<std::string>("targets");
       fleet.target = p.optional<std::string>("target").value_or("");
       fleet.order = fleet_order_option(p);
       return fleet_run_command(fleet);
     },
     JobsFileOption::read, Fleet::own},
    {"capture", "capture [JOB...] [--drop [--orphans]]  install (or drop) the capture of changes",
     "capture [-f FILE] [--dsn DSN] [JOB...] [--drop [--orphans]]",
     "Installs the capture of the jobs with changes: trigger (triggers on their tables) or\n"
     "changes: logical (a publication and a replication slot), as run does before a job's\n"
     "first batch, so that every change from now on is recorded for catch-up. --drop\n"
     "removes it (triggers, functions, slot, publication); the changes recorded stay.\n"
     "--drop --orphans removes the capture that no capturing job of the file uses: of a\n"
     "job renamed or removed, or of another state_schema.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("drop", "remove the capture instead (at the end of the migration)")(
           "orphans", "with --drop: remove the capture no job of the file uses");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<CaptureOptions>();
       o.jobs = p.jobs;
       o.action = p.has("drop") ? CaptureAction::drop : CaptureAction::install;
       o.orphans = p.has("orphans");
       return capture_command(o, out);
     }},
    {"catch-up", "catch-up [JOB...]  re-apply the changes captured since the main pass read them",
     "catch-up [-f FILE] [--dsn DSN] [JOB...] [--follow] [--until N] [--threads N]\n"
     "                   [--reserve-connections N] [--metrics-port N [--metrics-address ADDRESS]]",
     "Makes each capturing job's target complete again: refreshes the keys at or below\n"
     "its cursor that changed, through its refresh_function, and continues its main\n"
     "pass for keys above the cursor. Exit 0 when every job's main pass is done and\n"
     "its change log is empty.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("follow", "keep refreshing as changes arrive, until SIGINT or SIGTERM")(
           "until", po::value<long long>(), "stop once at most N changes per job are left")(
           "threads", po::value<int>()->default_value(0),
           "jobs caught up at once, one connection each (default: defaults.threads, else 4)")(
           "reserve-connections", po::value<int>()->default_value(k_default_reserve_connections),
           k_reserve_help)(
           "metrics-port", po::value<int>(),
           "serve Prometheus metrics on this port while it lasts (http://ADDRESS:N/metrics)")(
           "metrics-address", po::value<std::string>(),
           "the address to serve the metrics on (default: 127.0.0.1)");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<CatchUpOptions>();
       o.jobs = p.jobs;
       o.follow = p.has("follow");
       o.until = p.optional<long long>("until");
       if (o.until && *o.until < 0) throw UsageError("--until must be 0 or more");
       o.threads = threads_option(p);
       o.reserve_connections = reserve_option(p);
       o.metrics = metrics_option(p);
       return catch_up_command(o, out);
     }},
    {"status", "status   show each job's status, rows, rate, ETA and what it waits for",
     "status [-f FILE] [--dsn DSN] [--json] [--watch [SECONDS]]",
     "Shows each job's status, rows and batches done, percent done, rows per second\n"
     "over the last minute, ETA, batch size, last key, the runner holding it and\n"
     "what it waits for. --watch redraws it every SECONDS (default 2) until Ctrl-C.\n"
     "Writes nothing.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("json", "print JSON: {\"jobs\": [{\"job\": ..., \"status\": ...}, ...]}")(
           "watch", po::value<std::string>()->implicit_value(""),
           "show it again every SECONDS (default 2) until interrupted; with --json one line "
           "per refresh");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<StatusOptions>();
       o.format = p.has("json") ? StatusFormat::json : StatusFormat::table;
       if (p.has("watch")) {
         o.watch_seconds = watch_seconds_option(p);
         const bool terminal = &out == &std::cout && isatty(STDOUT_FILENO) == 1;
         const WatchScreen screen = terminal ? WatchScreen::redraw : WatchScreen::append;
         if (p.has("targets"))
           return watch_fleet_status(o, read_targets(p.get<std::string>("targets")),
                                     p.optional<std::string>("target").value_or(""), screen, out);
         return watch_status(o, screen, out);
       }
       if (!p.jobs.empty())
         throw UsageError("status takes no job names (unexpected '" + p.jobs.front() + "')");
       if (p.has("targets"))
         return fleet_status_command(o, read_targets(p.get<std::string>("targets")),
                                     p.optional<std::string>("target").value_or(""), out);
       return status_command(o, out);
     },
     JobsFileOption::read, Fleet::own},
    {"migrate", "migrate  apply the pending V and changed R scripts of scripts_dir",
     "migrate [-f FILE] [--dsn DSN]",
     "Applies the pending V<version>__<description>.sql scripts of scripts_dir in\n"
     "version order, each in its own transaction (unless its first line is\n"
     "-- pgxform: no-transaction), then the R__<description>.sql scripts that are\n"
     "new or changed. Records each in pgxform.script_history.",
     Arguments::none, no_options,
     [](const Parsed& p, std::ostream& out) {
       return migrate_command(p.options<CommandOptions>(), out);
     }},
    {"info", "info     list every script: applied, pending, changed, missing",
     "info [-f FILE] [--dsn DSN]",
     "Lists every script: applied (when, how long), pending, changed, outdated\n"
     "(an R script to apply again), missing from disk. Writes nothing.",
     Arguments::none, no_options,
     [](const Parsed& p, std::ostream& out) {
       return info_command(p.options<CommandOptions>(), out);
     }},
    {"repair", "repair   accept the new content of changed, applied V scripts",
     "repair [-f FILE] [--dsn DSN]",
     "Records the current content of applied V scripts that changed on disk, on\n"
     "purpose, so that migrate and run go on.",
     Arguments::none, no_options,
     [](const Parsed& p, std::ostream& out) {
       return repair_command(p.options<CommandOptions>(), out);
     }},
    {"validate", "validate every check of run's preflight, and warnings; writes nothing",
     "validate [-f FILE] [--dsn DSN]",
     "Every check of run's preflight, and warnings for what would make a run slow\n"
     "or wrong (a key without an index, a table never analyzed, NULL keys, a\n"
     "function not VOLATILE). Reads catalogs only; writes nothing. Exit 0, or 2\n"
     "with every problem listed.",
     Arguments::none, no_options,
     [](const Parsed& p, std::ostream& out) {
       return validate_command(p.options<ValidateOptions>(), out);
     }},
    {"plan", "plan     the lists and jobs as run would schedule them, with estimates",
     "plan [-f FILE] [--dsn DSN] [--threads N] [--json]",
     "The lists and jobs in the order and parallelism the run would use, with\n"
     "estimated rows and batches per job. Writes nothing.",
     Arguments::none,
     [](po::options_description_easy_init add) {
       add("threads", po::value<int>()->default_value(0), "threads the run would use")(
           "json", "print JSON");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<PlanOptions>();
       o.threads = threads_option(p);
       o.format = p.has("json") ? PlanFormat::json : PlanFormat::text;
       return plan_command(o, out);
     }},
    {"profile", "profile [JOB...] [--json] [--html FILE]  batch figures and trend per job",
     "profile [-f FILE] [--dsn DSN] [JOB...] [--json] [--html FILE]",
     "Per job: batches, rows, rows per second, p50/p95/max batch duration, the\n"
     "trend of the cost per row (flat, growing: the O(N^2) signature) and an ETA\n"
     "for unfinished jobs. Reads pgxform.batch_log; writes nothing.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("json", "print JSON: {\"jobs\": [{\"job\": ..., \"trend\": ...}, ...]}")(
           "html", po::value<std::string>(),
           "also write a self-contained HTML report to this file");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<ProfileOptions>();
       o.jobs = p.jobs;
       o.format = p.has("json") ? ProfileFormat::json : ProfileFormat::table;
       o.html = p.optional<std::string>("html");
       if (p.has("targets"))
         return fleet_profile_command(o, read_targets(p.get<std::string>("targets")),
                                      p.optional<std::string>("target").value_or(""), out);
       return profile_command(o, out);
     },
     JobsFileOption::read, Fleet::own},
    {"explain",
     "explain JOB [--at KEY] [--full] [--running]  one batch, rolled back, with the plans inside "
     "the function",
     "explain [-f FILE] [--dsn DSN] JOB [--at KEY] [--full]\n"
     "explain [-f FILE] [--dsn DSN] JOB --running",
     "Runs one batch of JOB in a transaction that is rolled back, with auto_explain\n"
     "logging the plans of the statements inside the function; points out\n"
     "sequential scans of large tables, sub-plans run per row, nested loops with\n"
     "many loops, and foreign keys, triggers or repeated statements that take most\n"
     "of the batch, and proposes an index or a remedy. A statement run many times\n"
     "(a foreign key's check, once per row) is printed once, with its count.\n"
     "With --running: the batch of JOB in flight now, found on the server, its\n"
     "statements planned for its keys (EXPLAIN, nothing runs); exit 1 when none is.\n"
     "Changes no data.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("at", po::value<std::string>(), "explain the batch that starts after this key")(
           "full", "print every statement with its plan, the repeated ones too")(
           "running", "the plans of the batch in flight now, read from the server");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<ExplainOptions>();
       o.job = p.one_job("explain");
       if (p.has("running")) {
         if (p.has("at")) throw UsageError("explain --running takes no --at");
         return explain_running(o, out);
       }
       o.at = p.optional<std::string>("at");
       o.detail = p.has("full") ? PlanDetail::full : PlanDetail::summary;
       return explain_command(o, out);
     },
     JobsFileOption::read, Fleet::refuse},
    {"rehearse",
     "rehearse [JOB...] [--samples N] [--json]  projected durations, from rolled-back batches",
     "rehearse [-f FILE] [--dsn DSN] [JOB...] [--samples N] [--threads N]\n"
     "                        [--json]",
     "Before the window: runs N batches per job at the start, middle and end of\n"
     "its key range, each in a transaction that is rolled back, and projects\n"
     "every job's duration and the whole run's, flagging growing costs. A job whose\n"
     "rows reference rows an earlier list writes is measured without foreign-key\n"
     "checks; their cost is estimated apart.\n"
     "Changes no data.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("samples", po::value<int>()->default_value(3),
           "batches per job, spread across the key range")(
           "threads", po::value<int>()->default_value(0), "threads the run would use")(
           "json", "print JSON: {\"seconds\": ..., \"jobs\": [{\"job\": ..., ...}, ...]}");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<RehearseOptions>();
       o.jobs = p.jobs;
       o.samples = p.get<int>("samples");
       o.threads = threads_option(p);
       o.format = p.has("json") ? RehearseFormat::json : RehearseFormat::table;
       return rehearse_command(o, out);
     },
     JobsFileOption::read, Fleet::refuse},
    {"retry-failed", "retry-failed [JOB...]  re-run the key ranges set aside by on_error: skip",
     "retry-failed [-f FILE] [--dsn DSN] [JOB...]",
     "Re-runs the key ranges that on_error: skip set aside (pgxform.failed_batches),\n"
     "each in its own transaction, once the function or the data is fixed. Exit 0 when\n"
     "every range went through, 1 when some still fail.",
     Arguments::jobs, no_options,
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<RetryFailedOptions>();
       o.jobs = p.jobs;
       return retry_failed_command(o, out);
     }},
    {"reset", "reset JOB [--to KEY]   move a job's cursor back: to its start, or after KEY",
     "reset [-f FILE] [--dsn DSN] JOB [--to KEY]",
     "Moves JOB's cursor back on purpose: to its first key (clearing its counters,\n"
     "batch log and slices), or to just after KEY. A one-shot step is run again by\n"
     "the next run. Refused while a runner holds the job.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("to", po::value<std::string>(), "continue after this key instead of the start");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<ResetOptions>();
       if (p.jobs.size() != 1)
         throw UsageError("reset takes exactly one job (pgxform reset JOB [--to KEY])");
       o.job = p.jobs.front();
       o.to = p.optional<std::string>("to");
       return reset_command(o, out);
     }},
    {"pause", "pause NAME...|--all    no new batch for these jobs or lists until resumed",
     "pause [-f FILE] [--dsn DSN] [NAME...] [--all]",
     "Pauses jobs while they run, from any host: a running runner takes no new batch\n"
     "for a paused job (the batch in flight commits) and waits until it is resumed.\n"
     "NAME is a list or a batched job. Works before a run too. Writes the control\n"
     "table of the state schema, which plain SQL may also write.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("all", "every job of the file")("list", "the NAMEs are lists")("job",
                                                                          "the NAMEs are jobs");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<ControlOptions>();
       o.action = ControlAction::pause;
       o.arguments = p.jobs;
       o.all = p.has("all");
       o.names_are = names_are(p);
       return control_command(o, out);
     }},
    {"resume", "resume NAME...|--all   let paused jobs or lists take batches again",
     "resume [-f FILE] [--dsn DSN] [NAME...] [--all]",
     "Resumes paused jobs: a job's own setting wins over its list's, which wins\n"
     "over --all's, so `pause --all` then `resume JOB` runs JOB alone.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("all", "every job of the file")("list", "the NAMEs are lists")("job",
                                                                          "the NAMEs are jobs");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<ControlOptions>();
       o.action = ControlAction::resume;
       o.arguments = p.jobs;
       o.all = p.has("all");
       o.names_are = names_are(p);
       return control_command(o, out);
     }},
    {"set", "set NAME...|--all KEY=VALUE...  batch_size, target_batch_ms, pause_ms, live",
     "set [-f FILE] [--dsn DSN] [NAME...] [--all] [KEY=VALUE...] [--threads N]",
     "Changes settings of jobs while they run, from their next batch:\n"
     "batch_size=N (the next batch's size; every batch's when target_batch_ms is 0),\n"
     "target_batch_ms=MS (0: fixed batch_size), pause_ms=MS (a sleep between batches).\n"
     "--threads N: the workers of every running runner of the jobs file, up or down.\n"
     "KEY=default and --threads default clear a setting: the jobs file's (a wider\n"
     "row's, each runner's own threads) applies again.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("all", "every job of the file")("list", "the NAMEs are lists")("job",
                                                                          "the NAMEs are jobs")(
           "threads", po::value<std::string>(),
           "the workers of the running runners (a leaving worker finishes its batch); "
           "default: each runner's own");
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<ControlOptions>();
       o.action = ControlAction::set;
       o.arguments = p.jobs;
       o.all = p.has("all");
       o.names_are = names_are(p);
       if (const auto threads = p.optional<std::string>("threads")) {
         if (*threads == "default")
           o.threads_default = true;
         else
           o.threads = set_threads_option(*threads);
       }
       return control_command(o, out);
     }},
    {"verify", "verify [JOB...] [--repair]  check each job's result with its verify: query",
     "verify [-f FILE] [--dsn DSN] [JOB...] [--repair] [--threads N]\n"
     "                   [--reserve-connections N]",
     "Runs each job's verify: query over the keys it processed, batch by batch,\n"
     "jobs in parallel, and reports the offending rows, the first keys in key order.\n"
     "Exit 0 when nothing is wrong, 1 otherwise.",
     Arguments::jobs,
     [](po::options_description_easy_init add) {
       add("repair", "re-run the batches holding offending keys (idempotent jobs only)")(
           "threads", po::value<int>()->default_value(0),
           "jobs verified at once, one connection each (default: defaults.threads, else 4)")(
           "reserve-connections", po::value<int>()->default_value(k_default_reserve_connections),
           k_reserve_help);
     },
     [](const Parsed& p, std::ostream& out) {
       auto o = p.options<VerifyOptions>();
       o.jobs = p.jobs;
       o.mode = p.has("repair") ? VerifyMode::repair : VerifyMode::check;
       o.threads = threads_option(p);
       o.reserve_connections = reserve_option(p);
       return verify_command(o, out);
     }},
};

const char* const k_usage_head =
    "pgxform — runs SQL transformation functions over keyset batches, resumably.\n"
    "\n"
    "usage: pgxform <command> [options]\n"
    "\n"
    "commands:\n";
const char* const k_usage_tail =
    "\n"
    "`pgxform <command> --help` describes a command's options.\n"
    "Connection: --dsn, or the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER,\n"
    "PGPASSWORD, PGSERVICE, PGPASSFILE).\n"
    "Exit codes: 0 all done; 1 a job failed; 2 usage, jobs-file or preflight error (nothing\n"
    "written); 3 interrupted by SIGINT/SIGTERM (run again to continue).\n";

std::string usage() {
  std::string text = k_usage_head;
  for (const auto& c : k_commands) text += std::string("  ") + c.listing + "\n";
  return text + k_usage_tail;
}

Parsed parse(const po::options_description& described, Arguments arguments,
             const std::vector<std::string>& args) {
  po::options_description all(described);
  po::positional_options_description positional;
  if (arguments == Arguments::jobs) {
    all.add_options()(k_positional, po::value<std::vector<std::string>>(), "job");
    positional.add(k_positional, -1);
  }
  Parsed p;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), p.vm);
    po::notify(p.vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  p.jobs = p.all(k_positional);
  check_text(p);
  return p;
}

void report(const std::string& message) {
  // A log shipper reads JSON only: the last word of a failed command too.
  if (log_format() == LogFormat::json)
    spdlog::error("{}", message);
  else
    std::cerr << "pgxform: " << contained(redact(message)) << std::endl;
}

void check_fleet_options(const Command& command, const Parsed& p) {
  if (p.has("target") && !p.has("targets"))
    throw UsageError("--target NAME goes with --targets FILE");
  if (!p.has("targets")) return;
  if (command.fleet == Fleet::refuse)
    throw UsageError(std::string(command.name) +
                     " is about one database: it does not run over a fleet (give one target's "
                     "connection string with --dsn)");
  if (!p.get<std::string>("dsn").empty())
    throw UsageError(
        "--dsn and --targets: one or the other (a fleet's connection strings are "
        "in its targets file)");
  if (p.has("follow")) throw UsageError("catch-up --follow does not go with --targets");
}

// --targets with a command that runs once per target (Fleet::each): one after the other, each
// under its heading, a target's failure reported and the next one run. The exit code: the
// targets' when they all agree, else 1 (the fleet is not where it should be).
int run_over_fleet(const Command& command, const Parsed& p, std::ostream& out) {
  const TargetsFile file = read_targets(p.get<std::string>("targets"));
  const auto targets = chosen_targets(file, p.optional<std::string>("target").value_or(""));
  std::optional<int> result;
  for (const FleetTarget& target : targets) {
    Parsed one = p;
    one.vm.at("dsn").value() = target.dsn;
    out << "== target " << target.name << "\n" << std::flush;
    int code = k_exit_ok;
    try {
      code = command.run(one, out);
    } catch (const InputError& e) {
      for (const auto& problem : e.problems()) report(target.name + ": " + problem);
      code = k_exit_usage;
    } catch (const std::exception& e) {
      report(target.name + ": " + e.what());
      code = k_exit_job_failed;
    }
    if (stop_level() > 0) return k_exit_interrupted;
    result = !result || *result == code ? code : k_exit_job_failed;
  }
  return result.value_or(k_exit_ok);
}

// parse -> --help -> verbosity -> the command.
int run_command_line(const Command& command, const std::vector<std::string>& args,
                     std::ostream& out) {
  po::options_description described("options");
  described.add_options()("help,h", "show this help");
  if (command.jobs_file == JobsFileOption::read)
    described.add_options()("file,f", po::value<std::string>()->default_value("jobs.yaml"),
                            "the jobs file");
  described.add_options()("dsn", po::value<std::string>()->default_value(""),
                          "libpq connection string or URI (default: the PG* environment)")(
      "verbose,v", "debug logging")("quiet,q", "log warnings and errors only")(
      "log-format", po::value<std::string>()->default_value("text"),
      "text, or json: one JSON object per log line (time, level, message)");
  if (command.jobs_file == JobsFileOption::read)
    described.add_options()("targets", po::value<std::string>(),
                            "run over the databases of this targets file (a fleet; see "
                            "docs/fleet.md) instead of --dsn")(
        "target", po::value<std::string>(), "with --targets: only the target of this name");
  command.add_options(described.add_options());
  const Parsed p = parse(described, command.arguments, args);
  if (p.has("help")) {
    out << "usage: pgxform " << command.usage << "\n\n" << command.about << "\n\n" << described;
    return k_exit_ok;
  }
  check_fleet_options(command, p);
  const std::string format = p.get<std::string>("log-format");
  if (format != "text" && format != "json")
    throw UsageError("--log-format is text or json, not '" + format + "'");
  setup_logging(p.has("verbose") ? Verbosity::debug
                : p.has("quiet") ? Verbosity::quiet
                                 : Verbosity::normal,
                format == "json" ? LogFormat::json : LogFormat::text);
  if (p.has("targets") && command.fleet == Fleet::each) return run_over_fleet(command, p, out);
  return command.run(p, out);
}

}  // namespace

int run_cli(int argc, const char* const argv[]) {
  return run_cli(argc, argv, std::cout);
}

int run_cli(int argc, const char* const argv[], std::ostream& out) {
  setup_logging(Verbosity::normal);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << usage();
    return k_exit_usage;
  }
  const std::string name = args.front();
  args.erase(args.begin());
  if (name == "--help" || name == "-h" || name == "help") {
    out << usage();
    return k_exit_ok;
  }
  if (name == "--version") {
    out << "pgxform " << PGXFORM_VERSION << "\n";
    return k_exit_ok;
  }
  const auto command = std::find_if(std::begin(k_commands), std::end(k_commands),
                                    [&](const Command& c) { return name == c.name; });
  if (command == std::end(k_commands)) {
    std::vector<std::string> names;
    for (const auto& c : k_commands) names.push_back(c.name);
    const std::optional<std::string> meant = suggest_name(name, names);
    // A typo gets the one line that fixes it; anything else the list of commands.
    report("unknown command '" + name + "'" +
           (meant ? "; did you mean '" + *meant + "'? (pgxform --help lists the commands)"
                  : "\n\n" + usage()));
    return k_exit_usage;
  }
  try {
    return run_command_line(*command, args, out);
  } catch (const UsageError& e) {
    report(std::string(e.what()) + " (see pgxform " + name + " --help)");
    return k_exit_usage;
  } catch (const InputError& e) {
    for (const auto& p : e.problems()) report(p);
    if (!e.outcome().empty()) report(e.outcome());
    return k_exit_usage;
  } catch (const std::exception& e) {
    report(e.what());
    return k_exit_job_failed;
  }
}

}  // namespace pgxform
