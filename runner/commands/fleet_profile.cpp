#include "commands/fleet_profile.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "base/exit_code.h"
#include "commands/fleet_targets.h"
#include "output/fleet_report.h"

namespace pgxform {

int fleet_profile_command(const ProfileOptions& options, const TargetsFile& targets,
                          const std::string& target, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  std::vector<TargetProfiles> read;
  std::optional<int> result;
  for (const FleetTarget& t : chosen_targets(targets, target)) {
    ProfileOptions one = options;
    one.dsn = t.dsn;
    out << "== target " << t.name << "\n" << std::flush;
    TargetProfiles profiles{t.name, {}, std::nullopt};
    int code = k_exit_ok;
    try {
      profiles.jobs = read_profiles(one, file);
      print_profiles(out, options, profiles.jobs);
    } catch (const InputError& e) {
      for (const auto& problem : e.problems()) spdlog::error("{}: {}", t.name, problem);
      profiles.error = target_problem(e.problems().empty() ? "?" : e.problems().front());
      code = k_exit_usage;
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", t.name, target_problem(e.what()));
      profiles.error = target_problem(e.what());
      code = k_exit_job_failed;
    }
    read.push_back(std::move(profiles));
    result = !result || *result == code ? code : k_exit_job_failed;
  }
  if (options.html)
    write_html_file(*options.html, [&](std::ostream& html) {
      write_fleet_report(html, {"pgxform profile of a fleet", file.path, utc_now()}, read);
    });
  return result.value_or(k_exit_ok);
}

}  // namespace pgxform
