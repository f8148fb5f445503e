#include "plan/job_selection.h"

#include <algorithm>

#include "base/errors.h"

namespace pgxform {

std::vector<const Job*> select_jobs(const JobsFile& file, const std::vector<std::string>& names,
                                    JobKinds kinds, const std::string& why_batched) {
  for (const auto& name : names) {
    const Job* job = file.find_job(name);
    if (!job) throw PreflightError({file.path + ": no job named '" + name + "'"});
    if (kinds == JobKinds::batched && job->is_step())
      throw PreflightError(
          {file.path + ": job '" + name + "' is a one-shot sql: step; " + why_batched});
  }
  std::vector<const Job*> jobs;
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs) {
      const bool named = std::find(names.begin(), names.end(), job.name) != names.end();
      if (names.empty() ? kinds == JobKinds::any || !job.is_step() : named) jobs.push_back(&job);
    }
  return jobs;
}

}  // namespace pgxform
