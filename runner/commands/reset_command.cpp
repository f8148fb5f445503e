#include "commands/reset_command.h"

#include "base/exit_code.h"
#include "database/database.h"
#include "output/terminal_text.h"
#include "plan/job_selection.h"
#include "state/job_identity.h"
#include "state/state_locks.h"
#include "state/state_store.h"

namespace pgxform {

int reset_command(const ResetOptions& options, std::ostream& out) {
  const JobsFile file = parse_jobs_file(options.file);
  const Job& job = *select_jobs(file, {options.job}, JobKinds::any).front();
  auto conn = connect(options.dsn);
  StateStore store(*conn, StateSchema(file.state_schema));
  const std::optional<JobStatus> state =
      store.version() == 0 ? std::nullopt : store.job_status(job.name);
  if (!state) {
    out << job.name << ": nothing recorded yet\n";
    return k_exit_ok;
  }
  store.ensure_schema();
  if (options.to && (job.is_step() || state->slices > 1))
    throw UsageError("reset --to works on a job without slices; reset " + job.name +
                     " without --to to start it again");
  const std::optional<ResolvedJob> resolved =
      options.to ? std::optional<ResolvedJob>(resolve_jobs(*conn, file, {job.name}).front())
                 : std::nullopt;
  // Moving the cursor of a job whose recorded state is another table's would mix the two: only
  // a reset from the first key starts it over.
  if (resolved) check_identities(*conn, store.schema(), file, std::vector<ResolvedJob>{*resolved});
  const JobClaim claim(*conn, store.schema(), job.name, state->slices);
  if (options.to) {
    {
      pqxx::read_transaction tx(*conn);
      check_key(tx, *resolved, *options.to, "--to");
    }
    store.reset_job_to(*resolved, *options.to);
    out << job.name << ": the next run continues after key " << terminal_text(*options.to) << "\n";
  } else {
    store.reset_job(job.name);
    // A step has no keys: what it gets back is being run again.
    out << job.name
        << (job.is_step() ? ": reset; the next run runs the step again\n"
                          : ": reset; the next run starts it from its first key\n");
  }
  return k_exit_ok;
}

}  // namespace pgxform
