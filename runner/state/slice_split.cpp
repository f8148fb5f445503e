#include "state/slice_split.h"

#include "state/state_locks.h"

namespace pgxform {

namespace {

std::optional<std::string> text_or_none(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

Cursor cursor_of(const pqxx::row& r) {
  return Cursor{text_or_none(r["last_key"]), text_or_none(r["hi_key"]),
                r["status"].as<std::string>(), r["slice"].as<int>()};
}

}  // namespace

std::vector<Cursor> open_slices(pqxx::connection& conn, const StateSchema& schema,
                                const std::string& job) {
  pqxx::read_transaction tx(conn);
  std::vector<Cursor> out;
  for (const auto& r : tx.exec_params(schema.fill(R"(
      SELECT slice, last_key, hi_key, status FROM @job_slice@
      WHERE job = $1 AND status <> 'done' ORDER BY slice)"),
                                      job))
    out.push_back(cursor_of(r));
  return out;
}

std::optional<Cursor> lock_slice(pqxx::transaction_base& tx, const StateSchema& schema,
                                 const std::string& job, int slice) {
  const pqxx::result r = tx.exec_params(schema.fill(R"(
      SELECT slice, last_key, hi_key, status FROM @job_slice@
      WHERE job = $1 AND slice = $2 FOR NO KEY UPDATE)"),
                                        job, slice);
  if (r.empty()) return std::nullopt;
  return cursor_of(r[0]);
}

std::optional<SliceRange> lock_slice_range(pqxx::transaction_base& tx, const StateSchema& schema,
                                           const ResolvedJob& job, int slice,
                                           const std::string& first, const std::string& last) {
  // Compared in the key's type: '900' is below '2400' as a number, not as text.
  static const std::string k_range = R"(
      SELECT slice, last_key, hi_key, status,
             CASE WHEN hi_key IS NULL OR @last@ <= @hi@ THEN $4::text
                  WHEN @first@ <= @hi@ THEN hi_key END AS within
      FROM @job_slice@ WHERE job = $1 AND slice = $2 FOR NO KEY UPDATE)";
  const pqxx::result r = tx.exec_params(schema.fill(k_range, {{"@first@", as_key(job, "$3")},
                                                              {"@last@", as_key(job, "$4")},
                                                              {"@hi@", as_key(job, "hi_key")}}),
                                        job.name, slice, first, last);
  if (r.empty()) return std::nullopt;
  return SliceRange{cursor_of(r[0]), text_or_none(r[0]["within"])};
}

std::optional<int> split_slice(pqxx::connection& conn, const StateSchema& schema,
                               const ResolvedJob& job, int donor, const std::string& mid) {
  // Whether mid lies strictly inside what the donor has left, compared in the key's type.
  static const std::string k_donor = R"(
      SELECT d.hi_key,
             (d.last_key IS NULL OR @last@ < @mid@) AND (d.hi_key IS NULL OR @mid@ < @hi@) AS fits
      FROM @job_slice@ d WHERE d.job = $1 AND d.slice = $2 AND d.status <> 'done' FOR UPDATE)";
  pqxx::work tx(conn);
  // Not while a command holds the job (JobClaim, state_locks.h): it counted the slices it holds.
  if (!try_transaction_lock_shared(tx, claim_lock(schema, job.name))) return std::nullopt;
  transaction_lock(tx, split_lock(schema, job.name));
  const pqxx::result d = tx.exec_params(schema.fill(k_donor, {{"@last@", as_key(job, "d.last_key")},
                                                              {"@hi@", as_key(job, "d.hi_key")},
                                                              {"@mid@", as_key(job, "$3")}}),
                                        job.name, donor, mid);
  if (d.empty() || !d[0]["fits"].as<bool>()) return std::nullopt;
  tx.exec_params(schema.fill(R"(
      UPDATE @job_slice@ SET hi_key = $3, updated_at = pg_catalog.clock_timestamp()
      WHERE job = $1 AND slice = $2)"),
                 job.name, donor, mid);
  const pqxx::row added = tx.exec_params1(schema.fill(R"(
      INSERT INTO @job_slice@ (job, slice, lo_key, hi_key, last_key)
      SELECT $1, pg_catalog.max(slice) + 1, $2, $3, $2 FROM @job_slice@ WHERE job = $1
      RETURNING slice)"),
                                          job.name, mid, text_or_none(d[0]["hi_key"]));
  tx.commit();
  return added[0].as<int>();
}

bool held_by_command(pqxx::connection& conn, const StateSchema& schema, const std::string& job) {
  pqxx::read_transaction tx(conn);
  return !try_transaction_lock_shared(tx, claim_lock(schema, job));
}

int recorded_slices(pqxx::connection& conn, const StateSchema& schema, const std::string& job) {
  pqxx::read_transaction tx(conn);
  return recorded_slices(tx, schema, job);
}

std::optional<long long> recent_batch_rows(pqxx::connection& conn, const StateSchema& schema,
                                           const std::string& job) {
  pqxx::read_transaction tx(conn);
  const pqxx::row r = tx.exec_params1(schema.fill(R"(
      SELECT pg_catalog.avg(rows)::bigint FROM (
        SELECT rows FROM @batch_log@ WHERE job = $1 ORDER BY batch_no DESC LIMIT 8) b)"),
                                      job);
  if (r[0].is_null()) return std::nullopt;
  return r[0].as<long long>();
}

}  // namespace pgxform
