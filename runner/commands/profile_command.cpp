#include "commands/profile_command.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>

#include "analysis/block_counters.h"
#include "base/exit_code.h"
#include "base/output_format.h"
#include "catalog/catalog.h"
#include "database/database.h"
#include "output/json_output.h"
#include "output/report.h"
#include "plan/job_selection.h"
#include "state/batch_log.h"
#include "state/job_identity.h"
#include "state/state_store.h"

namespace pgxform {

namespace {

// What profile reads about one job: its state row and batches, and, when the job resolves
// against the catalog, its table's key span and estimated rows.
ProfileInputs read_inputs(pqxx::connection& conn, StateStore& store, const Job& job,
                          const Preflight& preflight) {
  ProfileInputs in;
  in.job = job.name;
  in.list = job.list;
  if (const auto state = store.job_status(job.name)) {
    in.status = state->status;
    in.rows_done = state->rows_done;
  }
  pqxx::read_transaction tx(conn);
  in.batches = read_batches(tx, store.schema(), job.name);
  const auto resolved = preflight.jobs.find(job.name);
  if (resolved == preflight.jobs.end()) return in;
  try {
    if (resolved->second.key_category == 'N' && !in.batches.empty())
      in.span = key_span(tx, resolved->second);
    in.estimated_rows = estimated_rows(tx, resolved->second);
  } catch (const pqxx::sql_error& e) {
    spdlog::debug("{}: no key range or estimate: {}", job.name, redact(e.what()));
  }
  return in;
}

}  // namespace

void print_profile_json(std::ostream& out, const std::vector<JobProfile>& jobs) {
  Json list = Json::array();
  for (const auto& p : jobs) {
    const JobFigures& f = p.figures;
    Json o = {{"job", p.job},
              {"trend", trend_name(f.trend)},
              {"batches", f.batches},
              {"rows", f.rows},
              {"rows_per_second", json_number(f.rows_per_second, 1)},
              {"p50_ms", json_number(f.p50_ms, 3)},
              {"p95_ms", json_number(f.p95_ms, 3)},
              {"max_ms", json_number(f.max_ms, 3)},
              {"growth", json_number(f.growth, 3)},
              {"eta_seconds", json_number(p.eta_seconds, 3)},
              {"status", p.status}};
    for (const auto& field : k_counter_fields)
      o[field.column] = f.blocks ? Json((*f.blocks).*field.member) : Json(nullptr);
    o["blocks_per_row"] = json_number(f.blocks_per_row, 3);
    o["blocks_growth"] = json_number(f.blocks_growth, 3);
    o["bisect_batches"] = p.bisected.batches;
    o["bisect_rows"] = p.bisected.rows;
    o["retry_batches"] = p.retried.batches;
    o["retry_rows"] = p.retried.rows;
    list.push_back(o);
  }
  print_json(out, Json{{"jobs", list}});
}

void print_profile_table(std::ostream& out, const std::vector<JobProfile>& jobs) {
  out << std::left << std::setw(20) << "JOB" << std::setw(9) << "STATUS" << std::right
      << std::setw(9) << "BATCHES" << std::setw(12) << "ROWS" << std::setw(10) << "ROWS/S"
      << std::setw(10) << "P50 MS" << std::setw(10) << "P95 MS" << std::setw(10) << "MAX MS"
      << "  " << std::left << std::setw(13) << "TREND" << std::right << std::setw(7) << "GROWTH"
      << std::setw(9) << "BLK/ROW"
      << "  ETA\n";
  for (const auto& p : jobs) {
    const JobFigures& f = p.figures;
    const std::string eta = p.status == "done" ? "-"
                            : p.eta_seconds    ? human_duration(*p.eta_seconds)
                                               : "?";
    out << std::left << std::setw(20) << p.job << std::setw(9) << p.status << std::right
        << std::setw(9) << f.batches << std::setw(12) << f.rows << std::setw(10)
        << fixed(f.rows_per_second, 0) << std::setw(10) << fixed(f.p50_ms, 1) << std::setw(10)
        << fixed(f.p95_ms, 1) << std::setw(10) << fixed(f.max_ms, 1) << "  " << std::left
        << std::setw(13) << trend_name(f.trend) << std::right << std::setw(7)
        << (f.growth ? fixed(*f.growth, 1) + "x" : "-") << std::setw(9)
        << (f.blocks_per_row ? fixed(*f.blocks_per_row, 1) : "-") << "  " << eta << "\n";
  }
  for (const auto& p : jobs)
    if (const auto note = set_apart_note(p)) out << "\nnote: " << *note << "\n";
  for (const auto& p : jobs)
    if (const auto warning = trend_warning(p)) out << "\nwarning: " << *warning << "\n";
}

std::vector<JobProfile> read_profiles(const ProfileOptions& options, const JobsFile& file) {
  const std::vector<const Job*> selected =
      select_jobs(file, options.jobs, JobKinds::batched, "it has no batches to profile");
  auto conn = connect(options.dsn);
  const Preflight preflight = inspect_catalog(*conn, file, options.jobs);
  StateStore store(*conn, StateSchema(file.state_schema));
  {
    // Batches recorded on another table than the file names now (job_identity.h): their
    // figures are that table's, and the ETA is reckoned against this one's rows.
    pqxx::read_transaction tx(*conn);
    for (const auto& problem :
         identity_problems(file, preflight.jobs, read_identities(tx, store.schema())))
      spdlog::warn("{}", problem);
  }
  std::vector<JobProfile> profiles;
  for (const Job* job : selected)
    profiles.push_back(compute_profile(read_inputs(*conn, store, *job, preflight)));
  return profiles;
}

void print_profiles(std::ostream& out, const ProfileOptions& options,
                    const std::vector<JobProfile>& profiles) {
  if (options.format == ProfileFormat::json)
    print_profile_json(out, profiles);
  else
    print_profile_table(out, profiles);
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

void write_html_file(const std::string& path, const std::function<void(std::ostream&)>& write) {
  std::ofstream html(path);
  if (!html) throw InputError({"--html: cannot write the report to " + path});
  write(html);
  html.close();
  if (!html) throw std::runtime_error("writing the report to " + path + " failed");
  spdlog::info("report written to {}", path);
}

int profile_command(const ProfileOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const std::vector<JobProfile> profiles = read_profiles(options, file);
  print_profiles(out, options, profiles);
  if (options.html)
    write_html_file(*options.html, [&](std::ostream& html) {
      write_report(html, {"pgxform profile", file.path, utc_now()}, profiles);
    });
  return k_exit_ok;
}

}  // namespace pgxform
