#include "capture/change_capture.h"

#include <algorithm>
#include <vector>

#include "database/database.h"

namespace pgxform {

namespace {

struct TriggerShape {
  const char* suffix;
  const char* events;       // "INSERT"
  const char* referencing;  // " REFERENCING ...", or nothing for the row trigger
  const char* level;        // "STATEMENT", "ROW"
  const char* function;     // the suffix of its function's name (function_name)
  const char* enabled;      // pg_trigger.tgenabled: O (origin and local), R (replica only)
  const char* enable;       // the ALTER TABLE that sets it
};

constexpr TriggerShape k_triggers[] = {
    {"_ins", "INSERT", " REFERENCING NEW TABLE AS pgxform_new", "STATEMENT", "", "O",
     "ENABLE TRIGGER"},
    {"_upd", "UPDATE", " REFERENCING OLD TABLE AS pgxform_old NEW TABLE AS pgxform_new",
     "STATEMENT", "", "O", "ENABLE TRIGGER"},
    {"_del", "DELETE", " REFERENCING OLD TABLE AS pgxform_old", "STATEMENT", "", "O",
     "ENABLE TRIGGER"},
    {"_rep", "INSERT OR UPDATE OR DELETE", "", "ROW", "_row", "R", "ENABLE REPLICA TRIGGER"},
};
static_assert(sizeof k_triggers / sizeof k_triggers[0] == k_capture_triggers);

// "pgxform_<12 hex digits>", the common start of the job's trigger names.
std::string trigger_stem(pqxx::transaction_base& tx, const StateSchema& schema,
                         const std::string& job) {
  return tx
      .exec_params1("SELECT 'pgxform_' || pg_catalog.left(pg_catalog.md5($1 || '/' || $2), 12)",
                    schema.name, job)[0]
      .as<std::string>();
}

// The job's triggers that exist: name, table ("schema"."table", quoted) and tgenabled.
struct Existing {
  std::string name, table_sql, enabled;
};
std::vector<Existing> existing_triggers(pqxx::transaction_base& tx, const std::string& stem) {
  std::vector<Existing> out;
  for (const auto& row :
       tx.exec_params("SELECT t.tgname, pg_catalog.quote_ident(n.nspname) || '.' ||"
                      " pg_catalog.quote_ident(c.relname), t.tgenabled FROM pg_catalog.pg_trigger t"
                      " JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid"
                      " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                      " WHERE t.tgname IN ($1 || '_ins', $1 || '_upd', $1 || '_del', $1 || '_rep')",
                      stem))
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()});
  return out;
}

// The job's trigger functions in the state schema: capture_<h> (statement) and capture_<h>_row.
std::string function_name(const StateSchema& schema, const std::string& stem,
                          const std::string& suffix) {
  return schema.sql + "." +
         quote_ident("capture_" + stem.substr(std::string("pgxform_").size()) + suffix);
}

// A dollar quote for `body` that it does not hold itself (a job's name is in it).
std::string dollar_quoted(const std::string& body) {
  std::string tag = "$pgxform$";
  for (int i = 0; body.find(tag) != std::string::npos; ++i)
    tag = "$pgxform" + std::to_string(i) + "$";
  return tag + body + tag;
}

// The two functions, static SQL naming the job's key column: their plans are cached in the
// writers' sessions (a generic function's EXECUTE would plan every statement again). Both are
// SECURITY DEFINER with a fixed search_path: a writer needs no privilege on the state schema,
// and cannot change what the functions' names mean. `key_text` makes the key's text form.
void create_functions(pqxx::transaction_base& tx, const StateSchema& schema, const ResolvedJob& job,
                      const std::string& stem) {
  const std::string log = schema.table("change_log");
  const std::string name = tx.quote(job.name);
  const auto key_text = [&](const std::string& row) {
    // A date or time key in its JSON (ISO) form, whatever the writer's DateStyle.
    return job.key_category == 'D' ? "pg_catalog.to_json(" + row + "." + job.key_sql + ") #>> '{}'"
                                   : row + "." + job.key_sql + "::pg_catalog.text";
  };
  const std::string head =
      "BEGIN IF pg_catalog.current_setting('pgxform.capture_off', true) = 'on' THEN RETURN NULL;"
      " END IF; ";
  // The key is unique (capture requires it): a transition table's keys are distinct.
  const std::string statement =
      head + "IF TG_OP = 'INSERT' THEN INSERT INTO " + log + " (job, key) SELECT " + name + ", " +
      key_text("r") + " FROM pgxform_new r WHERE r." + job.key_sql +
      " IS NOT NULL; ELSIF TG_OP = 'DELETE' THEN INSERT INTO " + log + " (job, key) SELECT " +
      name + ", " + key_text("r") + " FROM pgxform_old r WHERE r." + job.key_sql +
      " IS NOT NULL; ELSE INSERT INTO " + log + " (job, key) SELECT " + name + ", k FROM (SELECT " +
      key_text("r") + " AS k FROM pgxform_new r UNION SELECT " + key_text("r") +
      " FROM pgxform_old r) u WHERE k IS NOT NULL; END IF; RETURN NULL; END";
  const std::string row =
      head + "IF TG_OP <> 'DELETE' AND NEW." + job.key_sql + " IS NOT NULL THEN INSERT INTO " +
      log + " (job, key) SELECT " + name + ", " + key_text("NEW") +
      "; END IF; IF TG_OP = 'DELETE' OR (OLD." + job.key_sql + " IS NOT NULL AND OLD." +
      job.key_sql + " IS DISTINCT FROM NEW." + job.key_sql + ") THEN INSERT INTO " + log +
      " (job, key) SELECT " + name + ", " + key_text("OLD") + "; END IF; RETURN NULL; END";
  for (const auto& [suffix, body] :
       {std::pair<std::string, std::string>{"", statement}, {"_row", row}})
    tx.exec("CREATE OR REPLACE FUNCTION " + function_name(schema, stem, suffix) +
            "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog"
            " AS " +
            dollar_quoted(body));
}

void set_lock_timeout(pqxx::transaction_base& tx, const std::string& lock_timeout) {
  tx.exec_params("SELECT pg_catalog.set_config('lock_timeout', $1, true)", lock_timeout);
}

}  // namespace

int install_capture(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                    const std::string& lock_timeout) {
  pqxx::work tx(conn);
  set_lock_timeout(tx, lock_timeout);
  const std::string stem = trigger_stem(tx, schema, job.name);
  int changed = 0;
  // quote_ident() spells identifiers the way pg_catalog.quote_ident does only for names that
  // need quoting; compare tables by oid instead.
  const auto same_table = [&](const std::string& table_sql) {
    return tx
        .exec_params1("SELECT pg_catalog.to_regclass($1) = pg_catalog.to_regclass($2)", table_sql,
                      job.table_sql)[0]
        .as<bool>();
  };
  // Replaced in place: a trigger keeps calling its function by oid.
  create_functions(tx, schema, job, stem);
  const std::vector<Existing> existing = existing_triggers(tx, stem);
  for (const auto& shape : k_triggers) {
    const std::string name = stem + shape.suffix;
    std::optional<Existing> found;
    for (const auto& e : existing)
      if (e.name == name) {
        if (same_table(e.table_sql)) {
          found = e;
        } else {
          // The job's table changed in the jobs file: its old trigger goes.
          tx.exec("DROP TRIGGER " + quote_ident(name) + " ON " + e.table_sql);
          ++changed;
        }
      }
    if (!found) {
      // The arguments are literals of the trigger's definition: quoted by the server's rules.
      tx.exec("CREATE TRIGGER " + quote_ident(name) + " AFTER " + shape.events + " ON " +
              job.table_sql + shape.referencing + " FOR EACH " + shape.level +
              " EXECUTE FUNCTION " + function_name(schema, stem, shape.function) + "()");
      ++changed;
    }
    // A new trigger is enabled for origin and local sessions (O); the row trigger must fire in
    // replica sessions only, and a trigger a DBA disabled is enabled again.
    if ((!found && std::string(shape.enabled) != "O") ||
        (found && found->enabled != shape.enabled)) {
      tx.exec("ALTER TABLE " + job.table_sql + " " + shape.enable + " " + quote_ident(name));
      if (found) ++changed;
    }
  }
  tx.commit();
  return changed;
}

int drop_capture(pqxx::connection& conn, const StateSchema& schema, const std::string& job,
                 const std::string& lock_timeout) {
  pqxx::work tx(conn);
  set_lock_timeout(tx, lock_timeout);
  int dropped = 0;
  const std::string stem = trigger_stem(tx, schema, job);
  for (const auto& e : existing_triggers(tx, stem)) {
    tx.exec("DROP TRIGGER " + quote_ident(e.name) + " ON " + e.table_sql);
    ++dropped;
  }
  // Before version 9 there is nothing to drop: the functions live beside change_log.
  if (has_feature(state_version(tx, schema), StateFeature::changes))
    for (const char* suffix : {"", "_row"})
      tx.exec("DROP FUNCTION IF EXISTS " + function_name(schema, stem, suffix) + "()");
  tx.commit();
  return dropped;
}

int capture_triggers(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job,
                     const std::string& table_sql) {
  return tx
      .exec_params1(
          "SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid ="
          " pg_catalog.to_regclass($2) AND ((t.tgenabled = 'O' AND t.tgname IN ($1 || '_ins',"
          " $1 || '_upd', $1 || '_del')) OR (t.tgenabled = 'R' AND t.tgname = $1 || '_rep'))",
          trigger_stem(tx, schema, job), table_sql)[0]
      .as<int>();
}

std::map<std::string, PendingChanges> pending_changes(pqxx::transaction_base& tx,
                                                      const StateSchema& schema) {
  std::map<std::string, PendingChanges> out;
  if (!has_feature(state_version(tx, schema), StateFeature::changes)) return out;
  for (const auto& row :
       tx.exec("SELECT job, pg_catalog.count(*), extract(epoch FROM pg_catalog.now() -"
               " pg_catalog.min(changed_at))::float8 FROM " +
               schema.table("change_log") + " GROUP BY job"))
    out[row[0].as<std::string>()] = {row[1].as<long long>(), std::max(0.0, row[2].as<double>())};
  return out;
}

}  // namespace pgxform
