#include "commands/fleet_status.h"

#include <algorithm>
#include <cctype>
#include <iomanip>
#include <sstream>

#include "base/exit_code.h"
#include "base/output_format.h"
#include "commands/fleet_targets.h"
#include "output/terminal_text.h"
#include "plan/jobs_file.h"

namespace pgxform {

namespace {

// An unfinished job's rows left: from its percent done, else from its ETA at its rate.
std::optional<double> rows_left(const StatusRow& row) {
  if (row.state.status == "done") return std::nullopt;
  if (row.percent && *row.percent > 0)
    return std::max(0.0, double(row.state.rows_done) * (100 - *row.percent) / *row.percent);
  if (row.eta_s && row.rows_per_s) return *row.eta_s * *row.rows_per_s;
  return std::nullopt;
}

FleetStatusLine target_line(const TargetStatus& t) {
  FleetStatusLine line;
  line.target = t.target;
  if (t.error) {
    line.unknown = true;
    line.note = "unreachable: " + *t.error;
    return line;
  }
  for (const StatusRow& row : t.report.jobs) {
    ++line.jobs;
    const std::string& status = row.state.status;
    if (status == "done") ++line.done;
    if (status == "running") ++line.running;
    if (status == "failed") ++line.failed;
    line.rows += row.state.rows_done;
    if (row.rows_per_s) line.rows_per_s = line.rows_per_s.value_or(0) + *row.rows_per_s;
    if (row.eta_s && status != "done") line.eta_s = std::max(line.eta_s.value_or(0), *row.eta_s);
    if (const auto left = rows_left(row)) line.rows_left = line.rows_left.value_or(0) + *left;
  }
  if (line.failed > 0) {
    for (const StatusRow& row : t.report.jobs)
      if (row.state.status == "failed") {
        line.note = row.state.job + ": " + row.state.error.value_or("failed");
        break;
      }
  }
  return line;
}

std::string number_or_dash(bool unknown, long long n) {
  return unknown ? "-" : std::to_string(n);
}

}  // namespace

std::vector<FleetStatusLine> fleet_status_lines(const std::vector<TargetStatus>& targets) {
  std::vector<FleetStatusLine> lines;
  FleetStatusLine total;
  total.target = "fleet";
  int unreachable = 0, failing = 0;
  for (const auto& t : targets) {
    lines.push_back(target_line(t));
    const FleetStatusLine& l = lines.back();
    if (l.unknown) {
      ++unreachable;
      continue;
    }
    if (l.failed > 0) ++failing;
    total.jobs += l.jobs;
    total.done += l.done;
    total.running += l.running;
    total.failed += l.failed;
    total.rows += l.rows;
    if (l.rows_per_s) total.rows_per_s = total.rows_per_s.value_or(0) + *l.rows_per_s;
    if (l.eta_s) total.eta_s = std::max(total.eta_s.value_or(0), *l.eta_s);
    if (l.rows_left) total.rows_left = total.rows_left.value_or(0) + *l.rows_left;
  }
  std::string note = std::to_string(targets.size()) + " targets";
  if (failing > 0) note += ", " + std::to_string(failing) + " with a failed job";
  if (unreachable > 0) note += ", " + std::to_string(unreachable) + " unreachable";
  total.note = note;
  lines.push_back(total);
  return lines;
}

void print_fleet_status_table(std::ostream& out, const std::vector<FleetStatusLine>& lines) {
  std::size_t width = 8;
  for (const auto& l : lines) width = std::max(width, terminal_text(l.target).size() + 2);
  out << std::left << std::setw(int(width)) << "TARGET" << std::right << std::setw(6) << "JOBS"
      << std::setw(6) << "DONE" << std::setw(9) << "RUNNING" << std::setw(8) << "FAILED"
      << std::setw(12) << "ROWS" << std::setw(10) << "RATE" << std::setw(9) << "ETA"
      << "  NOTE\n";
  for (const auto& l : lines) {
    out << std::left << std::setw(int(width)) << terminal_text(l.target) << std::right
        << std::setw(6) << number_or_dash(l.unknown, l.jobs) << std::setw(6)
        << number_or_dash(l.unknown, l.done) << std::setw(9) << number_or_dash(l.unknown, l.running)
        << std::setw(8) << number_or_dash(l.unknown, l.failed) << std::setw(12)
        << number_or_dash(l.unknown, l.rows) << std::setw(10)
        << (l.rows_per_s ? rate_text(*l.rows_per_s) : "-") << std::setw(9)
        << (l.eta_s ? eta_text(*l.eta_s) : "-") << "  " << terminal_text(l.note) << "\n";
  }
}

Json fleet_status_json(const std::vector<TargetStatus>& targets) {
  const std::vector<FleetStatusLine> lines = fleet_status_lines(targets);
  const auto line_json = [](const FleetStatusLine& l) {
    Json j = {{"target", l.target}};
    if (l.unknown) {
      j["error"] = l.note;
      return j;
    }
    j.update({{"jobs", l.jobs},
              {"done", l.done},
              {"running", l.running},
              {"failed", l.failed},
              {"rows_done", l.rows},
              {"rows_per_s", json_number(l.rows_per_s, 1)},
              {"eta_s", json_number(l.eta_s, 0)},
              {"error", l.note.empty() ? Json() : Json(l.note)}});
    return j;
  };
  Json result = {{"targets", Json::array()}, {"fleet", line_json(lines.back())}};
  for (std::size_t i = 0; i + 1 < lines.size(); ++i)
    result["targets"].push_back(line_json(lines[i]));
  result["fleet"].erase("error");
  result["fleet"]["note"] = lines.back().note;
  Json jobs = Json::array();
  for (const auto& t : targets) {
    if (t.error) continue;
    // status --json's own job objects, each with its target first.
    std::ostringstream one;
    print_status_json(one, t.report.jobs, t.report.runners);
    const Json parsed = Json::parse(one.str());
    for (const Json& job : parsed.at("jobs")) {
      Json with = {{"target", t.target}};
      with.update(job);
      jobs.push_back(std::move(with));
    }
  }
  result["jobs"] = std::move(jobs);
  return result;
}

std::vector<TargetStatus> read_fleet_status(const StatusOptions& options, const JobsFile& file,
                                            const TargetsFile& targets, const std::string& target,
                                            Contact contact) {
  std::vector<TargetStatus> read;
  for (const FleetTarget& t : chosen_targets(targets, target)) {
    StatusOptions one = options;
    one.dsn = t.dsn;
    TargetStatus status{t.name, std::nullopt, {}};
    try {
      status.report = read_status_report(one, file, contact);
    } catch (const InputError& e) {
      status.error = e.problems().empty() ? std::string("?") : e.problems().front();
    } catch (const std::exception& e) {
      status.error = e.what();
    }
    if (status.error) status.error = target_problem(*status.error);
    read.push_back(std::move(status));
  }
  return read;
}

int fleet_status_command(const StatusOptions& options, const TargetsFile& targets,
                         const std::string& target, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const std::vector<TargetStatus> read = read_fleet_status(options, file, targets, target);
  const bool all_read =
      std::none_of(read.begin(), read.end(), [](const TargetStatus& t) { return t.error; });
  if (options.format == StatusFormat::json)
    print_json(out, fleet_status_json(read));
  else
    print_fleet_status_table(out, fleet_status_lines(read));
  return all_read ? k_exit_ok : k_exit_job_failed;
}

}  // namespace pgxform
