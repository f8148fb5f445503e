#include "catalog/source_catalog.h"

#include <map>

#include "base/sql_text.h"

namespace pgxform {

namespace {

// The tables (pg_class c) of the schema $1, and the catalog's filter for them, shared by every
// query below as @of_schema@.
const SqlPart k_of_schema{"@of_schema@", R"(
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition)"};

std::map<std::string, SourceTable> read_tables(pqxx::dbtransaction& tx, const std::string& schema) {
  std::map<std::string, SourceTable> tables;
  for (const auto& row : tx.exec_params(
           fill_sql("SELECT c.relname, c.reltuples FROM pg_catalog.pg_class c @of_schema@",
                    {k_of_schema}),
           schema)) {
    SourceTable table;
    table.name = row[0].as<std::string>();
    // -1: never vacuumed or analyzed (PostgreSQL 14 and later).
    if (const double rows = row[1].as<double>(); rows >= 0) table.estimated_rows = rows;
    tables.emplace(table.name, table);
  }
  static const char* const k_columns = R"(
    SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
           pg_catalog.format_type(a.atttypid, NULL), a.attnotnull
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    @of_schema@
    ORDER BY c.relname, a.attnum)";
  for (const auto& row : tx.exec_params(fill_sql(k_columns, {k_of_schema}), schema))
    tables.at(row[0].as<std::string>())
        .columns.push_back({row[1].as<std::string>(), row[2].as<std::string>(),
                            row[3].as<std::string>(), row[4].as<bool>()});
  return tables;
}

// One row per key column of each index: unnest keeps the columns' order, an expression has no
// attribute (attnum 0) and reads as "".
void read_indexes(pqxx::dbtransaction& tx, const std::string& schema,
                  std::map<std::string, SourceTable>& tables) {
  std::string index;  // the index of the previous row
  static const char* const k_sql = R"(
    SELECT c.relname, ic.relname, i.indisprimary, i.indisunique, am.amname = 'btree',
           i.indpred IS NOT NULL, i.indisvalid, coalesce(a.attname::text, '')
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[])
      WITH ORDINALITY AS k(attnum, position)
    LEFT JOIN pg_catalog.pg_attribute a
      ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
    @of_schema@
      AND k.position <= i.indnkeyatts
    ORDER BY c.relname, ic.relname, k.position)";
  for (const auto& row : tx.exec_params(fill_sql(k_sql, {k_of_schema}), schema)) {
    auto& indexes = tables.at(row[0].as<std::string>()).indexes;
    const auto name = row[1].as<std::string>();
    if (indexes.empty() || indexes.back().name != name) {
      SourceIndex i;
      i.name = name;
      i.primary = row[2].as<bool>();
      i.unique = row[3].as<bool>();
      i.btree = row[4].as<bool>();
      i.partial = row[5].as<bool>();
      i.valid = row[6].as<bool>();
      indexes.push_back(i);
    }
    indexes.back().columns.push_back(row[7].as<std::string>());
  }
}

// One row per column pair of each foreign key. A key that a partitioned table passed down to
// its partitions, or that reaches each partition of a referenced partitioned table, is a clone
// (conparentid set): only the original is read.
void read_foreign_keys(pqxx::dbtransaction& tx, const std::string& schema,
                       std::map<std::string, SourceTable>& tables) {
  static const char* const k_sql = R"(
    SELECT c.relname, con.conname, rn.nspname, rc.relname, a.attname, ra.attname
    FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
    JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
    JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
    CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(con.conkey), pg_catalog.unnest(con.confkey))
      WITH ORDINALITY AS k(attnum, referenced, position)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
    JOIN pg_catalog.pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.referenced
    @of_schema@
      AND con.contype = 'f' AND con.conparentid = 0
    ORDER BY c.relname, con.conname, k.position)";
  for (const auto& row : tx.exec_params(fill_sql(k_sql, {k_of_schema}), schema)) {
    auto& keys = tables.at(row[0].as<std::string>()).foreign_keys;
    const auto name = row[1].as<std::string>();
    if (keys.empty() || keys.back().name != name) {
      SourceForeignKey key;
      key.name = name;
      key.referenced_schema = row[2].as<std::string>();
      key.referenced_table = row[3].as<std::string>();
      keys.push_back(key);
    }
    keys.back().columns.push_back(row[4].as<std::string>());
    keys.back().referenced_columns.push_back(row[5].as<std::string>());
  }
}

}  // namespace

SourceSchema read_source_schema(pqxx::dbtransaction& tx, const std::string& schema,
                                const std::string& function_schema) {
  tx.exec("SET LOCAL search_path = pg_catalog");
  SourceSchema out;
  out.name = schema;
  for (const auto& row : tx.exec("SELECT nspname FROM pg_catalog.pg_namespace"))
    out.schemas.insert(row[0].as<std::string>());
  for (const auto& row : tx.exec_params(R"(
         SELECT p.proname FROM pg_catalog.pg_proc p
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1)",
                                        function_schema))
    out.functions.insert(row[0].as<std::string>());
  std::map<std::string, SourceTable> tables = read_tables(tx, schema);
  read_indexes(tx, schema, tables);
  read_foreign_keys(tx, schema, tables);
  // The map's order is the names' byte order: the order of the skeleton's files.
  for (auto& [name, table] : tables) out.tables.push_back(std::move(table));
  return out;
}

}  // namespace pgxform
