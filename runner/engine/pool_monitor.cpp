#include "engine/pool_monitor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "database/connection_budget.h"
#include "database/database.h"
#include "state/job_control.h"

namespace pgxform {

namespace {

constexpr auto k_rewrite_free_after = std::chrono::seconds(10);

}  // namespace

PoolMonitor::PoolMonitor(std::string dsn, StateSchema schema, std::string command,
                         FollowThreads follow)
    : m_dsn(std::move(dsn)),
      m_schema(std::move(schema)),
      m_command(std::move(command)),
      m_follow(follow) {}

PoolMonitor::~PoolMonitor() {
  if (!m_written) return;
  try {
    drop_runner_pool(conn(), m_schema, runner_identity());
  } catch (const std::exception& e) {
    spdlog::debug("could not delete this runner's runner_pool row: {}", redact(e.what()));
  }
}

pqxx::connection& PoolMonitor::conn() {
  if (!m_conn) {
    auto conn = connect(m_dsn);
    pqxx::nontransaction(*conn).exec("SET statement_timeout = '5s'");
    m_version = state_version(*conn, m_schema);
    m_conn = std::move(conn);
  }
  return *m_conn;
}

PoolFigures PoolMonitor::starting_figures(int threads, int tasks, int held, int reserve) {
  PoolFigures figures{held, threads, tasks, std::nullopt, reserve};
  {
    pqxx::read_transaction tx(conn());
    figures.connections_free = free_connections(tx);
  }
  figures.workers = pool_size(figures);
  return figures;
}

PoolFigures PoolMonitor::starting_figures(pqxx::connection& own, int threads, int tasks, int held,
                                          int reserve) {
  PoolFigures figures{held, threads, tasks, std::nullopt, reserve};
  {
    pqxx::read_transaction tx(own);
    figures.connections_free = std::max(0, free_connections(tx) - (m_conn ? 0 : 1));
  }
  figures.workers = pool_size(figures);
  return figures;
}

PoolLimits PoolMonitor::limits() {
  PoolLimits limits;
  try {
    pqxx::read_transaction tx(conn());
    // The command creates or upgrades the state schema after the monitor connected (a run on a
    // fresh database), or never (verify): its version is read again until it is the newest.
    if (m_version < newest_state_version()) m_version = state_version(tx, m_schema);
    if (m_follow == FollowThreads::yes && has_feature(m_version, StateFeature::control_threads)) {
      limits.threads = read_threads(tx, m_schema);
      limits.threads_read = true;
    }
    limits.connections_free = free_connections(tx);
  } catch (const std::exception& e) {
    m_conn.reset();
    spdlog::debug("could not read the pool's limits: {}", redact(e.what()));
  }
  return limits;
}

void PoolMonitor::figures(const PoolFigures& figures) {
  const auto now = std::chrono::steady_clock::now();
  if (!has_feature(m_version, StateFeature::runner_pool)) return;
  if (m_written) {
    PoolFigures same_free = figures;
    same_free.connections_free = m_written->connections_free;
    if (*m_written == figures) return;
    if (*m_written == same_free && now - m_written_at < k_rewrite_free_after) return;
  }
  try {
    write_runner_pool(conn(), m_schema, {runner_identity(), m_command, figures});
    m_written = figures;
    m_written_at = now;
  } catch (const std::exception& e) {
    m_conn.reset();
    spdlog::debug("could not write this runner's runner_pool row: {}", redact(e.what()));
  }
}

PoolSizing pool_sizing(std::shared_ptr<PoolMonitor> monitor, int threads, int reserve) {
  PoolSizing sizing;
  sizing.threads = threads;
  sizing.reserve = reserve;
  sizing.limits = [monitor] { return monitor->limits(); };
  sizing.on_figures = [monitor](const PoolFigures& f) { monitor->figures(f); };
  return sizing;
}

}  // namespace pgxform
