// pool_monitor: what a runner's worker pool asks once a second from the calling thread
// (worker_pool.h: PoolSizing) — the workers `pgxform set --threads` asks for now (the control
// table, job_control.h: read_threads, checked against its limit) and the connections the server
// has free for this runner (connection_budget.h) — and where it says what limits it, for status
// (runner_pool.h: the runner's row, written when its figures change and deleted at the end).
//
// It reads on a connection of its own, with a short statement_timeout, opened at its first read
// and again after a failure (said at debug level only: the workers' own errors tell of a server
// that went away). A command that has a connection already counts the pool's starting figures
// on it, leaving one free connection for the monitor's: the monitor then connects at the pool's
// first look, while the first worker already runs, not before the pool starts.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "engine/worker_pool.h"
#include "state/runner_pool.h"
#include "state/state_schema.h"

namespace pgxform {

// Whether the pool follows `pgxform set --threads` (a run does; catch-up and verify keep
// their --threads).
enum class FollowThreads { yes, no };

class PoolMonitor {
 public:
  PoolMonitor(std::string dsn, StateSchema schema, std::string command, FollowThreads follow);
  ~PoolMonitor();
  PoolMonitor(const PoolMonitor&) = delete;
  PoolMonitor& operator=(const PoolMonitor&) = delete;

  // The figures a pool starts with, and its workers: pool_size() with the connections free now,
  // `held` the connections the pool has already (a connection lent to it). Connects.
  PoolFigures starting_figures(int threads, int tasks, int held, int reserve);
  // The same, read on `own` (the command's connection, which it lends to the pool): the
  // monitor's connection is not opened yet, and one of the free connections is kept for it.
  PoolFigures starting_figures(pqxx::connection& own, int threads, int tasks, int held,
                               int reserve);
  PoolLimits limits();
  // The pool's figures of this second: written to runner_pool when they changed (the free
  // connections, which change all the time, at most every 10 s).
  void figures(const PoolFigures& figures);

 private:
  pqxx::connection& conn();

  std::string m_dsn;
  StateSchema m_schema;
  std::string m_command;
  FollowThreads m_follow;
  std::unique_ptr<pqxx::connection> m_conn;
  int m_version = 0;  // of the state schema, read until it is the newest
  std::optional<PoolFigures> m_written;
  std::chrono::steady_clock::time_point m_written_at;
};

// The sizing of a pool that asks `monitor` (shared with the pool's functions).
PoolSizing pool_sizing(std::shared_ptr<PoolMonitor> monitor, int threads, int reserve);

}  // namespace pgxform
