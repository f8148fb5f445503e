#include "database/connection_budget.h"

namespace pgxform {

int free_connections(pqxx::transaction_base& tx) {
  // Only client backends take a slot of max_connections (autovacuum, WAL senders and
  // background workers have their own). A role without pg_read_all_stats sees no backend_type
  // of another role's session: such a session with a user is counted, which may count a
  // parallel or replication worker of another role too, never a client too few. LEAST ignores
  // the NULL of a limit that is not set (LEAST and GREATEST are SQL syntax, not functions of
  // pg_catalog).
  static const char* const k_sql = R"(
    WITH sessions AS (
      SELECT pg_catalog.count(*) AS everyone,
             pg_catalog.count(*) FILTER (WHERE a.usename = CURRENT_USER) AS role,
             pg_catalog.count(*) FILTER (WHERE a.datname = pg_catalog.current_database()) AS db
      FROM pg_catalog.pg_stat_activity a
      WHERE a.usesysid IS NOT NULL AND coalesce(a.backend_type, 'client backend') = 'client backend')
    SELECT GREATEST(0, LEAST(
      pg_catalog.current_setting('max_connections')::int
        - pg_catalog.current_setting('superuser_reserved_connections')::int
        - coalesce(pg_catalog.current_setting('reserved_connections', true)::int, 0)
        - s.everyone,
      CASE WHEN r.rolconnlimit >= 0 THEN r.rolconnlimit - s.role END,
      CASE WHEN d.datconnlimit >= 0 THEN d.datconnlimit - s.db END))
    FROM sessions s, pg_catalog.pg_roles r, pg_catalog.pg_database d
    WHERE r.rolname = CURRENT_USER AND d.datname = pg_catalog.current_database())";
  return tx.exec1(k_sql)[0].as<int>();
}

}  // namespace pgxform
