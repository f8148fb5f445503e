#include "catalog/catalog.h"

#include <algorithm>

#include "base/sql_text.h"
#include "database/database.h"
#include "database/retry.h"

namespace pgxform {

std::string quote_qualified(const QualifiedName& name) {
  return name.schema.empty() ? quote_ident(name.name)
                             : quote_ident(name.schema) + "." + quote_ident(name.name);
}

namespace {

// A probe's error is the job's problem only when the user can fix it in the jobs file or the
// database's setup (retry.h: is_setup_error): an undefined function or operator, no privilege.
// A lock wait, a timeout, a lost server go on up as the failures they are (exit 1).
void rethrow_unless_setup_error(const pqxx::sql_error& e) {
  if (!is_setup_error(classify(e).sqlstate)) throw;
}

// The steps of one job's check. Each fills its part of `out`, or returns the problem that makes
// the job unusable.
using Problem = std::optional<std::string>;

// A probe refused for want of a privilege (42501: libpqxx 6.4 says so by the exception's type,
// not its sqlstate()): said as such, not as a mismatch of types or signatures.
bool insufficient_privilege(const pqxx::sql_error& e) {
  return classify(e).sqlstate == "42501";
}

// The role the preflight runs as.
std::string current_role(pqxx::dbtransaction& tx) {
  return tx.exec1("SELECT current_user")[0].as<std::string>();
}

// The functions named as the jobs file names `name`: in its schema, or, without one, those the
// search_path makes visible. Each row: schema, name, number of arguments, return type, oid.
pqxx::result functions_named(pqxx::dbtransaction& tx, const QualifiedName& name) {
  return tx.exec_params(R"(
    SELECT n.nspname, p.proname, p.pronargs, pg_catalog.format_type(p.prorettype, NULL), p.oid
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE p.proname = $2
      AND CASE WHEN $1 = '' THEN pg_catalog.pg_function_is_visible(p.oid) ELSE n.nspname = $1 END)",
                        name.schema, name.name);
}

Problem resolve_table(pqxx::dbtransaction& tx, const Job& job, ResolvedJob& out) {
  const pqxx::row table = tx.exec_params1(R"(
    SELECT pg_catalog.to_regclass($1) IS NOT NULL, coalesce(n.nspname, ''), coalesce(c.relname, '')
    FROM (SELECT pg_catalog.to_regclass($1) AS oid) r
    LEFT JOIN pg_catalog.pg_class c ON c.oid = r.oid
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace)",
                                          quote_qualified(job.table));
  if (!table[0].as<bool>()) return "table " + job.table.text() + " does not exist";
  out.name = job.name;
  out.table_schema = table[1].as<std::string>();
  out.table_name = table[2].as<std::string>();
  out.table_sql = quote_ident(out.table_schema) + "." + quote_ident(out.table_name);
  out.batch_size = job.batch_size;
  out.parallel = job.parallel;
  out.parallel_auto = job.parallel_auto;
  return std::nullopt;
}

Problem resolve_key(pqxx::dbtransaction& tx, const Job& job, ResolvedJob& out) {
  const pqxx::result key = tx.exec_params(R"(
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND a.attnum > 0
      AND NOT a.attisdropped)",
                                          out.table_sql, job.key);
  if (key.empty()) return "table " + job.table.text() + " has no column '" + job.key + "'";
  out.key_name = job.key;
  out.key_sql = quote_ident(job.key);
  out.key_type = key[0][0].as<std::string>();
  out.key_category = key[0][1].as<std::string>().at(0);
  out.key_unique = tx.exec_params1(R"(
    SELECT EXISTS (
      SELECT 1 FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = pg_catalog.to_regclass($1) AND a.attname = $2
        AND i.indisunique AND i.indisvalid AND i.indnkeyatts = 1
        AND i.indpred IS NULL AND i.indexprs IS NULL))",
                                   out.table_sql, job.key)[0]
                       .as<bool>();
  // Batches are ranges of the key in its order: a type without one (json, point) cannot page.
  // EXPLAIN plans the ordering without reading a row. Without JIT: a plan of a large table costs
  // more than jit_above_cost, and EXPLAIN would load the server's JIT library for it (18 ms of
  // a run's start-up here), which nothing here compiles with.
  try {
    pqxx::subtransaction probe(tx, "ordering");
    probe.exec("SET LOCAL jit = off");
    probe.exec(fill_sql("EXPLAIN SELECT 1 FROM @table@ t ORDER BY t.@key@",
                        {{"@table@", out.table_sql}, {"@key@", out.key_sql}}));
  } catch (const pqxx::sql_error& e) {
    rethrow_unless_setup_error(e);
    if (insufficient_privilege(e))
      return "role " + current_role(tx) + " may not read table " + job.table.text() +
             " (SQLSTATE 42501): GRANT SELECT ON " + out.table_sql + " TO " +
             quote_ident(current_role(tx));
    return "the key " + job.key + " of " + job.table.text() + " is of type " + out.key_type +
           ", which has no ordering (no default btree operator class): pgxform pages a table "
           "by ranges of its key; choose a key of an ordered type";
  }
  return std::nullopt;
}

// A job with `parallel: auto` splits its slices at the median of their keys, found by a walk of
// the key's index: it needs a valid btree index whose first column is the key.
Problem resolve_split_index(pqxx::dbtransaction& tx, const Job& job, ResolvedJob& out) {
  if (!job.parallel_auto) return std::nullopt;
  const bool indexed = tx.exec_params1(R"(
    SELECT EXISTS (
      SELECT 1 FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_am am ON am.oid = c.relam AND am.amname = 'btree'
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = pg_catalog.to_regclass($1) AND a.attname = $2
        AND i.indisvalid AND i.indpred IS NULL))",
                                       out.table_sql, job.key)[0]
                           .as<bool>();
  if (indexed) return std::nullopt;
  return "parallel: auto needs a btree index whose first column is the key " + job.key + " of " +
         job.table.text() +
         " (the split point is the median of a slice's keys, found on it): " + "CREATE INDEX ON " +
         out.table_sql + " (" + out.key_sql + "), or give the job parallel: K";
}

// The version the job is pinned to: of the function the batches will call, the exact
// signature, else the only two-argument one among `two_arg_oids` (an oid[] literal).
void pin_version(pqxx::dbtransaction& tx, const std::string& two_arg_oids, ResolvedJob& out) {
  // $1 the exact signature, $2 the two-argument candidates.
  const pqxx::row version = tx.exec_params1(
      R"(
    SELECT pg_catalog.md5(pg_catalog.regexp_replace(
             pg_catalog.btrim(pg_catalog.pg_get_functiondef(f.oid)), '\s+', ' ', 'g')),
           p.provolatile
    FROM (SELECT coalesce(pg_catalog.to_regprocedure($1),
                          (SELECT pg_catalog.min(p2.oid) FROM pg_catalog.pg_proc p2
                           WHERE p2.oid = ANY($2::oid[]) HAVING pg_catalog.count(*) = 1)) AS oid) f
    LEFT JOIN pg_catalog.pg_proc p ON p.oid = f.oid)",
      out.function_sql + "(" + out.key_type + ", " + out.key_type + ")", two_arg_oids);
  if (!version[0].is_null()) {
    out.function_version = version[0].as<std::string>();
    out.function_volatility = version[1].as<std::string>().at(0);
  }
}

// A function the jobs file names, as the runner will call it.
struct FoundFunction {
  std::string schema, name;  // as the catalog spells them
  std::string sql;           // "schema"."function", quoted
  pqxx::result overloads;    // every function of that name: schema, name, nargs, returns, oid
};

// Finds the function `name` (by schema when given, else as the search_path finds it) and lets
// the server resolve `call` (with @f@ for the function's quoted name) exactly as the runner
// will make it: EXPLAIN plans the call without executing it, in a savepoint of the read-only
// transaction. `what` names it in messages ("refresh_function xf.x"), `args` are the argument
// types the runner passes (for the GRANT a refusal names), `refused` says what the call passes
// when the server refuses it ("does not accept two arguments of ...").
Problem find_function(pqxx::dbtransaction& tx, const QualifiedName& name, const std::string& what,
                      const std::string& call, const std::string& args, const std::string& refused,
                      FoundFunction& out) {
  out.overloads = functions_named(tx, name);
  if (out.overloads.empty()) return what + " does not exist";
  out.schema = out.overloads[0][0].as<std::string>();
  out.name = out.overloads[0][1].as<std::string>();
  out.sql = quote_ident(out.schema) + "." + quote_ident(out.name);
  try {
    pqxx::subtransaction probe(tx, "function_probe");
    probe.exec("EXPLAIN " + fill_sql(call, {{"@f@", out.sql}}));
  } catch (const pqxx::sql_error& e) {
    rethrow_unless_setup_error(e);
    if (insufficient_privilege(e))
      return "role " + current_role(tx) + " may not execute " + what +
             " (SQLSTATE 42501): GRANT EXECUTE ON FUNCTION " + out.sql + "(" + args + ") TO " +
             quote_ident(current_role(tx));
    return what + " " + refused + ": SQLSTATE " + classify(e).sqlstate;
  }
  return std::nullopt;
}

bool counts_rows(const std::string& type) {
  return type == "bigint" || type == "integer" || type == "smallint";
}

Problem resolve_function(pqxx::dbtransaction& tx, const Job& job, ResolvedJob& out) {
  FoundFunction found;
  if (Problem problem = find_function(
          tx, job.function, "function " + job.function.text(),
          "SELECT @f@(NULL::" + out.key_type + ", NULL::" + out.key_type + ")",
          out.key_type + ", " + out.key_type,
          "does not accept two arguments of the key's type " + out.key_type + " (" + job.key + ")",
          found))
    return problem;
  out.function_schema = found.schema;
  out.function_name = found.name;
  out.function_sql = found.sql;
  std::string two_arg_oids = "{";
  for (const auto& c : found.overloads)
    if (c[2].as<int>() == 2)
      two_arg_oids += (two_arg_oids.size() > 1 ? "," : "") + c[4].as<std::string>();
  two_arg_oids += "}";
  // The return type can be told when the name is not overloaded; with overloads, the call the
  // server resolved above decides, and a wrong type fails the first batch instead.
  if (found.overloads.size() == 1) {
    const auto returns = found.overloads[0][3].as<std::string>();
    if (!counts_rows(returns) && returns != "void")
      return "function " + job.function.text() + " returns " + returns +
             "; it must return a row count (integer or bigint) or void";
  }
  pin_version(tx, two_arg_oids, out);
  return std::nullopt;
}

// With changes: trigger or logical: the refresh function takes the keys. A key need not be
// unique: a change is recorded by its key's value, and the refresh re-transforms every row of it.
Problem resolve_refresh(pqxx::dbtransaction& tx, const Job& job, ResolvedJob& out) {
  if (!job.captures()) return std::nullopt;
  out.captures = true;
  out.capture = job.changes;
  FoundFunction found;
  if (Problem problem =
          find_function(tx, job.refresh_function, "refresh_function " + job.refresh_function.text(),
                        "SELECT @f@(NULL::" + out.key_type + "[])", out.key_type + "[]",
                        "does not accept one argument of type " + out.key_type +
                            "[] (the keys of " + job.key + ")",
                        found))
    return problem;
  out.refresh_sql = found.sql;
  // The exact signature's return type; with overloads that only the server's resolution told
  // apart (an argument of a broader type), the first batch fails instead of the preflight.
  const pqxx::row returns = tx.exec_params1(R"(
    SELECT (SELECT pg_catalog.format_type(p.prorettype, NULL) FROM pg_catalog.pg_proc p
            WHERE p.oid = pg_catalog.to_regprocedure($1)))",
                                            out.refresh_sql + "(" + out.key_type + "[])");
  if (returns[0].is_null()) return std::nullopt;  // its value is not read, then
  const std::string type = returns[0].as<std::string>();
  if (!counts_rows(type) && type != "void")
    return "refresh_function " + job.refresh_function.text() + " returns " + type +
           "; it must return a row count (integer or bigint) or void";
  out.refresh_counts = type != "void";
  return std::nullopt;
}

// A column of `table_sql`: its type and type category; none when there is no such column.
std::optional<std::pair<std::string, char>> column_type(pqxx::dbtransaction& tx,
                                                        const std::string& table_sql,
                                                        const std::string& column) {
  static const std::string k_column = R"(
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND a.attnum > 0
      AND NOT a.attisdropped)";
  const pqxx::result r = tx.exec_params(k_column, table_sql, column);
  if (r.empty()) return std::nullopt;
  return std::make_pair(r[0][0].as<std::string>(), r[0][1].as<std::string>().at(0));
}

// One `changes.also:` entry: its table and column, and the mapping of the column's values to
// the job's keys, planned as catch-up runs it.
Problem resolve_also(pqxx::dbtransaction& tx, const Job& job, const AlsoTable& also,
                     const ResolvedJob& leading, ResolvedAlso& out) {
  static const std::string k_table = R"(
    SELECT n.nspname, c.relname, c.oid = pg_catalog.to_regclass($2)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = pg_catalog.to_regclass($1))";
  const pqxx::result table =
      tx.exec_params(k_table, quote_qualified(also.table), leading.table_sql);
  const std::string what = "changes.also table " + also.table.text();
  if (table.empty()) return what + " does not exist";
  if (table[0][2].as<bool>())
    return what + " is the job's own table, whose changes are captured already";
  out.table_sql =
      quote_ident(table[0][0].as<std::string>()) + "." + quote_ident(table[0][1].as<std::string>());
  const auto column = column_type(tx, out.table_sql, also.column);
  if (!column) return what + " has no column '" + also.column + "'";
  out.column = also.column;
  out.column_sql = quote_ident(also.column);
  out.column_type = column->first;
  out.column_category = column->second;
  if (!also.match.empty()) {
    if (!column_type(tx, leading.table_sql, also.match))
      return what + ": match names no column of " + job.table.text() + " ('" + also.match + "')";
    out.keys_sql = "SELECT t." + leading.key_sql + " FROM " + leading.table_sql + " t WHERE t." +
                   quote_ident(also.match) + " = ANY (@values@)";
  } else {
    FoundFunction found;
    if (Problem problem = find_function(
            tx, also.keys_function, what + ": keys_function " + also.keys_function.text(),
            "SELECT * FROM @f@(NULL::" + out.column_type + "[])", out.column_type + "[]",
            "does not accept one argument of type " + out.column_type + "[] (the values of " +
                also.column + ")",
            found))
      return problem;
    out.keys_sql = "SELECT m.k::" + leading.key_type + " FROM " + found.sql + "(@values@) AS m(k)";
  }
  try {
    pqxx::subtransaction probe(tx, "also_probe");
    probe.exec("EXPLAIN " +
               fill_sql(out.keys_sql, {{"@values@", "NULL::" + out.column_type + "[]"}}));
  } catch (const pqxx::sql_error& e) {
    rethrow_unless_setup_error(e);
    return what + ": its values (" + out.column_type + ") cannot be mapped to keys of " +
           job.table.text() + " (" + leading.key_type + "): SQLSTATE " + e.sqlstate();
  }
  return std::nullopt;
}

// Every `changes.also:` entry of the job; its problems named by the entry's line.
void resolve_also_tables(pqxx::dbtransaction& tx, const JobsFile& file, const Job& job,
                         ResolvedJob& out, std::vector<std::string>& problems) {
  for (const AlsoTable& also : job.also) {
    ResolvedAlso resolved;
    if (Problem problem = resolve_also(tx, job, also, out, resolved))
      problems.push_back(file.path + ":" + std::to_string(also.line) + ": job '" + job.name +
                         "': " + *problem);
    else
      out.also.push_back(resolved);
  }
}

// One job's checks. Adds to `problems` and `warnings`; returns false when the job is unusable.
bool check_job(pqxx::connection& conn, const JobsFile& file, const Job& job, ResolvedJob& out,
               std::vector<std::string>& problems, std::vector<std::string>& warnings) {
  const std::string where = file.path + ":" + std::to_string(job.line) + ": job '" + job.name + "'";
  pqxx::read_transaction tx(conn);
  for (const auto step :
       {resolve_table, resolve_key, resolve_split_index, resolve_function, resolve_refresh})
    if (const Problem problem = step(tx, job, out)) {
      problems.push_back(where + ": " + *problem);
      return false;
    }
  const std::size_t before = problems.size();
  resolve_also_tables(tx, file, job, out, problems);
  if (problems.size() > before) return false;
  // Rows whose key is NULL are in no batch. On the key's index this stops at the first one.
  if (tx.exec1(fill_sql("SELECT EXISTS (SELECT 1 FROM @table@ WHERE @key@ IS NULL)",
                        {{"@table@", out.table_sql}, {"@key@", out.key_sql}}))[0]
          .as<bool>())
    warnings.push_back(where + ": key column " + job.key + " of " + job.table.text() +
                       " holds NULLs; those rows are in no batch and will not be processed");
  return true;
}

}  // namespace

std::string as_key(const ResolvedJob& job, const std::string& text) {
  return fill_sql("(@text@::text)::@type@", {{"@text@", text}, {"@type@", job.key_type}});
}

void check_key(pqxx::dbtransaction& tx, const ResolvedJob& job, const std::string& key,
               const std::string& option) {
  try {
    pqxx::subtransaction probe(tx, "check_key");
    probe.exec_params(fill_sql("SELECT @key@", {{"@key@", as_key(job, "$1")}}), key);
    probe.commit();
  } catch (const pqxx::sql_error& e) {
    // A key that is no value of the key's type (class 22, data exception) is the option's
    // fault; a timeout or a lost server is not.
    if (classify(e).sqlstate.rfind("22", 0) != 0) rethrow_unless_setup_error(e);
    throw PreflightError({option + " '" + key + "' is not a valid " + job.key_type + " key for " +
                          job.name + " (SQLSTATE " + e.sqlstate() + ")"});
  }
}

Preflight check_catalog(pqxx::connection& conn, const JobsFile& file,
                        const std::vector<std::string>& names) {
  Preflight result = inspect_catalog(conn, file, names);
  if (!result.problems.empty()) throw PreflightError(result.problems);
  return result;
}

Preflight inspect_catalog(pqxx::connection& conn, const JobsFile& file,
                          const std::vector<std::string>& names) {
  Preflight result;
  std::vector<std::string>& problems = result.problems;
  for (const auto& list : file.lists)
    for (const auto& job : list.jobs) {
      if (job.is_step()) continue;
      if (!names.empty() && std::find(names.begin(), names.end(), job.name) == names.end())
        continue;
      ResolvedJob resolved;
      if (check_job(conn, file, job, resolved, problems, result.warnings))
        result.jobs[job.name] = resolved;
    }
  return result;
}

std::vector<ResolvedJob> resolve_jobs(pqxx::connection& conn, const JobsFile& file,
                                      const std::vector<std::string>& names) {
  const std::vector<const Job*> selected = select_jobs(file, names, JobKinds::any);
  const Preflight preflight = check_catalog(conn, file, names);
  std::vector<ResolvedJob> jobs;
  for (const Job* job : selected)
    if (auto it = preflight.jobs.find(job->name); it != preflight.jobs.end())
      jobs.push_back(it->second);
  return jobs;
}

}  // namespace pgxform
