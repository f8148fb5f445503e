#include "commands/fleet_run.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "base/exit_code.h"
#include "base/stop_signal.h"
#include "commands/fleet_targets.h"
#include "database/database.h"
#include "engine/fleet_budget.h"
#include "output/progress_display.h"
#include "plan/jobs_file.h"

namespace pgxform {

namespace {

// How one target's run ended.
struct TargetEnd {
  int exit_code = k_exit_ok;
  std::string why;  // for a target that did not finish: its first problem or error
};

// --order size: the largest database first (pg_database_size); one that cannot be reached
// goes last, to be reported when its turn comes.
std::vector<FleetTarget> by_size(std::vector<FleetTarget> targets) {
  std::map<std::string, long long> size;
  for (const auto& t : targets) {
    try {
      const auto conn = connect(t.dsn, Access::read_only);
      pqxx::read_transaction tx(*conn);
      size[t.name] = tx.exec("SELECT pg_catalog.pg_database_size(pg_catalog.current_database())")
                         .at(0)
                         .at(0)
                         .as<long long>();
    } catch (const std::exception& e) {
      spdlog::debug("{}: its size is unknown: {}", t.name, redact(e.what()));
      size[t.name] = -1;
    }
  }
  std::stable_sort(targets.begin(), targets.end(), [&](const FleetTarget& a, const FleetTarget& b) {
    return size[a.name] > size[b.name];
  });
  return targets;
}

TargetEnd run_target(const FleetRunOptions& options, const JobsFile& file,
                     const FleetTarget& target, FleetBudget& budget, const RunMetrics& fleet) {
  RunOptions run = options.run;
  run.dsn = target.dsn;
  FleetPart part{target.name,
                 [&budget, name = target.name](int wanted) { return budget.draw(name, wanted); }};
  // Its series are the fleet's, labelled with its name: its jobs' names are every target's.
  RunMetrics metrics(fleet, target.name);
  try {
    const int code = run_jobs(run, file, metrics, &part);
    return {code, code == k_exit_ok ? "" : code == k_exit_interrupted ? "stopped" : "a job failed"};
  } catch (const InputError& e) {
    // Its preflight, its scripts, its connection: this target's, reported, the others go on.
    std::string why;
    for (const auto& p : e.problems()) why += (why.empty() ? "" : "; ") + p;
    return {k_exit_job_failed, target_problem(why)};
  } catch (const std::exception& e) {
    return {k_exit_job_failed, target_problem(e.what())};
  }
}

// The fleet's progress line, every plain_interval() (10 s) while it runs: how many targets are
// done, running and waiting, and the busiest running targets with their workers. The names
// are targets_file.h's plain words (letters, digits, '_', '-', '.'): nothing to escape.
class FleetLine {
 public:
  FleetLine(const FleetBudget& budget, std::size_t targets)
      : m_budget(budget), m_targets(targets), m_next(std::chrono::steady_clock::now()) {
    m_next += plain_interval();
  }
  void maybe_say(std::size_t ended) {
    if (std::chrono::steady_clock::now() < m_next) return;
    m_next = std::chrono::steady_clock::now() + plain_interval();
    const auto running = m_budget.workers();
    std::string busiest;
    for (std::size_t i = 0; i < running.size() && i < 3; ++i)
      busiest += (i ? ", " : "; busiest: ") + running[i].first + " (" +
                 std::to_string(running[i].second) + " workers)";
    spdlog::info("fleet: {} of {} targets ended, {} running, {} waiting{}", ended, m_targets,
                 running.size(), m_budget.waiting(), busiest);
  }

 private:
  const FleetBudget& m_budget;
  std::size_t m_targets;
  std::chrono::steady_clock::time_point m_next;
};

// The fleet's totals for its metrics: the targets by state, the workers they hold.
FleetTotals fleet_totals(const FleetBudget& budget, const std::map<std::string, TargetEnd>& ends,
                         std::size_t targets) {
  FleetTotals totals;
  const auto running = budget.workers();
  totals.running = int(running.size());
  for (const auto& [name, workers] : running) totals.workers += workers;
  for (const auto& [name, end] : ends) ++(end.exit_code == k_exit_ok ? totals.done : totals.failed);
  totals.waiting = std::max(0, int(targets) - totals.running - totals.done - totals.failed);
  return totals;
}

int fleet_result(const std::vector<FleetTarget>& targets,
                 const std::map<std::string, TargetEnd>& ends, double seconds) {
  int done = 0;
  bool stopped = stop_level() > 0;
  for (const auto& t : targets) {
    const auto end = ends.find(t.name);
    if (end == ends.end()) {
      spdlog::warn("fleet: {}: not started", t.name);
      continue;
    }
    if (end->second.exit_code == k_exit_ok) {
      ++done;
      continue;
    }
    stopped = stopped || end->second.exit_code == k_exit_interrupted;
    spdlog::error("fleet: {}: did not finish: {}", t.name, end->second.why);
  }
  if (done == int(targets.size())) {
    spdlog::info("fleet: {} of {} targets done in {:.1f} s", done, targets.size(), seconds);
    return k_exit_ok;
  }
  // Said also under --quiet: the fleet did not finish.
  spdlog::warn("fleet: {} of {} targets done in {:.1f} s", done, targets.size(), seconds);
  if (stopped) {
    spdlog::warn(
        "fleet: stopped by a signal; every target's state is consistent: run again to "
        "continue");
    return k_exit_interrupted;
  }
  return k_exit_job_failed;
}

}  // namespace

int fleet_run_command(const FleetRunOptions& options) {
  const JobsFile file = parse_jobs_file(options.run.file);
  const TargetsFile targets_file = read_targets(options.targets);
  const std::vector<FleetTarget> chosen = chosen_targets(targets_file, options.target);
  const std::vector<FleetTarget> targets =
      options.order == FleetOrder::size ? by_size(chosen) : chosen;
  const int threads = options.run.threads > 0 ? options.run.threads : file.default_threads;
  FleetBudget budget(threads, targets_file.max_threads_per_host);
  std::map<std::string, const FleetTarget*> by_name;
  for (const auto& t : targets) {
    budget.add({t.name, target_host(t), t.max_threads});
    by_name[t.name] = &t;
  }
  spdlog::info("fleet: {} targets from {}, {} workers{}", targets.size(), targets_file.path,
               threads,
               targets_file.max_threads_per_host
                   ? ", at most " + std::to_string(*targets_file.max_threads_per_host) + " per host"
                   : "");
  // One endpoint for the fleet, bound before anything is written (as a single run's).
  RunMetrics metrics(options.run.metrics ? MetricsCollection::on : MetricsCollection::off);
  if (options.run.metrics) {
    metrics.serve(*options.run.metrics);
    spdlog::info("serving the fleet's metrics on http://{}/metrics",
                 endpoint_text(*options.run.metrics));
  }
  install_stop_handlers();
  const auto started = std::chrono::steady_clock::now();
  std::mutex ends_mutex;
  std::map<std::string, TargetEnd> ends;
  std::vector<std::thread> running;
  FleetLine line(budget, targets.size());
  const auto ended = [&] {
    std::lock_guard<std::mutex> lock(ends_mutex);
    metrics.fleet_totals(fleet_totals(budget, ends, targets.size()), threads);
    return ends.size();
  };
  const auto stopping = [&] {
    line.maybe_say(ended());
    return stop_level() > 0;
  };
  while (const auto name = budget.admit(stopping)) {
    const FleetTarget& target = *by_name.at(*name);
    try {
      running.emplace_back([&, &target = target] {
        TargetEnd end = run_target(options, file, target, budget, metrics);
        budget.leave(target.name);
        std::lock_guard<std::mutex> lock(ends_mutex);
        ends[target.name] = std::move(end);
      });
    } catch (const std::system_error& e) {
      // The system refused a thread: this target waits for a later run; the others go on.
      budget.leave(target.name);
      std::lock_guard<std::mutex> lock(ends_mutex);
      ends[target.name] = {k_exit_job_failed, std::string("no thread for it: ") + e.what()};
    }
  }
  while (ended() < running.size()) {
    line.maybe_say(ended());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : running) t.join();
  ended();  // the totals' last figures, served until the fleet ends
  return fleet_result(
      targets, ends,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

}  // namespace pgxform
