#include "capture/logical_capture.h"

#include <algorithm>
#include <set>

#include "base/sql_text.h"
#include "database/database.h"
#include "state/state_locks.h"
#include "state/state_schema.h"

namespace pgxform {

namespace {

void set_publication_lock_timeout(pqxx::transaction_base& tx, const std::string& lock_timeout) {
  tx.exec_params("SELECT pg_catalog.set_config('lock_timeout', $1, true)", lock_timeout);
}

bool publication_exists(pqxx::transaction_base& tx, const std::string& publication) {
  return tx
      .exec_params1("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)",
                    publication)[0]
      .as<bool>();
}

bool in_publication(pqxx::transaction_base& tx, const std::string& publication, unsigned oid) {
  static const std::string k_member = R"(
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r
                   JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid
                   WHERE p.pubname = $1 AND r.prrelid = $2::bigint::oid))";
  return tx.exec_params1(k_member, publication, static_cast<long long>(oid))[0].as<bool>();
}

// The slot of this database named `slot`: its confirmed position and wal_status; none when it
// does not exist.
struct SlotState {
  std::string confirmed_lsn;
  std::string wal_status;
};
std::optional<SlotState> slot_state(pqxx::transaction_base& tx, const std::string& slot) {
  static const std::string k_slot = R"(
    SELECT coalesce(confirmed_flush_lsn, restart_lsn, '0/0')::text,
           coalesce(wal_status, 'reserved')
    FROM pg_catalog.pg_replication_slots
    WHERE slot_name = $1 AND database = pg_catalog.current_database())";
  const pqxx::result r = tx.exec_params(k_slot, slot);
  if (r.empty()) return std::nullopt;
  return SlotState{r[0][0].as<std::string>(), r[0][1].as<std::string>()};
}

// "schema"."table" of an oid, quoted; empty when the table is gone.
std::string table_of(pqxx::transaction_base& tx, unsigned oid) {
  static const std::string k_table = R"(
    SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = $1::bigint::oid)";
  const pqxx::result r = tx.exec_params(k_table, static_cast<long long>(oid));
  return r.empty() ? "" : r[0][0].as<std::string>();
}

// The publication with the tables of `columns`: created, or the missing tables added.
void publish(pqxx::transaction_base& tx, const std::string& publication,
             const std::vector<CapturedColumn>& columns, std::vector<std::string>& done) {
  std::vector<std::string> tables;
  for (const CapturedColumn& c : columns)
    if (std::find(tables.begin(), tables.end(), c.table_name) == tables.end() &&
        !in_publication(tx, publication, c.table_oid))
      tables.push_back(c.table_name);
  if (!publication_exists(tx, publication)) {
    std::string list;
    for (const std::string& t : tables) list += (list.empty() ? "" : ", ") + t;
    tx.exec("CREATE PUBLICATION " + quote_ident(publication) + " FOR TABLE " + list +
            " WITH (publish_via_partition_root = true)");
    done.push_back("publication " + publication + " created for " + list);
    return;
  }
  for (const std::string& t : tables) {
    tx.exec("ALTER PUBLICATION " + quote_ident(publication) + " ADD TABLE " + t);
    done.push_back(t + " added to publication " + publication);
  }
}

// The slot, made where missing (and its row written), after the publication committed.
void make_slot(pqxx::connection& conn, const StateSchema& schema, const SlotNames& names,
               const std::string& lock_timeout, std::vector<std::string>& done) {
  pqxx::work tx(conn);
  set_publication_lock_timeout(tx, lock_timeout);
  transaction_lock(tx, setup_lock(schema));
  const std::optional<SlotRow> row = read_slot_row(tx, schema);
  if (const std::optional<SlotState> slot = slot_state(tx, names.slot)) {
    // A slot made by a runner that was killed before its row committed: adopted.
    if (!row || row->slot != names.slot) {
      write_slot_row(tx, schema, names.slot, names.publication, slot->confirmed_lsn);
      tx.commit();
    }
    return;
  }
  // No write before this in the transaction: PostgreSQL refuses to make a slot after one. It
  // waits here for every transaction in progress on the server to end.
  const std::string lsn =
      tx.exec_params1(
            "SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1,"
            " 'pgoutput')",
            names.slot)[0]
          .as<std::string>();
  write_slot_row(tx, schema, names.slot, names.publication, lsn);
  tx.commit();
  done.push_back("slot " + names.slot + " created at " + lsn);
}

// Drops the slot, once no reader holds it (slot_reader.h reads under the slot lock).
void drop_slot(pqxx::connection& conn, const StateSchema& schema, const std::string& slot,
               const std::string& lock_timeout) {
  pqxx::nontransaction tx(conn);
  tx.exec_params("SELECT pg_catalog.set_config('lock_timeout', $1, false)", lock_timeout);
  session_lock(tx, slot_lock(schema));
  try {
    if (slot_state(tx, slot))
      tx.exec_params("SELECT pg_catalog.pg_drop_replication_slot($1)", slot);
  } catch (...) {
    session_unlock(tx, slot_lock(schema));
    throw;
  }
  session_unlock(tx, slot_lock(schema));
}

}  // namespace

SlotNames slot_names(pqxx::transaction_base& tx, const StateSchema& schema) {
  const std::string name = tx.exec_params1(
                                 "SELECT 'pgxform_' || pg_catalog.left(pg_catalog.md5("
                                 "pg_catalog.current_database() || '/' || $1), 12)",
                                 schema.name)[0]
                               .as<std::string>();
  return {name, name};
}

std::vector<CapturedColumn> capture_columns(pqxx::transaction_base& tx, const ResolvedJob& job) {
  const auto oid = [&](const std::string& table) {
    return static_cast<unsigned>(
        tx.exec_params1("SELECT pg_catalog.to_regclass($1)::oid::bigint", table)[0]
            .as<long long>());
  };
  std::vector<CapturedColumn> out{{job.name, 0, oid(job.table_sql), job.table_sql, job.key_name,
                                   job.key_type, job.key_category}};
  for (std::size_t i = 0; i < job.also.size(); ++i) {
    const ResolvedAlso& also = job.also[i];
    out.push_back({job.name, int(i + 1), oid(also.table_sql), also.table_sql, also.column,
                   also.column_type, also.column_category});
  }
  return out;
}

std::vector<std::string> install_logical(pqxx::connection& conn, const StateSchema& schema,
                                         const std::vector<const ResolvedJob*>& jobs,
                                         const std::string& lock_timeout) {
  std::vector<std::string> done;
  if (jobs.empty()) return done;
  SlotNames names;
  {
    pqxx::work tx(conn);
    set_publication_lock_timeout(tx, lock_timeout);
    transaction_lock(tx, setup_lock(schema));
    names = slot_names(tx, schema);
    std::vector<CapturedColumn> all;
    for (const ResolvedJob* job : jobs) {
      const std::vector<CapturedColumn> columns = capture_columns(tx, *job);
      set_captured_columns(tx, schema, job->name, columns);
      all.insert(all.end(), columns.begin(), columns.end());
    }
    publish(tx, names.publication, all, done);
    tx.commit();
  }
  make_slot(conn, schema, names, lock_timeout, done);
  return done;
}

std::vector<std::string> drop_logical(pqxx::connection& conn, const StateSchema& schema,
                                      const std::string& job, const std::string& lock_timeout) {
  std::vector<std::string> done;
  std::optional<SlotRow> row;
  {
    pqxx::work tx(conn);
    set_publication_lock_timeout(tx, lock_timeout);
    transaction_lock(tx, setup_lock(schema));
    if (!has_feature(state_version(tx, schema), StateFeature::logical)) return done;
    row = read_slot_row(tx, schema);
    std::vector<CapturedColumn> mine, others;
    for (CapturedColumn& c : captured_columns(tx, schema))
      (c.job == job ? mine : others).push_back(c);
    delete_captured_columns(tx, schema, job);
    const SlotNames names = row ? SlotNames{row->slot, row->publication} : slot_names(tx, schema);
    const bool exists = publication_exists(tx, names.publication);
    std::set<unsigned> dropped;
    for (const CapturedColumn& c : mine) {
      const bool kept = std::any_of(others.begin(), others.end(), [&](const CapturedColumn& o) {
        return o.table_oid == c.table_oid;
      });
      if (kept || !exists || !dropped.insert(c.table_oid).second ||
          !in_publication(tx, names.publication, c.table_oid))
        continue;
      tx.exec("ALTER PUBLICATION " + quote_ident(names.publication) + " DROP TABLE " +
              table_of(tx, c.table_oid));
      done.push_back(c.table_name + " left publication " + names.publication);
    }
    if (!others.empty()) {
      tx.commit();
      return done;
    }
    if (exists) {
      tx.exec("DROP PUBLICATION " + quote_ident(names.publication));
      done.push_back("publication " + names.publication + " dropped");
    }
    delete_slot_row(tx, schema);
    tx.commit();
    row = SlotRow{names.slot, names.publication, "", std::nullopt, 0};
  }
  // After the commit: a slot left behind by a kill here is an orphan that validate names.
  pqxx::read_transaction check(conn);
  const bool slot_exists = slot_state(check, row->slot).has_value();
  check.commit();
  if (slot_exists) {
    drop_slot(conn, schema, row->slot, lock_timeout);
    done.push_back("slot " + row->slot + " dropped");
  }
  return done;
}

std::optional<std::string> logical_missing(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const ResolvedJob& job) {
  if (!has_feature(state_version(tx, schema), StateFeature::logical))
    return "no logical capture installed";
  std::vector<CapturedColumn> mine;
  for (CapturedColumn& c : captured_columns(tx, schema))
    if (c.job == job.name) mine.push_back(c);
  if (mine.empty()) return "no logical capture installed";
  for (const CapturedColumn& want : capture_columns(tx, job)) {
    const auto have = std::find_if(mine.begin(), mine.end(),
                                   [&](const CapturedColumn& c) { return c.via == want.via; });
    if (have == mine.end() || have->table_oid != want.table_oid || have->column != want.column)
      return "its capture records another table or column than " + want.table_name + " " +
             want.column;
  }
  const std::optional<SlotRow> row = read_slot_row(tx, schema);
  if (!row) return "no replication slot recorded";
  const std::optional<SlotState> slot = slot_state(tx, row->slot);
  if (!slot) return "the replication slot " + row->slot + " does not exist";
  if (slot->wal_status == "lost")
    return "the replication slot " + row->slot +
           " was invalidated (wal_status lost): it retained more WAL than max_slot_wal_keep_size";
  if (!publication_exists(tx, row->publication))
    return "the publication " + row->publication + " does not exist";
  for (const CapturedColumn& c : mine) {
    if (table_of(tx, c.table_oid).empty()) return c.table_name + " no longer exists";
    if (!in_publication(tx, row->publication, c.table_oid))
      return c.table_name + " is not in the publication " + row->publication;
  }
  return std::nullopt;
}

std::optional<SlotFigures> slot_figures(pqxx::transaction_base& tx, const StateSchema& schema) {
  const std::optional<SlotRow> row = read_slot_row(tx, schema);
  if (!row) return std::nullopt;
  SlotFigures out;
  out.slot = row->slot;
  out.read_age_s = row->read_age_s;
  out.age_s = row->age_s;
  static const std::string k_figures = R"(
    SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::float8
             / (1024 * 1024),
           wal_status
    FROM pg_catalog.pg_replication_slots
    WHERE slot_name = $1 AND database = pg_catalog.current_database())";
  const pqxx::result r = tx.exec_params(k_figures, row->slot);
  if (r.empty()) return out;
  out.exists = true;
  if (!r[0][0].is_null()) out.retained_mb = std::max(0.0, r[0][0].as<double>());
  if (!r[0][1].is_null()) out.wal_status = r[0][1].as<std::string>();
  return out;
}

std::vector<std::string> logical_orphans(pqxx::transaction_base& tx, const StateSchema& schema,
                                         const std::vector<std::string>& logical_jobs) {
  std::vector<std::string> out;
  const std::optional<SlotRow> row = read_slot_row(tx, schema);
  const SlotNames mine = row ? SlotNames{row->slot, row->publication} : slot_names(tx, schema);
  // The schema's own slot and publication are orphans only when no job of the file captures
  // through them.
  const bool mine_wanted = !logical_jobs.empty();
  static const std::string k_slots = R"(
    SELECT slot_name::text FROM pg_catalog.pg_replication_slots
    WHERE database = pg_catalog.current_database() AND plugin = 'pgoutput'
      AND slot_name::text LIKE 'pgxform\_%' ORDER BY 1)";
  for (const auto& r : tx.exec(k_slots))
    if (!(mine_wanted && r[0].as<std::string>() == mine.slot))
      out.push_back("slot " + r[0].as<std::string>());
  static const std::string k_publications = R"(
    SELECT pubname::text FROM pg_catalog.pg_publication
    WHERE pubname::text LIKE 'pgxform\_%' ORDER BY 1)";
  for (const auto& r : tx.exec(k_publications))
    if (!(mine_wanted && r[0].as<std::string>() == mine.publication))
      out.push_back("publication " + r[0].as<std::string>());
  std::set<std::string> jobs;
  for (const CapturedColumn& c : captured_columns(tx, schema))
    if (std::find(logical_jobs.begin(), logical_jobs.end(), c.job) == logical_jobs.end())
      jobs.insert(c.job);
  for (const std::string& job : jobs) out.push_back("job '" + job + "' (capture_table)");
  return out;
}

std::vector<std::string> drop_logical_orphans(pqxx::connection& conn, const StateSchema& schema,
                                              const std::vector<std::string>& logical_jobs,
                                              const std::string& lock_timeout) {
  std::vector<std::string> found;
  std::set<std::string> jobs;
  {
    pqxx::read_transaction tx(conn);
    found = logical_orphans(tx, schema, logical_jobs);
    for (const CapturedColumn& c : captured_columns(tx, schema))
      if (std::find(logical_jobs.begin(), logical_jobs.end(), c.job) == logical_jobs.end())
        jobs.insert(c.job);
  }
  std::vector<std::string> done;
  for (const std::string& job : jobs)
    for (std::string& d : drop_logical(conn, schema, job, lock_timeout)) done.push_back(d);
  for (const std::string& what : found) {
    const auto space = what.find(' ');
    const std::string kind = what.substr(0, space), name = what.substr(space + 1);
    if (kind == "slot") {
      pqxx::read_transaction tx(conn);
      const bool exists = slot_state(tx, name).has_value();
      tx.commit();
      if (!exists) continue;
      drop_slot(conn, schema, name, lock_timeout);
      done.push_back("slot " + name + " dropped");
    } else if (kind == "publication") {
      pqxx::work tx(conn);
      if (!publication_exists(tx, name)) continue;
      tx.exec("DROP PUBLICATION " + quote_ident(name));
      tx.commit();
      done.push_back("publication " + name + " dropped");
    }
  }
  return done;
}

}  // namespace pgxform
