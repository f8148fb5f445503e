// job_selection: which jobs of the jobs file a command works on, from the names the user gave
// it. The one place that says "no job named X" and "X is a one-shot step", so that every
// command says them the same way (an input error, exit 2, naming the jobs file).
#pragma once

#include <string>
#include <vector>

#include "base/errors.h"
#include "plan/jobs_file.h"

namespace pgxform {

// Which jobs a command can work on: any, or only batched jobs (not one-shot `sql:` steps).
enum class JobKinds { any, batched };

// The jobs of `file` named in `names`, in file order; every job of `kinds` when `names` is
// empty. Throws PreflightError for a name that is no job of the file and, with
// JobKinds::batched, for a step ("job 'X' is a one-shot sql: step; " + `why_batched`).
std::vector<const Job*> select_jobs(const JobsFile& file, const std::vector<std::string>& names,
                                    JobKinds kinds, const std::string& why_batched = "");

}  // namespace pgxform
