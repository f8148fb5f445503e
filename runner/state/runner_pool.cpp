#include "state/runner_pool.h"

#include "base/sql_text.h"
#include "database/database.h"

namespace pgxform {

bool PoolFigures::operator==(const PoolFigures& o) const {
  return workers == o.workers && threads == o.threads && tasks == o.tasks &&
         connections_free == o.connections_free && reserve == o.reserve;
}

std::string pool_text(const PoolFigures& f) {
  const auto plural = [](int n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  return plural(f.workers, "worker", "workers") + ": " +
         plural(f.tasks, "task can run", "tasks can run") + ", " +
         (f.connections_free ? std::to_string(*f.connections_free) : std::string("?")) +
         " connections free (" + plural(f.threads, "thread asked", "threads asked") + ", " +
         std::to_string(f.reserve) + " kept in reserve)";
}

void write_runner_pool(pqxx::connection& conn, const StateSchema& schema, const RunnerPool& pool) {
  static const std::string k_sql = R"(
    INSERT INTO @runner_pool@ AS p
      (runner, command, workers, threads, tasks, connections_free, reserve)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (runner) DO UPDATE SET command = EXCLUDED.command, workers = EXCLUDED.workers,
      threads = EXCLUDED.threads, tasks = EXCLUDED.tasks,
      connections_free = EXCLUDED.connections_free, reserve = EXCLUDED.reserve,
      updated_at = pg_catalog.now())";
  pqxx::work tx(conn);
  const PoolFigures& f = pool.figures;
  tx.exec_params(fill_sql(k_sql, {{"@runner_pool@", schema.table("runner_pool")}}), pool.runner,
                 pool.command, f.workers, f.threads, f.tasks, f.connections_free, f.reserve);
  tx.commit();
}

void drop_runner_pool(pqxx::connection& conn, const StateSchema& schema,
                      const std::string& runner) {
  static const std::string k_sql = R"(DELETE FROM @runner_pool@ WHERE runner = $1)";
  pqxx::work tx(conn);
  tx.exec_params(fill_sql(k_sql, {{"@runner_pool@", schema.table("runner_pool")}}), runner);
  tx.commit();
}

std::vector<RunnerPool> read_runner_pools(pqxx::transaction_base& tx, const StateSchema& schema) {
  std::vector<RunnerPool> out;
  if (!has_feature(state_version(tx, schema), StateFeature::runner_pool)) return out;
  // $1 the application name's prefix: a runner's sessions are named after it (database.h).
  static const std::string k_sql = R"(
    SELECT p.runner, p.command, p.workers, p.threads, p.tasks, p.connections_free, p.reserve
    FROM @runner_pool@ p
    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                  WHERE a.application_name = $1 || p.runner)
    ORDER BY p.runner)";
  for (const auto& r :
       tx.exec_params(fill_sql(k_sql, {{"@runner_pool@", schema.table("runner_pool")}}),
                      k_application_prefix)) {
    RunnerPool pool;
    pool.runner = r[0].as<std::string>();
    pool.command = r[1].as<std::string>();
    pool.figures.workers = r[2].as<int>();
    pool.figures.threads = r[3].as<int>();
    pool.figures.tasks = r[4].as<int>();
    if (!r[5].is_null()) pool.figures.connections_free = r[5].as<int>();
    pool.figures.reserve = r[6].as<int>();
    out.push_back(std::move(pool));
  }
  return out;
}

}  // namespace pgxform
