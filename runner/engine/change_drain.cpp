#include "engine/change_drain.h"

#include <spdlog/spdlog.h>

#include "state/batch_log.h"
#include "state/change_log.h"
#include "state/failed_ranges.h"
#include "state/state_locks.h"
#include "state/state_schema.h"

namespace pgxform {

std::optional<long long> refresh_set_aside_key(pqxx::work& tx, const StateSchema& schema,
                                               const ResolvedJob& job, long long id) {
  const pqxx::result plan = tx.exec_params(refresh_set_aside_sql(job, schema), job.name, id);
  const pqxx::result logged = log_batch(tx, schema, job.name, plan);
  if (logged.empty()) return std::nullopt;
  return logged[0]["rows"].as<long long>();
}

ChangeDrain::ChangeDrain(TaskContext& task, std::optional<long long> until)
    : m_task(task), m_until(until) {}

std::string ChangeDrain::statement_name(const std::string& what) const {
  return "catch_up_" + what + "_" + std::to_string(std::hash<std::string>{}(m_task.job.name));
}

void ChangeDrain::expand(pqxx::work& tx, long size) {
  const StateSchema& schema = m_task.store.schema();
  if (m_task.job.also.empty() || !has_also_changes(tx, schema, m_task.job.name)) return;
  // No main-pass batch of the job is in flight from here to the COMMIT: the cursor read next is
  // the last one that committed, and the keys above it are read by batches that start later.
  lock_for_expansion(tx, schema, m_task.job.name);
  for (int via = 1; via <= int(m_task.job.also.size()); ++via) {
    const std::string name = statement_name("expand" + std::to_string(via));
    m_task.session.prepare(name, [&] { return expand_sql(m_task.job, schema, via); });
    const pqxx::row r = tx.exec_prepared1(name, m_task.job.name, size);
    if (r["taken"].as<long long>() > 0)
      spdlog::debug("{}: {} change(s) of {} mean {} key(s) to refresh", m_task.task.text(),
                    r["taken"].as<long long>(), m_task.job.also[std::size_t(via - 1)].table_sql,
                    r["added"].as<long long>());
  }
}

std::optional<BatchPhase::Done> ChangeDrain::logged(pqxx::work& tx, const pqxx::result& plan) {
  const std::string name = "log_batch";
  m_task.session.prepare(name, [&] { return log_sql(m_task.store.schema()); });
  const pqxx::result r = log_batch(tx, m_task.store.schema(), m_task.job.name, plan, name);
  if (r.empty()) return std::nullopt;
  return Done{r[0]["rows"].as<long long>(), r[0]["hi"].as<std::string>()};
}

std::optional<BatchPhase::Done> ChangeDrain::batch(pqxx::work& tx, long size) {
  const StateSchema& schema = m_task.store.schema();
  expand(tx, size);
  if (m_until) {
    const std::string count = statement_name("drainable");
    m_task.session.prepare(count, [&] { return drainable_sql(m_task.job, schema); });
    if (tx.exec_prepared1(count, m_task.job.name)[0].as<long long>() <= *m_until) {
      tx.commit();
      return std::nullopt;
    }
  }
  const std::string name = statement_name("drain");
  m_task.session.prepare(name, [&] { return drain_sql(m_task.job, schema, DrainPick::next); });
  const std::optional<Done> done =
      logged(tx, tx.exec_prepared(name, m_task.job.name, static_cast<long long>(size)));
  count_pending(tx);
  // An in-doubt COMMIT is thrown to task_runner: the log, read again, tells what went through.
  tx.commit();
  return done;
}

void ChangeDrain::count_pending(pqxx::work& tx) {
  const auto now = std::chrono::steady_clock::now();
  if (m_counted && now - *m_counted < std::chrono::seconds(5)) return;
  m_counted = now;
  const std::string name = statement_name("pending");
  m_task.session.prepare(name, [&] { return job_changes_sql(m_task.store.schema()); });
  m_task.progress.set_pending(m_task.task.text(),
                              tx.exec_prepared1(name, m_task.job.name)[0].as<long long>());
}

std::optional<BatchPart> ChangeDrain::next_part(long size) {
  BatchPart part;
  try {
    pqxx::read_transaction tx(m_task.session.conn());
    for (const auto& row : tx.exec_params(drain_keys_query(m_task.job, m_task.store.schema()),
                                          m_task.job.name, static_cast<long long>(size)))
      part.keys.push_back(row[1].as<std::string>());
  } catch (const pqxx::sql_error& e) {
    // A key the key type cannot read fails every batch that meets it: those keys are the
    // failing part, set aside one by one with the reason.
    part.keys = unreadable_keys(size);
    if (part.keys.empty())
      spdlog::warn("{}: could not read the failing batch's keys: {}", m_task.task.text(),
                   redact(e.what()));
  } catch (const std::exception& e) {
    spdlog::warn("{}: could not read the failing batch's keys: {}", m_task.task.text(),
                 redact(e.what()));
  }
  if (part.keys.empty()) return std::nullopt;
  part.first = part.keys.front();
  part.last = part.keys.back();
  return part;
}

std::vector<std::string> ChangeDrain::unreadable_keys(long size) {
  std::vector<std::string> keys;
  const StateSchema& schema = m_task.store.schema();
  pqxx::read_transaction tx(m_task.session.conn());
  if (!has_feature(state_version(tx, schema), StateFeature::logical)) return keys;
  for (const auto& row : tx.exec_params(unreadable_keys_query(schema), m_task.job.name,
                                        static_cast<long long>(size), m_task.job.key_type))
    keys.push_back(row[0].as<std::string>());
  return keys;
}

std::optional<std::pair<BatchPart, BatchPart>> ChangeDrain::split(const BatchPart& part) {
  if (part.keys.size() < 2) return std::nullopt;  // a single key: the culprit
  const auto middle = part.keys.begin() + std::ptrdiff_t(part.keys.size() / 2);
  BatchPart low{part.keys.front(), *(middle - 1), {part.keys.begin(), middle}};
  BatchPart high{*middle, part.keys.back(), {middle, part.keys.end()}};
  return std::make_pair(std::move(low), std::move(high));
}

long long ChangeDrain::process(pqxx::work& tx, const BatchPart& part) {
  const std::string name = statement_name("keys");
  m_task.session.prepare(
      name, [&] { return drain_sql(m_task.job, m_task.store.schema(), DrainPick::explicit_keys); });
  const std::optional<Done> done =
      logged(tx, tx.exec_prepared(name, m_task.job.name, text_array(part.keys)));
  tx.commit();
  return done ? done->rows : 0;
}

std::optional<BatchPart> ChangeDrain::set_aside(pqxx::work& tx, const BatchPart& part,
                                                const Failure& failure) {
  const std::optional<std::string> sqlstate =
      failure.sqlstate.empty() ? std::nullopt : std::optional<std::string>(failure.sqlstate);
  const std::string name = "catch_up_set_aside";
  m_task.session.prepare(name, [&] { return set_aside_keys_sql(m_task.store.schema()); });
  tx.exec_prepared(name, m_task.job.name, text_array(part.keys), sqlstate, failure.message);
  tx.commit();
  m_set_aside += static_cast<long long>(part.keys.size());
  m_task.store.mark_catch_up_failed(m_task.job.name, failure, part.first, part.last);
  return part;
}

TaskOutcome ChangeDrain::fail(const Failure& failure, const std::optional<BatchPart>& part) {
  const std::optional<std::string> first =
      part ? std::optional<std::string>(part->first) : std::nullopt;
  const std::optional<std::string> last =
      part ? std::optional<std::string>(part->last) : std::nullopt;
  m_task.store.mark_catch_up_failed(m_task.job.name, failure, first, last);
  m_task.metrics.batch_failed(m_task.job.name, Phase::catch_up);
  std::string message = m_task.task.text() + ": batch [" + first.value_or("?") + ", " +
                        last.value_or("?") + "] failed";
  if (!failure.sqlstate.empty()) message += " (SQLSTATE " + failure.sqlstate + ")";
  return {TaskOutcome::Kind::failed, message + ": " + failure.message};
}

void ChangeDrain::settle() {
  const std::string name = statement_name("settle");
  m_task.session.prepare(name, [&] { return settle_sql(m_task.job, m_task.store.schema()); });
  // Only while no main-pass batch of the job can be in flight: one that read a key before it was
  // deleted will write it to the target, and its log row must stay to be refreshed. The claims
  // are taken without waiting; a runner at work on the job means: not now.
  std::optional<JobClaim> claim;
  try {
    // The slices of `parallel: auto`, as many as were split off, the claim counts itself.
    claim.emplace(m_task.session.conn(), m_task.store.schema(), m_task.job.name,
                  m_task.job.parallel);
  } catch (const JobHeldError&) {
    return;
  }
  pqxx::work tx(m_task.session.conn());
  const pqxx::result gone = tx.exec_prepared(name, m_task.job.name);
  tx.commit();
  if (gone.affected_rows() > 0)
    spdlog::debug("{}: {} change(s) of keys gone before the main pass reached them",
                  m_task.task.text(), gone.affected_rows());
}

long long ChangeDrain::retry_set_aside() {
  std::vector<FailedRange> keys;
  {
    pqxx::read_transaction tx(m_task.session.conn());
    keys = unresolved_ranges(tx, m_task.store.schema(), m_task.job.name, SetAsideKind::catch_up);
  }
  long long failing = 0;
  for (const FailedRange& key : keys) {
    try {
      pqxx::work tx(m_task.session.conn());
      if (refresh_set_aside_key(tx, m_task.store.schema(), m_task.job, key.id))
        spdlog::info("{}: key {} refreshed after it was set aside", m_task.task.text(),
                     key.first_key);
      tx.commit();
    } catch (const std::exception& e) {
      const Failure failure = classify(e);
      if (failure.kind == FailureKind::connection_lost || failure.kind == FailureKind::in_doubt)
        throw;
      ++failing;
      pqxx::work tx(m_task.session.conn());
      record_retry_failure(tx, m_task.store.schema(), key.id, failure);
      tx.commit();
      spdlog::warn("{}: key {} set aside still fails: {}", m_task.task.text(), key.first_key,
                   describe(failure));
    }
  }
  return failing;
}

}  // namespace pgxform
