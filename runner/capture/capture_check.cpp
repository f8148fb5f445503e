#include "capture/capture_check.h"

#include "capture/change_capture.h"
#include "capture/logical_capture.h"
#include "state/capture_state.h"

namespace pgxform {

namespace {

std::string where_of(const JobsFile& file, const std::string& job) {
  const Job* spec = file.find_job(job);
  return file.path + ":" + std::to_string(spec ? spec->line : 0) + ": job '" + job + "'";
}

// The role must own `table` (or be a member of its owner): none when it does.
std::optional<std::string> ownership(pqxx::transaction_base& tx, const std::string& table,
                                     const std::string& mode) {
  static const std::string k_owner = R"(
    SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE'),
           pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner)),
           pg_catalog.quote_ident(current_user)
    FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1))";
  const pqxx::result r = tx.exec_params(k_owner, table);
  if (r.empty() || r[0][0].as<bool>()) return std::nullopt;
  const std::string owner = r[0][1].as<std::string>(), role = r[0][2].as<std::string>();
  return "capturing " + table + " (changes: " + mode + ") needs the rights of its owner, " + owner +
         ", which " + role + " lacks: ALTER TABLE " + table + " OWNER TO " + role + "; or GRANT " +
         owner + " TO " + role + " (docs/security.md)";
}

// The replica identity of `table` must carry `column`: none when it does.
std::optional<std::string> replica_identity(pqxx::transaction_base& tx, const std::string& table,
                                            const std::string& column) {
  static const std::string k_identity = R"(
    SELECT c.relreplident = 'f' OR EXISTS (
             SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
             WHERE i.indrelid = c.oid AND a.attname = $2
               AND ((c.relreplident = 'd' AND i.indisprimary)
                    OR (c.relreplident = 'i' AND i.indisreplident))),
           (SELECT pg_catalog.quote_ident(ic.relname) FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_catalog.pg_attribute a
              ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
            WHERE i.indrelid = c.oid AND a.attname = $2 AND i.indisunique AND i.indimmediate
              AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute k
                              WHERE k.attrelid = c.oid AND k.attnum = ANY (i.indkey::int2[])
                                AND NOT k.attnotnull)
            ORDER BY i.indisprimary DESC, ic.relname LIMIT 1)
    FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1))";
  const pqxx::result r = tx.exec_params(k_identity, table, column);
  if (r.empty() || r[0][0].as<bool>()) return std::nullopt;
  const std::string fix =
      r[0][1].is_null()
          ? "ALTER TABLE " + table +
                " REPLICA IDENTITY FULL (every UPDATE and DELETE then writes the whole old row to"
                " the WAL), or give it a primary key that holds " +
                column
          : "ALTER TABLE " + table + " REPLICA IDENTITY USING INDEX " + r[0][1].as<std::string>();
  return "changes: logical reads the key of a deleted or changed row of " + table +
         " from the WAL, which holds it only when the table's replica identity includes " + column +
         ": " + fix;
}

// What the server and the role give changes: logical (capture_check.h: ServerFacts).
ServerFacts server_facts(pqxx::transaction_base& tx, const StateSchema& schema) {
  static const std::string k_server = R"(
    SELECT pg_catalog.current_setting('server_version_num')::int,
           pg_catalog.current_setting('wal_level'),
           (SELECT r.rolreplication OR r.rolsuper FROM pg_catalog.pg_roles r
            WHERE r.rolname = current_user),
           pg_catalog.quote_ident(current_user),
           (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots),
           pg_catalog.current_setting('max_replication_slots')::int,
           EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1),
           EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $2),
           pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE'),
           pg_catalog.quote_ident(pg_catalog.current_database()))";
  const SlotNames names = slot_names(tx, schema);
  const pqxx::row r = tx.exec_params1(k_server, names.slot, names.publication);
  ServerFacts facts;
  facts.version_num = r[0].as<int>();
  facts.wal_level = r[1].as<std::string>();
  facts.replication = r[2].as<bool>();
  facts.role = r[3].as<std::string>();
  facts.slots_used = r[4].as<int>();
  facts.max_slots = r[5].as<int>();
  facts.slot_exists = r[6].as<bool>();
  facts.publication_exists = r[7].as<bool>();
  facts.can_create = r[8].as<bool>();
  facts.database = r[9].as<std::string>();
  return facts;
}

// The tables of `job` whose capture is not in place and that pgxform will change.
std::vector<std::string> tables_to_change(pqxx::transaction_base& tx, const StateSchema& schema,
                                          const ResolvedJob& job) {
  if (job.capture == ChangeCapture::trigger) return uncaptured_tables(tx, schema, job);
  std::vector<std::string> out;
  const std::optional<std::string> missing = logical_missing(tx, schema, job);
  if (!missing) return out;
  out.push_back(job.table_sql);
  for (const ResolvedAlso& also : job.also) out.push_back(also.table_sql);
  return out;
}

}  // namespace

std::vector<std::string> logical_server_problems(const ServerFacts& facts,
                                                 const std::string& where) {
  std::vector<std::string> problems;
  if (facts.version_num < 140000) {
    problems.push_back(where +
                       ": changes: logical needs PostgreSQL 14 or later (pgoutput's"
                       " messages); use changes: trigger on this server");
    return problems;
  }
  if (facts.wal_level != "logical")
    problems.push_back(where +
                       ": changes: logical needs wal_level = logical, and the server runs"
                       " with " +
                       facts.wal_level +
                       ": ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL");
  if (!facts.replication)
    problems.push_back(where +
                       ": changes: logical reads a replication slot, which needs the"
                       " REPLICATION attribute that " +
                       facts.role + " lacks: ALTER ROLE " + facts.role +
                       " REPLICATION (as a superuser)");
  if (!facts.slot_exists && facts.slots_used >= facts.max_slots)
    problems.push_back(where + ": changes: logical needs a replication slot, and all " +
                       std::to_string(facts.max_slots) +
                       " the server allows are in use (max_replication_slots): drop one that is"
                       " no longer used (SELECT pg_drop_replication_slot(...)), or ALTER SYSTEM"
                       " SET max_replication_slots = " +
                       std::to_string(facts.max_slots + 1) + "; then restart PostgreSQL");
  if (!facts.publication_exists && !facts.can_create)
    problems.push_back(where +
                       ": changes: logical creates a publication, which needs CREATE on"
                       " the database: GRANT CREATE ON DATABASE " +
                       facts.database + " TO " + facts.role);
  return problems;
}

std::vector<std::string> capture_problems(pqxx::connection& conn, const JobsFile& file,
                                          const std::map<std::string, ResolvedJob>& jobs) {
  std::vector<std::string> problems;
  const StateSchema schema(file.state_schema);
  pqxx::read_transaction tx(conn);
  bool server_checked = false;
  for (const auto& list : file.lists)
    for (const auto& spec : list.jobs) {
      const auto found = jobs.find(spec.name);
      if (found == jobs.end() || !found->second.captures) continue;
      const ResolvedJob& job = found->second;
      const std::string where = where_of(file, job.name);
      const std::string mode = capture_name(job.capture);
      if (job.capture == ChangeCapture::logical && !server_checked) {
        for (std::string& p : logical_server_problems(server_facts(tx, schema), where))
          problems.push_back(p);
        server_checked = true;
      }
      for (const std::string& table : tables_to_change(tx, schema, job))
        if (auto problem = ownership(tx, table, mode)) problems.push_back(where + ": " + *problem);
      if (job.capture != ChangeCapture::logical) continue;
      if (auto problem = replica_identity(tx, job.table_sql, job.key_name))
        problems.push_back(where + ": " + *problem);
      for (const ResolvedAlso& also : job.also)
        if (auto problem = replica_identity(tx, also.table_sql, also.column))
          problems.push_back(where + ": " + *problem);
    }
  return problems;
}

namespace {

std::optional<std::string> missing_by(pqxx::transaction_base& tx, const StateSchema& schema,
                                      const ResolvedJob& job, ChangeCapture method) {
  if (method == ChangeCapture::logical) return logical_missing(tx, schema, job);
  const std::vector<std::string> tables = uncaptured_tables(tx, schema, job);
  if (tables.empty()) return std::nullopt;
  return "no capture trigger on " + tables.front();
}

}  // namespace

std::optional<std::string> capture_missing(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const ResolvedJob& job) {
  std::optional<std::string> missing = missing_by(tx, schema, job, job.capture);
  // A job whose jobs file moved it to the other method still captures by the old one until
  // the new one is installed.
  const ChangeCapture other =
      job.capture == ChangeCapture::logical ? ChangeCapture::trigger : ChangeCapture::logical;
  if (missing && !missing_by(tx, schema, job, other)) missing.reset();
  return missing;
}

}  // namespace pgxform
