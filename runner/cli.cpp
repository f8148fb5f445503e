#include "cli.h"

#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "catalog.h"
#include "database.h"
#include "exit_code.h"
#include "explain_command.h"
#include "job_commands.h"
#include "jobs_file.h"
#include "logging.h"
#include "preflight_commands.h"
#include "profile_command.h"
#include "rehearse_command.h"
#include "run_command.h"
#include "scheduler.h"
#include "script_migrator.h"
#include "status_command.h"

namespace po = boost::program_options;

namespace pgxform {

namespace {

const char* const k_usage =
    "pgxform — runs SQL transformation functions over keyset batches, resumably.\n"
    "\n"
    "usage: pgxform <command> [options]\n"
    "\n"
    "commands:\n"
    "  run      run the jobs of a jobs file (resumes where the last run stopped)\n"
    "  status   show each job's status, rows, batches, last key and percent done\n"
    "  migrate  apply the pending V and changed R scripts of scripts_dir\n"
    "  info     list every script: applied, pending, changed, missing\n"
    "  repair   accept the new content of changed, applied V scripts\n"
    "  validate every check of run's preflight, and warnings; writes nothing\n"
    "  plan     the lists and jobs as run would schedule them, with estimates\n"
    "  profile [JOB...] [--json] [--html FILE]  batch figures and trend per job\n"
    "  explain JOB [--at KEY]  one batch, rolled back, with the plans inside the function\n"
    "  rehearse [JOB...] [--samples N] [--json]  projected durations, from rolled-back batches\n"
    "  retry-failed [JOB...]  re-run the key ranges set aside by on_error: skip\n"
    "  reset JOB [--to KEY]   move a job's cursor back: to its start, or after KEY\n"
    "  verify [JOB...] [--repair]  check each job's result with its verify: query\n"
    "\n"
    "`pgxform <command> --help` describes a command's options.\n"
    "Connection: --dsn, or the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER,\n"
    "PGPASSWORD, PGSERVICE, PGPASSFILE).\n"
    "Exit codes: 0 all done; 1 a job failed; 2 usage, jobs-file or preflight error (nothing\n"
    "written); 3 interrupted by SIGINT/SIGTERM (run again to continue).\n";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

po::options_description common_options() {
  po::options_description d("options");
  d.add_options()("help,h", "show this help")(
      "file,f", po::value<std::string>()->default_value("jobs.yaml"), "the jobs file")(
      "dsn", po::value<std::string>()->default_value(""),
      "libpq connection string or URI (default: the PG* environment)")(
      "verbose,v", "debug logging")("quiet,q", "log warnings and errors only");
  return d;
}

po::variables_map parse(const po::options_description& d, const std::vector<std::string>& args) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return vm;
}

// Every command's options struct has `file` and `dsn`, from the common options.
template <typename Options>
Options with_connection(const po::variables_map& vm) {
  Options o;
  o.file = vm["file"].as<std::string>();
  o.dsn = vm["dsn"].as<std::string>();
  return o;
}

void set_verbosity(const po::variables_map& vm) {
  setup_logging(vm.count("verbose") ? Verbosity::debug
                : vm.count("quiet") ? Verbosity::quiet
                                    : Verbosity::normal);
}

int cmd_run(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description d = common_options();
  d.add_options()("threads", po::value<int>()->default_value(0),
                  "worker threads, one connection each (default: defaults.threads, else 4)")(
      "only", po::value<std::vector<std::string>>(), "run only this list or job (repeatable)")(
      "exclude", po::value<std::vector<std::string>>(), "skip this list or job (repeatable)")(
      "accept-changed", po::value<std::vector<std::string>>(),
      "go on with JOB although its function changed since it started (repeatable)")(
      "no-migrate", "do not apply pending scripts first");
  const auto vm = parse(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform run [-f FILE] [--dsn DSN] [--threads N] [--only NAME]... "
           "[--exclude NAME]...\n                   [--accept-changed JOB]... "
           "[--no-migrate]\n\nRuns the jobs of FILE, each list once the lists it is after "
           "are done,\nresuming every job after its last committed batch.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  auto o = with_connection<RunOptions>(vm);
  o.threads = vm["threads"].as<int>();
  if (o.threads < 0) throw UsageError("--threads must be a positive number");
  if (vm.count("only")) o.only = vm["only"].as<std::vector<std::string>>();
  if (vm.count("exclude")) o.exclude = vm["exclude"].as<std::vector<std::string>>();
  o.migrate = vm.count("no-migrate") == 0;
  if (vm.count("accept-changed"))
    o.accept_changed = vm["accept-changed"].as<std::vector<std::string>>();
  return run_command(o);
}

int cmd_status(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description d = common_options();
  d.add_options()("json", "print JSON: {\"jobs\": [{\"job\": ..., \"status\": ...}, ...]}");
  const auto vm = parse(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform status [-f FILE] [--dsn DSN] [--json]\n\nShows each job's status, "
           "rows and batches done, last key, percent done and the\nrunner holding it. Writes "
           "nothing.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  auto o = with_connection<StatusOptions>(vm);
  o.format = vm.count("json") ? StatusFormat::json : StatusFormat::table;
  return status_command(o, out);
}

JobCommandOptions job_options(const po::variables_map& vm) {
  auto o = with_connection<JobCommandOptions>(vm);
  if (vm.count("job")) o.jobs = vm["job"].as<std::vector<std::string>>();
  return o;
}

// Parses a command whose positional arguments are job names.
po::variables_map parse_with_jobs(const po::options_description& d,
                                  const std::vector<std::string>& args) {
  po::options_description all(d);
  all.add_options()("job", po::value<std::vector<std::string>>(), "job");
  po::positional_options_description positional;
  positional.add("job", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return vm;
}

int cmd_retry_failed(const std::vector<std::string>& args, std::ostream& out) {
  const po::options_description d = common_options();
  const auto vm = parse_with_jobs(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform retry-failed [-f FILE] [--dsn DSN] [JOB...]\n\nRe-runs the key ranges "
           "that on_error: skip set aside (pgxform.failed_batches),\neach in its own transaction, "
           "once the function or the data is fixed. Exit 0 when\nevery range went through, 1 when "
           "some still fail.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  return retry_failed_command(job_options(vm), out);
}

int cmd_reset(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description d = common_options();
  d.add_options()("to", po::value<std::string>(), "continue after this key instead of the start");
  const auto vm = parse_with_jobs(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform reset [-f FILE] [--dsn DSN] JOB [--to KEY]\n\nMoves JOB's cursor back "
           "on purpose: to its first key (clearing its counters,\nbatch log and slices), or to "
           "just "
           "after KEY. Refused while a runner holds the job.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  std::optional<std::string> to;
  if (vm.count("to")) to = vm["to"].as<std::string>();
  return reset_command(job_options(vm), to, out);
}

int cmd_verify(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description d = common_options();
  d.add_options()("repair", "re-run the batches holding offending keys (idempotent jobs only)");
  const auto vm = parse_with_jobs(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform verify [-f FILE] [--dsn DSN] [JOB...] [--repair]\n\nRuns each job's "
           "verify: query over the keys it processed, batch by batch,\nand reports the offending "
           "rows. Exit 0 when nothing is wrong, 1 otherwise.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  return verify_command(job_options(vm),
                        vm.count("repair") ? VerifyMode::repair : VerifyMode::check, out);
}

// migrate, info and repair: the scripts of the jobs file's scripts_dir.
int cmd_scripts(const std::string& command, const std::vector<std::string>& args,
                std::ostream& out) {
  const po::options_description d = common_options();
  const auto vm = parse(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform " << command << " [-f FILE] [--dsn DSN]\n\n";
    if (command == "migrate")
      out << "Applies the pending V<version>__<description>.sql scripts of scripts_dir in\n"
             "version order, each in its own transaction (unless its first line is\n"
             "-- pgxform: no-transaction), then the R__<description>.sql scripts that are\n"
             "new or changed. Records each in pgxform.script_history.\n\n";
    else if (command == "info")
      out << "Lists every script: applied (when, how long), pending, changed, outdated\n"
             "(an R script to apply again), missing from disk. Writes nothing.\n\n";
    else
      out << "Records the current content of applied V scripts that changed on disk, on\n"
             "purpose, so that migrate and run go on.\n\n";
    out << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  const JobsFile file = parse_jobs_file(vm["file"].as<std::string>());
  auto conn = connect(vm["dsn"].as<std::string>());
  ScriptMigrator migrator(*conn, file.state_schema, file.scripts_dir);
  if (command == "migrate") {
    const auto applied = migrator.migrate();
    out << applied.size() << " script(s) applied from " << file.scripts_dir << "\n";
    for (const auto& a : applied) out << "  " << a << "\n";
  } else if (command == "info") {
    out << std::left << std::setw(40) << "SCRIPT" << std::setw(10) << "VERSION" << std::setw(10)
        << "STATE" << std::setw(32) << "APPLIED AT"
        << "DURATION\n";
    for (const auto& s : migrator.info()) {
      std::ostringstream ms;
      if (s.duration_ms) ms << std::fixed << std::setprecision(0) << *s.duration_ms << " ms";
      out << std::left << std::setw(40) << s.script.file << std::setw(10)
          << (s.script.version.empty() ? "-" : s.script.version) << std::setw(10)
          << state_name(s.state) << std::setw(32) << s.applied_at.value_or("-") << ms.str() << "\n";
    }
  } else {
    const auto result = migrator.repair();
    for (const auto& u : result.updated) out << "checksum updated: " << u << "\n";
    for (const auto& m : result.missing) out << "missing from disk (left as is): " << m << "\n";
    out << result.updated.size() << " script(s) repaired\n";
  }
  return k_exit_ok;
}

int cmd_migrate(const std::vector<std::string>& args, std::ostream& out) {
  return cmd_scripts("migrate", args, out);
}
int cmd_info(const std::vector<std::string>& args, std::ostream& out) {
  return cmd_scripts("info", args, out);
}
int cmd_repair(const std::vector<std::string>& args, std::ostream& out) {
  return cmd_scripts("repair", args, out);
}

int cmd_profile(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description d = common_options();
  d.add_options()("json", "print JSON: {\"jobs\": [{\"job\": ..., \"trend\": ...}, ...]}")(
      "html", po::value<std::string>(), "also write a self-contained HTML report to this file");
  const auto vm = parse_with_jobs(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform profile [-f FILE] [--dsn DSN] [JOB...] [--json] [--html FILE]\n\nPer "
           "job: batches, rows, rows per second, p50/p95/max batch duration, the\ntrend of the "
           "cost per row (flat, growing: the O(N^2) signature) and an ETA\nfor unfinished jobs. "
           "Reads pgxform.batch_log; writes nothing.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  auto o = with_connection<ProfileOptions>(vm);
  o.jobs = job_options(vm).jobs;
  o.format = vm.count("json") ? ProfileFormat::json : ProfileFormat::table;
  if (vm.count("html")) o.html = vm["html"].as<std::string>();
  return profile_command(o, out);
}

int cmd_explain(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description d = common_options();
  d.add_options()("at", po::value<std::string>(), "explain the batch that starts after this key");
  const auto vm = parse_with_jobs(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform explain [-f FILE] [--dsn DSN] JOB [--at KEY]\n\nRuns one batch of "
           "JOB in a transaction that is rolled back, with auto_explain\nlogging the plans of "
           "the statements inside the function; points out\nsequential scans of large tables, "
           "sub-plans run per row and nested loops\nwith many loops, and proposes an index. "
           "Changes no data.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  const JobCommandOptions j = job_options(vm);
  if (j.jobs.size() != 1) throw UsageError("explain takes exactly one job");
  auto o = with_connection<ExplainOptions>(vm);
  o.job = j.jobs.front();
  if (vm.count("at")) o.at = vm["at"].as<std::string>();
  return explain_command(o, out);
}

int cmd_rehearse(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description d = common_options();
  d.add_options()("samples", po::value<int>()->default_value(3),
                  "batches per job, spread across the key range")(
      "threads", po::value<int>()->default_value(0), "threads the run would use")(
      "json", "print JSON: {\"seconds\": ..., \"jobs\": [{\"job\": ..., ...}, ...]}");
  const auto vm = parse_with_jobs(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform rehearse [-f FILE] [--dsn DSN] [JOB...] [--samples N] [--threads N]\n"
           "                        [--json]\n\nBefore the "
           "window: runs N batches per job at the start, middle and end of\nits key range, each "
           "in a transaction that is rolled back, and projects\nevery job's duration and the "
           "whole run's, flagging growing costs. A job whose\nrows reference rows an earlier "
           "list writes is measured without foreign-key\nchecks; their cost is estimated "
           "apart.\nChanges no data.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  auto o = with_connection<RehearseOptions>(vm);
  o.jobs = job_options(vm).jobs;
  o.samples = vm["samples"].as<int>();
  o.threads = vm["threads"].as<int>();
  o.format = vm.count("json") ? RehearseFormat::json : RehearseFormat::table;
  if (o.samples < 1) throw UsageError("--samples must be at least 1");
  return rehearse_command(o, out);
}

int cmd_validate(const std::vector<std::string>& args, std::ostream& out) {
  const po::options_description d = common_options();
  const auto vm = parse(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform validate [-f FILE] [--dsn DSN]\n\nEvery check of run's preflight, and "
           "warnings for what would make a run slow\nor wrong (a key without an index, a table "
           "never analyzed, NULL keys, a\nfunction not VOLATILE). Reads catalogs only; writes "
           "nothing. Exit 0, or 2\nwith every problem listed.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  auto o = with_connection<PreflightOptions>(vm);
  return validate_command(o, out);
}

int cmd_plan(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description d = common_options();
  d.add_options()("threads", po::value<int>()->default_value(0), "threads the run would use")(
      "json", "print JSON");
  const auto vm = parse(d, args);
  if (vm.count("help")) {
    out << "usage: pgxform plan [-f FILE] [--dsn DSN] [--threads N] [--json]\n\nThe lists and "
           "jobs in the order and parallelism the run would use, with\nestimated rows and "
           "batches per job. Writes nothing.\n\n"
        << d;
    return k_exit_ok;
  }
  set_verbosity(vm);
  auto o = with_connection<PreflightOptions>(vm);
  o.threads = vm["threads"].as<int>();
  o.json = vm.count("json") > 0;
  return plan_command(o, out);
}

void report(const std::string& message) {
  std::cerr << "pgxform: " << redact(message) << std::endl;
}

}  // namespace

int run_cli(int argc, const char* const argv[]) {
  return run_cli(argc, argv, std::cout);
}

int run_cli(int argc, const char* const argv[], std::ostream& out) {
  setup_logging(Verbosity::normal);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << k_usage;
    return k_exit_usage;
  }
  const std::string command = args.front();
  args.erase(args.begin());
  if (command == "--help" || command == "-h" || command == "help") {
    out << k_usage;
    return k_exit_ok;
  }
  if (command == "--version") {
    out << "pgxform 0.1.0\n";
    return k_exit_ok;
  }
  static const std::map<std::string, int (*)(const std::vector<std::string>&, std::ostream&)>
      commands = {{"run", cmd_run},
                  {"status", cmd_status},
                  {"migrate", cmd_migrate},
                  {"info", cmd_info},
                  {"repair", cmd_repair},
                  {"validate", cmd_validate},
                  {"plan", cmd_plan},
                  {"profile", cmd_profile},
                  {"explain", cmd_explain},
                  {"rehearse", cmd_rehearse},
                  {"retry-failed", cmd_retry_failed},
                  {"reset", cmd_reset},
                  {"verify", cmd_verify}};
  const auto it = commands.find(command);
  if (it == commands.end()) {
    report("unknown command '" + command + "'\n\n" + k_usage);
    return k_exit_usage;
  }
  try {
    return it->second(args, out);
  } catch (const UsageError& e) {
    report(std::string(e.what()) + " (see pgxform " + command + " --help)");
  } catch (const JobsFileError& e) {
    report(e.what());
  } catch (const SelectionError& e) {
    report(e.what());
  } catch (const ScriptError& e) {
    for (const auto& p : e.problems()) report(p);
    report("nothing was applied");
  } catch (const PreflightError& e) {
    for (const auto& p : e.problems()) report(p);
    report(std::to_string(e.problems().size()) + " problem(s) found; no job was started");
  } catch (const ConnectError& e) {
    report(e.what());
  } catch (const std::exception& e) {
    report(e.what());
    return k_exit_job_failed;
  }
  return k_exit_usage;
}

}  // namespace pgxform
