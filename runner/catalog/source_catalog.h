// source_catalog: reads a legacy schema for `pgxform init` into source_schema.h's structs —
// its tables (ordinary and partitioned, not partitions: those are copied through their parent),
// columns, indexes, foreign keys and the planner's row estimates, and the names around it that
// the skeleton must not collide with.
//
// Everything is read in the caller's transaction, which should be read-only: the catalogs only,
// never a row of a table. The transaction's search_path is set to pg_catalog alone (SET LOCAL),
// so that format_type writes every type that is not built in with its schema (legacy.mood,
// public.citext): the types read the same whatever the role's search_path, and the target's
// tables name the very same types.
//
// A schema that does not exist reads as a schema without tables; `schemas` tells the two apart.
#pragma once

#include <pqxx/pqxx>
#include <string>

#include "catalog/source_schema.h"

namespace pgxform {

// `function_schema`: where the skeleton's functions go; its functions' names are read too.
SourceSchema read_source_schema(pqxx::dbtransaction& tx, const std::string& schema,
                                const std::string& function_schema);

}  // namespace pgxform
