// exit_code: what the process tells its caller. A contract: scripts and tests depend on it.
#pragma once

namespace pgxform {

enum ExitCode : int {
  k_exit_ok = 0,           // every job done (run), or the command did what it was asked
  k_exit_job_failed = 1,   // a job failed: its error, SQLSTATE and key range are in job_state
  k_exit_usage = 2,        // an InputError (errors.h): nothing was written
  k_exit_interrupted = 3,  // stopped by SIGINT/SIGTERM; the state is consistent, run again
};
}  // namespace pgxform
