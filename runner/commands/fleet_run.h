// fleet_run: `pgxform run -f jobs.yaml --targets targets.yaml` — one migration over many
// databases, in one process, under one budget of workers.
//
// A fleet run is each target's ordinary run (run_command.h: run_jobs): its scripts, its
// preflight, its own state schema, claims and resume, exactly as `pgxform run --dsn` against
// it would do, so that any target can be resumed alone with a plain run. What the fleet adds:
//   - The jobs file is read and validated once; the targets file (and its targets_query)
//     before anything is written anywhere (exit 2).
//   - One budget (fleet_budget.h): --threads N (else defaults.threads) workers for the whole
//     fleet; each target's worker pool draws from it, never more than the target's
//     max_threads, nor its host more than max_threads_per_host. Targets start in the file's
//     order, or largest database first (--order size), as workers come free; a target that
//     can use fewer workers than it holds gives them back to the next.
//   - Faults stay local: a target that cannot be reached, fails its preflight or fails a job
//     is reported and the others go on. At the end one line per target says done, failed
//     (why) or not started; the exit code is 0 when every target finished, 3 when a signal
//     stopped the fleet (every target's state is consistent: run again), else 1.
//   - A target's run is driven from a thread of its own (besides its pool's workers); at
//     most N targets run at once, since each holds at least one worker.
#pragma once

#include <string>

#include "commands/run_command.h"

namespace pgxform {

// --order: the order targets start in.
enum class FleetOrder { file, size };

struct FleetRunOptions {
  RunOptions run;  // run.dsn is unused: each target's connection string
  std::string targets;
  std::string target;  // --target NAME: only that one; empty: all
  FleetOrder order = FleetOrder::file;
};

int fleet_run_command(const FleetRunOptions& options);

}  // namespace pgxform
