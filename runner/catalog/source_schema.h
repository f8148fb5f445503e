// source_schema: a legacy schema as `pgxform init` reads it from the catalogs — its tables,
// their columns, btree and other indexes, foreign keys and row estimates — and what else of
// the database the skeleton must not collide with. Plain structs and no libpqxx, so that the
// skeleton (skeleton.h) is computed and tested without a database; source_catalog.h fills them.
//
// Every name is as the catalog stores it, unquoted. Tables come by name (byte order), columns
// in their table's order (attnum), dropped columns left out.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pgxform {

struct SourceColumn {
  std::string name;
  std::string type;       // format_type with modifiers: character varying(20), numeric(12,2)
  std::string base_type;  // the same without: character varying (a function's argument type)
  bool not_null = false;
};

// An index as far as paging by its first column goes. A partial or invalid index, one of
// another access method (hash, gin) or one that starts with an expression cannot serve a
// batch's `ORDER BY key` probes.
struct SourceIndex {
  std::string name;
  std::vector<std::string> columns;  // its key columns in order; "" for an expression
  bool primary = false;
  bool unique = false;
  bool btree = true;
  bool partial = false;
  bool valid = true;
};

struct SourceForeignKey {
  std::string name;
  std::vector<std::string> columns;
  std::string referenced_schema;
  std::string referenced_table;
  std::vector<std::string> referenced_columns;
};

struct SourceTable {
  std::string name;
  std::vector<SourceColumn> columns;
  std::vector<SourceIndex> indexes;            // by name
  std::vector<SourceForeignKey> foreign_keys;  // by name
  std::optional<double> estimated_rows;        // pg_class.reltuples; none when never analyzed

  const SourceColumn* find_column(const std::string& column) const {
    for (const auto& c : columns)
      if (c.name == column) return &c;
    return nullptr;
  }
};

struct SourceSchema {
  std::string name;
  std::vector<SourceTable> tables;  // ordinary and partitioned tables, not partitions
  // The database around it: every schema (the target must be new), and the names of the
  // functions already in the schema the skeleton's functions go into (none may be replaced).
  std::set<std::string> schemas;
  std::set<std::string> functions;
};

}  // namespace pgxform
