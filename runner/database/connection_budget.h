// connection_budget: how many more connections the server would accept from this session's
// role into this session's database right now — the tightest of
//   max_connections, less superuser_reserved_connections (and reserved_connections, where the
//     server has it: PostgreSQL 16), less the client sessions there are;
//   the role's CONNECTION LIMIT, less its sessions;
//   the database's CONNECTION LIMIT, less its sessions.
// The reserved slots are counted as taken even for a superuser, who may use them: they are
// what lets an administrator in when everything else is full, and a runner must not take them.
// A worker pool opens no connection past this less a reserve the operator sets (worker_pool.h),
// so that `pgxform status`, the application and the DBAs still get in.
#pragma once

#include <pqxx/pqxx>

namespace pgxform {

// Never below 0. Reads pg_stat_activity, pg_roles and pg_database: no privilege needed (without
// pg_read_all_stats, another role's session of unknown kind is counted as a client).
int free_connections(pqxx::transaction_base& tx);

}  // namespace pgxform
