#include "commands/plan_command.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <iostream>

#include "base/exit_code.h"
#include "catalog/catalog.h"
#include "catalog/table_stats.h"
#include "commands/validate_command.h"
#include "database/database.h"
#include "output/json_output.h"
#include "output/terminal_text.h"
#include "state/state_store.h"

namespace pgxform {

std::map<std::string, int> list_stages(const JobsFile& file) {
  // Kahn's order over `after:`: a list's stage is known once every list it is after has one.
  std::map<std::string, std::vector<std::string>> waiting_on;  // list -> lists after it
  std::map<std::string, std::size_t> unknown;                  // lists each still waits for
  std::deque<std::string> ready;
  for (const auto& list : file.lists) {
    unknown[list.name] = list.after.size();
    for (const auto& a : list.after) waiting_on[a].push_back(list.name);
    if (list.after.empty()) ready.push_back(list.name);
  }
  std::map<std::string, int> stage;
  for (const auto& name : ready) stage[name] = 1;
  while (!ready.empty()) {
    const std::string name = ready.front();
    ready.pop_front();
    for (const auto& next : waiting_on[name]) {
      stage[next] = std::max(stage[next], stage[name] + 1);
      if (--unknown[next] == 0) ready.push_back(next);
    }
  }
  return stage;
}

PlanReport compute_plan(const JobsFile& file, int threads,
                        const std::map<std::string, std::string>& status,
                        const std::map<std::string, double>& rows) {
  PlanReport plan;
  plan.file = file.path;
  plan.threads = threads;
  const auto stages = list_stages(file);
  for (const auto& list : file.lists) {
    PlannedListRow l{&list, stages.at(list.name), {}};
    plan.stages = std::max(plan.stages, l.stage);
    for (const auto& job : list.jobs) {
      PlannedJobRow j;
      j.job = &job;
      const auto s = status.find(job.name);
      j.status = s == status.end() ? "pending" : s->second;
      if (const auto r = rows.find(job.name); r != rows.end()) {
        // reltuples is a float4: held within what a long long can count.
        j.rows = (long long)std::clamp(r->second, 0.0, 9.2e18);
        // Rounded up, without rows + batch_size - 1, which a large batch_size would overflow.
        // Unknown for batches sized by time: as many as the transform's speed makes (rehearse
        // measures it).
        if (job.settings.target_batch_ms == 0)
          j.batches = *j.rows / job.batch_size + (*j.rows % job.batch_size != 0);
      }
      l.jobs.push_back(j);
    }
    plan.lists.push_back(l);
  }
  return plan;
}

namespace {

void print_job(std::ostream& out, const PlannedJobRow& j) {
  const Job& job = *j.job;
  if (job.is_step()) {
    out << "    " << job.name << ": one-shot step `" << terminal_text(job.sql) << "` [" << j.status
        << "]\n";
    return;
  }
  out << "    " << job.name << ": " << job.function.text() << " over " << job.table.text() << " by "
      << job.key << ", ~" << (j.rows ? std::to_string(*j.rows) : "?") << " rows in ~"
      << (j.batches ? std::to_string(*j.batches) : "?") << " batches of " << job.batch_size;
  if (job.settings.target_batch_ms > 0)
    out << " at first, then sized to last " << job.settings.target_batch_ms << " ms";
  if (job.parallel > 1) out << ", " << job.parallel << " slices at once";
  if (job.parallel_auto) out << ", split among the workers that fall idle";
  if (job.captures()) out << ", capturing changes for catch-up by " << job.refresh_function.text();
  out << " [" << j.status << "]\n";
}

Json job_json(const PlannedJobRow& j) {
  const Job& job = *j.job;
  Json o = {{"name", job.name}, {"kind", job.is_step() ? "step" : "batched"}};
  if (job.is_step()) {
    o["sql"] = job.sql;
  } else {
    o["table"] = job.table.text();
    o["key"] = job.key;
    o["function"] = job.function.text();
    o["batch_size"] = job.batch_size;
    o["target_batch_ms"] = job.settings.target_batch_ms;
    o["parallel"] = job.parallel_auto ? Json("auto") : Json(job.parallel);
    o["estimated_rows"] = j.rows ? Json(*j.rows) : Json(nullptr);
    o["estimated_batches"] = j.batches ? Json(*j.batches) : Json(nullptr);
    o["changes"] = job.captures() ? Json(capture_name(job.changes)) : Json(nullptr);
    o["refresh_function"] = job.captures() ? Json(job.refresh_function.text()) : Json(nullptr);
  }
  o["status"] = j.status;
  return o;
}

}  // namespace

void print_plan_text(std::ostream& out, const PlanReport& plan) {
  out << "plan for " << plan.file << ": " << plan.lists.size() << " lists on " << plan.threads
      << " threads\n";
  for (int s = 1; s <= plan.stages; ++s) {
    std::vector<const PlannedListRow*> lists;
    for (const auto& l : plan.lists)
      if (l.stage == s) lists.push_back(&l);
    out << "stage " << s << ": " << lists.size() << " list(s)"
        << (lists.size() > 1 ? ", in parallel up to " + std::to_string(plan.threads) + " threads"
                             : "")
        << "\n";
    for (const PlannedListRow* l : lists) {
      out << "  list " << l->list->name;
      if (!l->list->after.empty()) {
        out << " (after";
        // "after orders, products": a list's names, as a reader writes them.
        for (std::size_t i = 0; i < l->list->after.size(); ++i)
          out << (i ? ", " : " ") << l->list->after[i];
        out << ")";
      }
      out << ": its jobs in order\n";
      for (const auto& j : l->jobs) print_job(out, j);
    }
  }
}

void print_plan_json(std::ostream& out, const PlanReport& plan) {
  Json lists = Json::array();
  for (const auto& l : plan.lists) {
    Json jobs = Json::array();
    for (const auto& j : l.jobs) jobs.push_back(job_json(j));
    lists.push_back(
        {{"name", l.list->name}, {"after", l.list->after}, {"stage", l.stage}, {"jobs", jobs}});
  }
  print_json(out, Json{{"threads", plan.threads}, {"lists", lists}});
}

int plan_command(const PlanOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  auto conn = connect(options.dsn, Access::read_only);
  const Preflight preflight = inspect_catalog(*conn, file, {});
  std::map<std::string, std::string> status;
  for (const auto& s : StateStore(*conn, StateSchema(file.state_schema)).read_status())
    status[s.job] = s.status;
  std::map<std::string, double> rows;
  {
    pqxx::read_transaction tx(*conn);
    for (const auto& [name, job] : preflight.jobs)
      if (const auto estimate = estimated_rows(tx, job)) rows[name] = *estimate;
    // A job whose function a pending script creates does not resolve, but its table may.
    for (const auto& list : file.lists)
      for (const auto& job : list.jobs)
        if (!job.is_step() && !rows.count(job.name) && !preflight.jobs.count(job.name))
          if (const auto estimate = estimated_rows(tx, quote_qualified(job.table)))
            rows[job.name] = *estimate;
  }
  const PlanReport plan = compute_plan(
      file, options.threads > 0 ? options.threads : file.default_threads, status, rows);
  if (options.format == PlanFormat::json)
    print_plan_json(out, plan);
  else
    print_plan_text(out, plan);
  // Reported by the command line as every input error is (on stderr, or as JSON log lines),
  // after the plan, so that --json stays valid JSON.
  std::vector<std::string> problems = preflight.problems;
  if (problems.empty()) return k_exit_ok;
  hint_pending_scripts(*conn, file, problems);
  for (auto& problem : problems) problem = "error: " + problem;
  throw InputError(problems);
}

}  // namespace pgxform
