#include "state/state_schema.h"

#include "database/database.h"
#include "state/state_locks.h"
#include "state/state_sql.h"

namespace pgxform {

namespace {

// The tables of `version` that the schema lacks (schema_version aside: it has a check of its
// own); one round trip.
std::vector<const StateTable*> missing_tables(pqxx::transaction_base& tx, const StateSchema& schema,
                                              int version) {
  std::vector<const StateTable*> missing;
  std::string names = "{";
  for (const auto& t : state_tables())
    if (t.version <= version && std::string(t.name) != "schema_version")
      names += std::string(names.size() > 1 ? "," : "") + t.name;
  const pqxx::result r = tx.exec_params(R"(
    SELECT n FROM pg_catalog.unnest($2::text[]) AS n
    WHERE pg_catalog.to_regclass($1 || '.' || pg_catalog.quote_ident(n)) IS NULL)",
                                        schema.sql, names + "}");
  for (const auto& row : r)
    for (const auto& t : state_tables())
      if (row[0].as<std::string>() == t.name) missing.push_back(&t);
  return missing;
}

int recorded_version(pqxx::transaction_base& tx, const StateSchema& schema) {
  return tx
      .exec1(schema.fill("SELECT coalesce(pg_catalog.max(version), 0) FROM @schema_version@"))[0]
      .as<int>();
}

}  // namespace

int state_version(pqxx::transaction_base& tx, const StateSchema& schema) {
  if (tx.exec_params1("SELECT pg_catalog.to_regclass($1) IS NULL",
                      schema.table("schema_version"))[0]
          .as<bool>())
    return 0;
  return recorded_version(tx, schema);
}

int state_version(pqxx::connection& conn, const StateSchema& schema) {
  pqxx::read_transaction tx(conn);
  return state_version(tx, schema);
}

std::string feature_since_sql(const StateSchema& schema, StateFeature feature) {
  return schema.fill("(SELECT v.applied_at FROM @schema_version@ v WHERE v.version = @version@)",
                     {{"@version@", std::to_string(static_cast<int>(feature))}});
}

int checked_state_version(pqxx::transaction_base& tx, const StateSchema& schema) {
  const int version = state_version(tx, schema);
  const std::string fix =
      "; restore it from a backup of the state schema, or see docs/state-tables.md (\"When a "
      "state table is gone\"): pgxform does not recreate it, as it cannot know what it held";
  if (version == 0) {
    // schema_version gone, the rest still there: the schema would be created again over it.
    if (!tx.exec_params1("SELECT pg_catalog.to_regclass($1) IS NULL", schema.table("job_state"))[0]
             .as<bool>())
      throw StateSchemaError({"the state schema " + schema.name +
                              " holds job_state but no version in schema_version (the table or "
                              "its rows dropped?), so "
                              "pgxform cannot tell the version of its tables and would create "
                              "them again" +
                              fix});
    return version;
  }
  std::vector<std::string> problems;
  for (const StateTable* t : missing_tables(tx, schema, version))
    problems.push_back("the state schema " + schema.name + " is at version " +
                       std::to_string(version) + ", but its table " + t->name +
                       " is missing (dropped?): it holds " + t->holds + fix);
  if (!problems.empty()) throw StateSchemaError(problems);
  return version;
}

int newest_state_version() {
  const auto& migrations = state_migrations();
  return migrations.empty() ? 0 : migrations.back().version;
}

void ensure_state_schema(pqxx::connection& conn, const StateSchema& schema) {
  const int newest = newest_state_version();
  {
    pqxx::read_transaction check(conn);
    if (checked_state_version(check, schema) == newest) return;  // the common case: no lock
  }
  pqxx::work tx(conn);
  transaction_lock(tx, setup_lock(schema));
  checked_state_version(tx, schema);  // another runner may have been at it meanwhile
  // Only when it is missing: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
  // database even when the schema exists, and a DBA may have created it for a role without.
  if (tx.exec_params1("SELECT pg_catalog.to_regnamespace($1) IS NULL", schema.sql)[0].as<bool>())
    tx.exec(schema.fill("CREATE SCHEMA @schema@"));
  tx.exec(schema.fill(R"(
    CREATE TABLE IF NOT EXISTS @schema_version@ (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT pg_catalog.now()))"));
  const int current = recorded_version(tx, schema);
  if (current > newest)
    throw std::runtime_error("the state schema " + schema.name + " is at version " +
                             std::to_string(current) + ", newer than this pgxform knows (" +
                             std::to_string(newest) + "): use a newer pgxform");
  for (const auto& m : state_migrations()) {
    if (m.version <= current) continue;
    tx.exec(schema.fill(m.sql));
    tx.exec_params(schema.fill("INSERT INTO @schema_version@ (version, name) VALUES ($1, $2)"),
                   m.version, std::string(m.name));
  }
  tx.commit();
}

}  // namespace pgxform
