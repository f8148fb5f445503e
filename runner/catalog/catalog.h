// catalog: the preflight against PostgreSQL's catalogs, before anything is written.
//
// For every batched job it resolves the leading table, the key column and its SQL type, and
// the function, and checks that the function accepts two arguments of the key's type (asking
// the server's own function resolution, through EXPLAIN in a read-only transaction that is
// rolled back) and returns an integer, a bigint or void. A job with `changes:` (trigger or
// logical) also needs a refresh function that accepts one array of the key's type (`f(keys
// key_type[])`), checked the same way (a key need not be unique: a change of one row of a
// composite key records the value of its first column, and the refresh re-transforms every row
// of that value); each of its
// `changes.also:` tables must exist with the column it records, and the mapping of that
// column's values to the job's keys (a `match` column, or a keys_function) must plan. It reads
// catalogs and, for the NULL-key warning, the key's index; it writes nothing. All problems are
// collected, so that one run reports every one of them at once.
#pragma once

#include <map>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "base/errors.h"
#include "plan/job_selection.h"
#include "plan/jobs_file.h"

namespace pgxform {

// A `changes.also:` entry (jobs_file.h: AlsoTable) checked against the catalog.
struct ResolvedAlso {
  std::string table_sql;    // "schema"."table", quoted
  std::string column;       // the recorded column, unquoted
  std::string column_sql;   // ... quoted
  std::string column_type;  // format_type() of it
  char column_category = 'X';
  // The job's keys (one column of the key's type) of the recorded values, an SQL array of the
  // column's type standing in for @values@: the leading table's rows whose `match` column is
  // one of them, or what keys_function returns for them.
  std::string keys_sql;
};

struct ResolvedJob {
  std::string name;
  std::string table_schema;  // as in the catalog, unquoted
  std::string table_name;
  std::string table_sql;    // "schema"."table", quoted
  std::string key_name;     // the key column, unquoted
  std::string key_sql;      // "key", quoted
  std::string key_type;     // format_type() of the key column, e.g. bigint, text, uuid
  char key_category = 'X';  // pg_type.typcategory: N numeric, D date/time, S string, ...
  // A valid unique index (or the primary key) on the key alone: a batch of N keys is N rows.
  bool key_unique = false;
  std::string function_sql;                    // "schema"."function", quoted
  std::string function_schema, function_name;  // as in the catalog, unquoted
  // md5 of the function's definition (pg_get_functiondef, whitespace folded): the version a
  // job is pinned to. Empty when the called function cannot be told among overloads.
  std::string function_version;
  char function_volatility = 'v';  // pg_proc.provolatile: i immutable, s stable, v volatile
  long batch_size = 0;
  int parallel = 1;
  bool parallel_auto = false;  // `parallel: auto`: its slices are split while workers are idle
  // With `changes: trigger` or `logical` (docs/catch-up.md): how, the refresh function, called
  // with an array of keys, and whether it returns a row count (else void).
  bool captures = false;
  ChangeCapture capture = ChangeCapture::none;
  std::string refresh_sql;  // "schema"."function", quoted
  bool refresh_counts = false;
  std::vector<ResolvedAlso> also;  // changes.also:, in the file's order (change_log via 1, 2, ...)
};

// A name from the jobs file as SQL text: always quoted (database.h: quote_ident), the schema
// only when it was given.
std::string quote_qualified(const QualifiedName& name);

// The SQL text expression `text` (of type text: a bound parameter, a column of the state
// tables) as a value of the job's key type: "($1::text)::bigint". Keys travel as text, so that
// every key type round-trips through the state tables unchanged.
std::string as_key(const ResolvedJob& job, const std::string& text);

// Throws PreflightError naming `option` (--at, --to) unless `key` is a value of the job's key
// type.
void check_key(pqxx::dbtransaction& tx, const ResolvedJob& job, const std::string& key,
               const std::string& option);

struct Preflight {
  std::map<std::string, ResolvedJob> jobs;  // the batched jobs that passed, by name
  std::vector<std::string> warnings;
  std::vector<std::string> problems;  // empty unless from inspect_catalog
};

// Checks the named jobs of `file` (all when `names` is empty). Throws PreflightError.
Preflight check_catalog(pqxx::connection& conn, const JobsFile& file,
                        const std::vector<std::string>& names);
// The same, returning the problems with the warnings instead of throwing.
Preflight inspect_catalog(pqxx::connection& conn, const JobsFile& file,
                          const std::vector<std::string>& names);

// The batched jobs among select_jobs(file, names, JobKinds::any), resolved against the catalog
// (throws PreflightError for every problem), in file order.
std::vector<ResolvedJob> resolve_jobs(pqxx::connection& conn, const JobsFile& file,
                                      const std::vector<std::string>& names);

}  // namespace pgxform
