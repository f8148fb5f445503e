#include "capture/change_capture.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>

#include "base/sql_text.h"
#include "database/database.h"
#include "state/change_log.h"
#include "state/state_locks.h"

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

// The first line of the comment of a capture function; the state schema and the job follow,
// one a line (names hold no line breaks: text_check.h).
constexpr const char* k_function_comment = "pgxform capture";

// One table a job captures: its leading table (via 0) or an `also:` table (via N).
struct Captured {
  std::string stem;       // pgxform_<h>, pgxform_<h>_a<N>
  std::string table_sql;  // "schema"."table", quoted
  std::string column;     // the recorded column, quoted
  char category = 'X';    // its type category, for its text form
  int via = 0;
};

// "pgxform_<12 hex digits>", the common start of the job's trigger names.
std::string trigger_stem(pqxx::transaction_base& tx, const StateSchema& schema,
                         const std::string& job) {
  return tx
      .exec_params1("SELECT 'pgxform_' || pg_catalog.left(pg_catalog.md5($1 || '/' || $2), 12)",
                    schema.name, job)[0]
      .as<std::string>();
}

std::vector<Captured> captured_tables(pqxx::transaction_base& tx, const StateSchema& schema,
                                      const ResolvedJob& job) {
  const std::string stem = trigger_stem(tx, schema, job.name);
  std::vector<Captured> out{{stem, job.table_sql, job.key_sql, job.key_category, 0}};
  for (std::size_t i = 0; i < job.also.size(); ++i) {
    const ResolvedAlso& also = job.also[i];
    out.push_back({stem + "_a" + std::to_string(i + 1), also.table_sql, also.column_sql,
                   also.column_category, int(i + 1)});
  }
  return out;
}

// The job's triggers that exist, on any table: name, table ("schema"."table", quoted) and
// tgenabled. Every name starts with the job's stem.
struct Existing {
  std::string name, table_sql, enabled;
};
std::vector<Existing> existing_triggers(pqxx::transaction_base& tx, const std::string& stem) {
  static const std::string k_existing = R"(
    SELECT t.tgname, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
           t.tgenabled
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE pg_catalog.left(t.tgname, pg_catalog.length($1) + 1) = $1 || '_')";
  std::vector<Existing> out;
  for (const auto& row : tx.exec_params(k_existing, stem))
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()});
  return out;
}

// A trigger's function in the state schema: capture_<h>[_a<N>] (statement) and ..._row.
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

// The SET clauses that fix the text form of what the functions record (database.h).
std::string text_settings() {
  std::string out;
  for (const TextSetting& setting : k_text_settings)
    out += std::string(" SET ") + setting.name + " = '" + setting.value + "'";
  return out;
}

// The two functions of one captured table, static SQL naming its column: their plans are
// cached in the writers' sessions (a generic function's EXECUTE would plan every statement
// again). Both are SECURITY DEFINER with a fixed search_path, and the text settings
// (k_text_settings), so that a writer needs no privilege on the state schema, cannot change
// what the functions' names mean, nor the text a key is recorded in. Nobody but their owner may
// use them (EXECUTE revoked from PUBLIC: creating a trigger needs it, firing one does not), and
// each records only for the table it was made for: a trigger on another table that calls it
// fails. Their comment names the job and state schema (capture_triggers reads it back).
void create_functions(pqxx::transaction_base& tx, const StateSchema& schema, const std::string& job,
                      const Captured& table) {
  const std::string literal = tx.quote(job);
  const auto record = [&](const std::string& values) {
    return record_changes_sql(schema, literal, table.via, values);
  };
  const auto value = [&](const std::string& row) {
    return text_form_sql(table.category, row + "." + table.column);
  };
  const std::string oid =
      tx.exec_params1("SELECT pg_catalog.to_regclass($1)::oid::text", table.table_sql)[0]
          .as<std::string>();
  static const std::string k_statement = R"(BEGIN
  IF TG_RELID <> @oid@::oid THEN
    RAISE EXCEPTION 'pgxform: % records the changes of one table only', TG_NAME;
  END IF;
  IF pg_catalog.current_setting('pgxform.capture_off', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'INSERT' THEN @inserted@;
  ELSIF TG_OP = 'DELETE' THEN @deleted@;
  ELSE @updated@;
  END IF;
  RETURN NULL;
END)";
  static const std::string k_row = R"(BEGIN
  IF TG_RELID <> @oid@::oid THEN
    RAISE EXCEPTION 'pgxform: % records the changes of one table only', TG_NAME;
  END IF;
  IF pg_catalog.current_setting('pgxform.capture_off', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP <> 'DELETE' THEN @new@; END IF;
  IF TG_OP = 'DELETE' OR (OLD.@column@ IS NOT NULL AND OLD.@column@ IS DISTINCT FROM NEW.@column@)
  THEN @old@; END IF;
  RETURN NULL;
END)";
  const std::string statement =
      fill_sql(k_statement,
               {{"@inserted@", record("SELECT " + value("r") + " FROM pgxform_new r")},
                {"@deleted@", record("SELECT " + value("r") + " FROM pgxform_old r")},
                {"@updated@", record("SELECT " + value("r") + " FROM pgxform_new r UNION SELECT " +
                                     value("r") + " FROM pgxform_old r")},
                {"@oid@", oid}});
  const std::string row = fill_sql(k_row, {{"@new@", record("SELECT " + value("NEW"))},
                                           {"@old@", record("SELECT " + value("OLD"))},
                                           {"@column@", table.column},
                                           {"@oid@", oid}});
  for (const auto& [suffix, body] :
       {std::pair<std::string, std::string>{"", statement}, {"_row", row}}) {
    const std::string function = function_name(schema, table.stem, suffix);
    tx.exec("CREATE OR REPLACE FUNCTION " + function +
            "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog" +
            text_settings() + " AS " + dollar_quoted(body));
    tx.exec("REVOKE ALL ON FUNCTION " + function + "() FROM PUBLIC");
    tx.exec("COMMENT ON FUNCTION " + function + "() IS " +
            tx.quote(std::string(k_function_comment) + "\n" + schema.name + "\n" + job));
  }
}

void set_lock_timeout(pqxx::transaction_base& tx, const std::string& lock_timeout) {
  tx.exec_params("SELECT pg_catalog.set_config('lock_timeout', $1, true)", lock_timeout);
}

// Runs `step` on one table in a transaction of its own, under lock_timeout and the setup lock,
// and returns what it returns. CREATE TRIGGER and ALTER TABLE ... ENABLE take SHARE ROW
// EXCLUSIVE on the table, DROP TRIGGER ACCESS EXCLUSIVE, each until the commit: one table at a
// time, pgxform never holds one table while it waits for another, so a writer that changes the
// tables of a job in any order waits for it but cannot deadlock with it (docs/catch-up.md,
// "Installing capture on a live source"). A lock not granted within lock_timeout is said so,
// with what to do.
int on_table(pqxx::connection& conn, const StateSchema& schema, const std::string& table_sql,
             const std::string& lock_timeout, const std::string& what,
             const std::function<int(pqxx::work&)>& step) {
  pqxx::work tx(conn);
  set_lock_timeout(tx, lock_timeout);
  transaction_lock(tx, setup_lock(schema));
  try {
    const int changed = step(tx);
    tx.commit();
    return changed;
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() != "55P03") throw;  // lock_not_available: the table's, past lock_timeout
    throw std::runtime_error(
        "could not " + what + " on " + table_sql +
        ": its lock was not granted within lock_timeout (" + lock_timeout +
        "), a transaction held the table that long (SQLSTATE " + e.sqlstate() +
        "); nothing of it was changed, the tables done before keep theirs, and the same command"
        " run again finishes it: run it before the writers start or in a quiet moment"
        " (docs/catch-up.md, Installing capture on a live source)");
  }
}

bool same_table(pqxx::transaction_base& tx, const std::string& a, const std::string& b) {
  // quote_ident() spells identifiers the way pg_catalog.quote_ident does only for names that
  // need quoting; compare tables by oid instead.
  return tx.exec_params1("SELECT pg_catalog.to_regclass($1) = pg_catalog.to_regclass($2)", a, b)[0]
      .as<bool>();
}

// Whether one of `tables` wants the trigger `e` (its name and its table).
bool wanted(pqxx::transaction_base& tx, const std::vector<Captured>& tables, const Existing& e) {
  return std::any_of(tables.begin(), tables.end(), [&](const Captured& t) {
    return std::any_of(std::begin(k_triggers), std::end(k_triggers),
                       [&](const TriggerShape& s) { return e.name == t.stem + s.suffix; }) &&
           same_table(tx, e.table_sql, t.table_sql);
  });
}

// The four triggers of one captured table where missing; returns how many it created or
// re-enabled.
int install_triggers(pqxx::transaction_base& tx, const StateSchema& schema, const Captured& table,
                     const std::vector<Existing>& existing) {
  int changed = 0;
  for (const auto& shape : k_triggers) {
    const std::string name = table.stem + shape.suffix;
    const auto found = std::find_if(existing.begin(), existing.end(), [&](const Existing& e) {
      return e.name == name && same_table(tx, e.table_sql, table.table_sql);
    });
    if (found == existing.end()) {
      // The arguments are literals of the trigger's definition: quoted by the server's rules.
      tx.exec("CREATE TRIGGER " + quote_ident(name) + " AFTER " + shape.events + " ON " +
              table.table_sql + shape.referencing + " FOR EACH " + shape.level +
              " EXECUTE FUNCTION " + function_name(schema, table.stem, shape.function) + "()");
      ++changed;
    }
    // A new trigger is enabled for origin and local sessions (O); the row trigger must fire in
    // replica sessions only, and a trigger a DBA disabled is enabled again.
    if ((found == existing.end() && std::string(shape.enabled) != "O") ||
        (found != existing.end() && found->enabled != shape.enabled)) {
      tx.exec("ALTER TABLE " + table.table_sql + " " + shape.enable + " " + quote_ident(name));
      if (found != existing.end()) ++changed;
    }
  }
  return changed;
}

}  // namespace

int install_capture(pqxx::connection& conn, const StateSchema& schema, const ResolvedJob& job,
                    const std::string& lock_timeout) {
  std::vector<Captured> tables;
  std::vector<std::string> unwanted_on;  // the tables that hold a trigger of the job unwanted
  {
    pqxx::read_transaction tx(conn);
    tables = captured_tables(tx, schema, job);
    for (const Existing& e : existing_triggers(tx, tables.front().stem))
      if (!wanted(tx, tables, e) &&
          std::find(unwanted_on.begin(), unwanted_on.end(), e.table_sql) == unwanted_on.end())
        unwanted_on.push_back(e.table_sql);
  }
  const std::string stem = tables.front().stem;
  int changed = 0;
  // A trigger of the job that no captured table wants (its table or its `also:` entry changed
  // in the jobs file) goes.
  for (const std::string& table_sql : unwanted_on)
    changed += on_table(conn, schema, table_sql, lock_timeout, "drop capture triggers",
                        [&](pqxx::work& tx) {
                          int dropped = 0;
                          for (const Existing& e : existing_triggers(tx, stem))
                            if (e.table_sql == table_sql && !wanted(tx, tables, e)) {
                              tx.exec("DROP TRIGGER " + quote_ident(e.name) + " ON " + e.table_sql);
                              ++dropped;
                            }
                          return dropped;
                        });
  // One session at a time replaces the functions (two at once: "tuple concurrently updated"),
  // as for every other step before a first batch: a run and a catch-up may start together.
  for (const Captured& table : tables)
    changed += on_table(conn, schema, table.table_sql, lock_timeout, "install capture triggers",
                        [&](pqxx::work& tx) {
                          // Replaced in place: a trigger keeps calling its function by oid.
                          create_functions(tx, schema, job.name, table);
                          return install_triggers(tx, schema, table, existing_triggers(tx, stem));
                        });
  return changed;
}

int drop_capture(pqxx::connection& conn, const StateSchema& schema, const std::string& job,
                 const std::string& lock_timeout) {
  std::string stem;
  std::vector<std::string> on;  // the tables that hold a trigger of the job
  {
    pqxx::read_transaction tx(conn);
    stem = trigger_stem(tx, schema, job);
    for (const Existing& e : existing_triggers(tx, stem))
      if (std::find(on.begin(), on.end(), e.table_sql) == on.end()) on.push_back(e.table_sql);
  }
  int dropped = 0;
  for (const std::string& table_sql : on)
    dropped += on_table(conn, schema, table_sql, lock_timeout, "drop capture triggers",
                        [&](pqxx::work& tx) {
                          int n = 0;
                          for (const Existing& e : existing_triggers(tx, stem))
                            if (e.table_sql == table_sql) {
                              tx.exec("DROP TRIGGER " + quote_ident(e.name) + " ON " + e.table_sql);
                              ++n;
                            }
                          return n;
                        });
  pqxx::work tx(conn);
  set_lock_timeout(tx, lock_timeout);
  // Before version 9 there is nothing to drop: the functions live beside change_log.
  if (!has_feature(state_version(tx, schema), StateFeature::changes)) {
    tx.commit();
    return dropped;
  }
  static const std::string k_functions = R"(
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = pg_catalog.to_regnamespace($1)
      AND pg_catalog.left(p.proname, pg_catalog.length($2)) = $2)";
  const std::string prefix = "capture_" + stem.substr(std::string("pgxform_").size());
  for (const auto& row : tx.exec_params(k_functions, schema.sql, prefix))
    tx.exec("DROP FUNCTION IF EXISTS " + row[0].as<std::string>());
  tx.commit();
  return dropped;
}

std::vector<std::string> uncaptured_tables(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const ResolvedJob& job) {
  static const std::string k_count = R"(
    SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid = pg_catalog.to_regclass($2)
      AND ((t.tgenabled = 'O' AND t.tgname IN ($1 || '_ins', $1 || '_upd', $1 || '_del'))
           OR (t.tgenabled = 'R' AND t.tgname = $1 || '_rep')))";
  std::vector<std::string> out;
  for (const Captured& table : captured_tables(tx, schema, job))
    if (tx.exec_params1(k_count, table.stem, table.table_sql)[0].as<int>() <
        int(std::size(k_triggers)))
      out.push_back(table.table_sql);
  return out;
}

bool has_capture_triggers(pqxx::transaction_base& tx, const StateSchema& schema,
                          const std::string& job) {
  return !existing_triggers(tx, trigger_stem(tx, schema, job)).empty();
}

namespace {

// Every capture trigger of this database, with the stem of its name and its function's schema.
struct FoundTrigger {
  CaptureTrigger trigger;
  std::string stem, function_schema;
};
std::vector<FoundTrigger> capture_triggers(pqxx::transaction_base& tx) {
  static const std::string k_capture_triggers = R"(
    SELECT t.tgname::text,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
           coalesce(pg_catalog.obj_description(t.tgfoid, 'pg_proc'), ''),
           pg_catalog.substring(t.tgname::text, '^(pgxform_[0-9a-f]{12})'),
           pn.nspname::text
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
    JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
    WHERE t.tgname::text ~ '^pgxform_[0-9a-f]{12}(_a[0-9]+)?_(ins|upd|del|rep)$'
      AND p.proname::text ~ '^capture_[0-9a-f]{12}'
    ORDER BY 2, 1)";
  std::vector<FoundTrigger> out;
  for (const auto& r : tx.exec(k_capture_triggers)) {
    FoundTrigger found;
    found.trigger.name = r[0].as<std::string>();
    found.trigger.table_sql = r[1].as<std::string>();
    const std::string comment = r[2].as<std::string>();
    const std::string head = std::string(k_function_comment) + "\n";
    if (comment.compare(0, head.size(), head) == 0) {
      const std::string rest = comment.substr(head.size());
      const auto line = rest.find('\n');
      if (line != std::string::npos) {
        found.trigger.state_schema = rest.substr(0, line);
        found.trigger.job = rest.substr(line + 1);
      }
    }
    found.stem = r[3].as<std::string>();
    found.function_schema = r[4].as<std::string>();
    out.push_back(found);
  }
  return out;
}

std::vector<FoundTrigger> orphans(pqxx::transaction_base& tx, const StateSchema& schema,
                                  const std::vector<std::string>& trigger_jobs) {
  std::set<std::string> wanted;
  for (const std::string& job : trigger_jobs) wanted.insert(trigger_stem(tx, schema, job));
  std::vector<FoundTrigger> out;
  for (FoundTrigger& found : capture_triggers(tx))
    if (!wanted.count(found.stem)) out.push_back(std::move(found));
  return out;
}

}  // namespace

std::vector<CaptureTrigger> trigger_orphans(pqxx::transaction_base& tx, const StateSchema& schema,
                                            const std::vector<std::string>& trigger_jobs) {
  std::vector<CaptureTrigger> out;
  for (const FoundTrigger& found : orphans(tx, schema, trigger_jobs)) out.push_back(found.trigger);
  return out;
}

std::vector<std::string> drop_trigger_orphans(pqxx::connection& conn, const StateSchema& schema,
                                              const std::vector<std::string>& trigger_jobs,
                                              const std::string& lock_timeout) {
  std::set<std::pair<std::string, std::string>> stems;  // (function schema, stem)
  std::vector<std::string> on;                          // the tables that hold one
  {
    pqxx::read_transaction tx(conn);
    for (const FoundTrigger& found : orphans(tx, schema, trigger_jobs)) {
      stems.insert({found.function_schema, found.stem});
      if (std::find(on.begin(), on.end(), found.trigger.table_sql) == on.end())
        on.push_back(found.trigger.table_sql);
    }
  }
  std::vector<std::string> done;
  for (const std::string& table_sql : on)
    on_table(conn, schema, table_sql, lock_timeout, "drop orphaned capture triggers",
             [&](pqxx::work& tx) {
               for (const FoundTrigger& found : orphans(tx, schema, trigger_jobs)) {
                 if (found.trigger.table_sql != table_sql) continue;
                 tx.exec("DROP TRIGGER " + quote_ident(found.trigger.name) + " ON " + table_sql);
                 done.push_back("trigger " + found.trigger.name + " on " + table_sql + " (job " +
                                found.trigger.job + " of state schema " +
                                found.trigger.state_schema + ") dropped");
               }
               return 0;
             });
  pqxx::work tx(conn);
  set_lock_timeout(tx, lock_timeout);
  transaction_lock(tx, setup_lock(schema));
  static const std::string k_functions = R"(
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($1))
      AND pg_catalog.left(p.proname, pg_catalog.length($2)) = $2
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgfoid = p.oid))";
  for (const auto& [function_schema, stem] : stems)
    for (const auto& row : tx.exec_params(k_functions, function_schema,
                                          "capture_" + stem.substr(std::string("pgxform_").size())))
      tx.exec("DROP FUNCTION IF EXISTS " + row[0].as<std::string>());
  tx.commit();
  return done;
}

}  // namespace pgxform
