// runner_pool: how many workers each runner at work has, and why not more — the state table
// runner_pool (state version 10), for status. A runner (run, catch-up, verify) keeps no more
// workers than it was asked for (--threads, defaults.threads, `set --threads`), than the tasks
// that can run now, or than the connections the server has free for it less a reserve
// (--reserve-connections) allow (worker_pool.h decides, pool_monitor.h writes the row here
// when its figures change and deletes it when the runner ends). A runner killed leaves its row:
// status shows only those of runners whose sessions are still there.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "state/state_schema.h"

namespace pgxform {

// What limits a pool, as the log and status say it.
struct PoolFigures {
  int workers = 0;                      // the pool's workers now
  int threads = 1;                      // asked
  int tasks = 0;                        // tasks that can run now
  std::optional<int> connections_free;  // for this runner on the server; none: unknown
  int reserve = 0;                      // connections left free for others
  bool operator==(const PoolFigures& o) const;
  bool operator!=(const PoolFigures& o) const { return !(*this == o); }
};

// "3 workers: 3 tasks can run, 42 connections free (1024 threads asked, 5 kept in reserve)".
std::string pool_text(const PoolFigures& figures);

struct RunnerPool {
  std::string runner;   // host:pid
  std::string command;  // run, catch-up, verify
  PoolFigures figures;
};

// Writes (or replaces) the runner's row, one transaction. Needs state version 10.
void write_runner_pool(pqxx::connection& conn, const StateSchema& schema, const RunnerPool& pool);
// Deletes it, one transaction. Needs state version 10.
void drop_runner_pool(pqxx::connection& conn, const StateSchema& schema, const std::string& runner);
// The rows of the runners whose sessions are still there, by runner; empty before version 10.
std::vector<RunnerPool> read_runner_pools(pqxx::transaction_base& tx, const StateSchema& schema);

}  // namespace pgxform
