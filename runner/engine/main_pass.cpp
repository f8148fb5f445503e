#include "engine/main_pass.h"

#include <spdlog/spdlog.h>

#include "state/batch_log.h"
#include "state/failed_ranges.h"
#include "state/slice_split.h"

namespace pgxform {

MainPass::MainPass(TaskContext& task) : m_task(task), m_slicing(slicing_of(task.job)) {}

std::string MainPass::statement_name(const std::string& what) const {
  return what + "_" + std::to_string(std::hash<std::string>{}(m_task.task.job)) + "_" +
         std::to_string(m_task.task.slice);
}

BatchShape MainPass::shape() const {
  return {m_slicing, m_cursor.last_key ? CursorStart::after_last_key : CursorStart::none,
          m_cursor.hi_key ? UpperBound::hi_key : UpperBound::open};
}

bool MainPass::start() {
  // A slice that was never cut: the table was empty when the run started. Its rows, if any
  // arrived since, are the next run's, which cuts the slices first.
  std::optional<Cursor> cursor = m_task.store.read_cursor(m_task.task, m_slicing);
  m_started = cursor.has_value();
  if (!cursor) return false;
  m_cursor = *cursor;
  // The batch functions of the shapes its batches take, defined before any batch's
  // transaction: the first batch's, and those after it; a slice of `parallel: auto` may be
  // split while it runs: its next batch may be bounded; with a finder, of a given last key.
  std::vector<UpperBound> uppers{shape().upper};
  if (m_task.job.parallel_auto && shape().upper == UpperBound::open)
    uppers.push_back(UpperBound::hi_key);
  std::vector<LastKey> lasts{LastKey::walked};
  if (m_task.bounds && m_task.job.key_unique) lasts.push_back(LastKey::given);
  for (const CursorStart start : {CursorStart::none, CursorStart::after_last_key})
    for (const UpperBound upper : uppers)
      for (const LastKey last : lasts) define_function({m_slicing, start, upper, last});
  return true;
}

void MainPass::lock_bound(pqxx::work& tx) {
  if (!m_task.job.parallel_auto) return;
  const std::optional<Cursor> now =
      lock_slice(tx, m_task.store.schema(), m_task.job.name, m_task.task.slice);
  if (!now || now->last_key != m_cursor.last_key)
    throw std::runtime_error("the cursor of " + m_task.task.text() + " moved under this runner");
  m_cursor.hi_key = now->hi_key;
}

std::optional<BatchPart> MainPass::own_part(pqxx::work& tx, const BatchPart& part) {
  if (!m_task.job.parallel_auto) return part;
  const std::optional<SliceRange> range = lock_slice_range(
      tx, m_task.store.schema(), m_task.job, m_task.task.slice, part.first, part.last);
  if (!range || range->cursor.last_key != m_cursor.last_key)
    throw std::runtime_error("the cursor of " + m_task.task.text() + " moved under this runner");
  if (range->cursor.hi_key != m_cursor.hi_key && range->cursor.hi_key)
    spdlog::info(
        "{}: split while its failing batch is narrowed down: the keys above {} are left "
        "to the slice that has them now",
        m_task.task.text(), *range->cursor.hi_key);
  m_cursor.hi_key = range->cursor.hi_key;
  if (!range->last) return std::nullopt;
  return BatchPart{part.first, *range->last, {}};
}

std::string MainPass::variant(const BatchShape& shape) {
  return std::string(shape.start == CursorStart::none ? "0" : "") +
         (shape.upper == UpperBound::hi_key ? "h" : "") + (shape.last == LastKey::given ? "g" : "");
}

void MainPass::define_function(const BatchShape& shape) {
  const std::string name = variant(shape);
  if (m_functions.count(name)) return;
  BatchFunction function = batch_function(m_task.job, m_task.store.schema(), shape);
  const bool defined =
      !function.name.empty() && m_task.session.define(function.name, [&] { return function.ddl; });
  if (!defined) function.name.clear();
  m_functions.emplace(name, std::move(function));
}

pqxx::result MainPass::exec(pqxx::work& tx, const std::string& name,
                            const std::function<std::string()>& sql,
                            const std::optional<std::string>& second,
                            const std::optional<std::string>& fifth,
                            const std::optional<std::string>& sqlstate,
                            const std::optional<std::string>& error) {
  m_task.session.prepare(name, sql);
  const std::string& job = m_task.job.name;
  if (error)
    return tx.exec_prepared(name, m_cursor.last_key, second, job, m_task.task.slice, fifth,
                            sqlstate, error);
  return tx.exec_prepared(name, m_cursor.last_key, second, job, m_task.task.slice, fifth);
}

std::optional<BatchPhase::Done> MainPass::commit_logged(pqxx::work& tx, const pqxx::result& plan) {
  const std::string name = "log_batch";
  m_task.session.prepare(name, [&] { return log_sql(m_task.store.schema()); });
  const pqxx::result r = log_batch(tx, m_task.store.schema(), m_task.job.name, plan, name);
  if (r.empty()) return std::nullopt;  // no key was left
  if (r[0]["moved"].as<long long>() != 1)
    throw std::runtime_error("the cursor of " + m_task.task.text() + " moved under this runner");
  Done done{r[0]["rows"].as<long long>(), r[0]["hi"].as<std::string>()};
  tx.commit();
  m_cursor.last_key = done.last_key;
  return done;
}

pqxx::row MainPass::walk_bounds(pqxx::transaction_base& tx, long size) {
  const std::string name = statement_name("bounds" + variant(shape()));
  m_task.session.prepare(name, [&] { return bounds_query(m_task.job, shape()); });
  return tx.exec_prepared1(name, m_cursor.last_key, std::to_string(size), m_task.job.name,
                           m_task.task.slice, m_cursor.hi_key);
}

std::optional<FoundBound> MainPass::given_last_key(pqxx::work& tx, long size) {
  BoundFinder* finder = m_task.bounds;
  if (!finder || !m_task.job.key_unique) return std::nullopt;
  const std::string task = m_task.task.text();
  std::optional<FoundBound> last = finder->take(task, m_cursor.last_key, size);
  if (!last) {
    const pqxx::row r = walk_bounds(tx, size);
    if (r[0].is_null() || !r[6].as<bool>()) return std::nullopt;  // the range's last batch
    last = FoundBound{m_cursor.last_key, r[1].as<std::string>(), size};
  }
  if (last->end) return last;  // the range's last batch: no walk after it
  BatchShape next = shape();
  next.start = CursorStart::after_last_key;
  finder->request(
      {task, &m_task.job, next, last->last_key, size, m_task.task.slice, m_cursor.hi_key});
  return last;
}

std::optional<BatchPhase::Done> MainPass::given_batch(pqxx::work& tx, const FoundBound& last,
                                                      long size) {
  BatchShape s = shape();
  s.last = LastKey::given;
  const BatchFunction& function = m_functions.at(variant(s));
  const bool called = !function.name.empty();
  const std::string name = statement_name((called ? "call" : "batch") + variant(s));
  m_task.session.prepare(name, [&] {
    return called ? function.call : batch_sql(m_task.job, m_task.store.schema(), s);
  });
  // The size asked: what the walk was for, or at the range's end what the sizer asks now.
  const long asked = last.end ? size : last.size;
  const pqxx::result plan =
      tx.exec_prepared(name, m_cursor.last_key, std::to_string(asked), m_task.job.name,
                       m_task.task.slice, m_cursor.hi_key, last.last_key, last.size);
  return commit_logged(tx, plan);
}

std::optional<BatchPhase::Done> MainPass::batch(pqxx::work& tx, long size) {
  lock_bound(tx);
  if (const std::optional<FoundBound> last = given_last_key(tx, size))
    if (std::optional<Done> done = given_batch(tx, *last, size)) return done;
  const BatchShape s = shape();
  // The batch as a call of a temporary function, planned once per session (see batch_sql.h);
  // the statement itself where the session cannot create one.
  const BatchFunction& function = m_functions.at(variant(s));
  const bool called = !function.name.empty();
  const pqxx::result plan = exec(
      tx, statement_name((called ? "call" : "batch") + variant(s)),
      [&] { return called ? function.call : batch_sql(m_task.job, m_task.store.schema(), s); },
      std::to_string(size), m_cursor.hi_key);
  std::optional<Done> done = commit_logged(tx, plan);
  if (!done) tx.commit();
  return done;
}

long long MainPass::process(pqxx::work& tx, const BatchPart& part) {
  const std::optional<BatchPart> own = own_part(tx, part);
  if (!own) {
    tx.commit();
    return 0;
  }
  const pqxx::result plan = exec(
      tx, statement_name("range"),
      [&] { return range_sql(m_task.job, m_task.store.schema(), m_slicing, CursorMove::advance); },
      own->first, own->last);
  const std::optional<Done> done = commit_logged(tx, plan);
  if (!done)
    throw std::runtime_error("the cursor of " + m_task.task.text() + " moved under this runner");
  return done->rows;
}

std::optional<BatchPart> MainPass::set_aside(pqxx::work& tx, const BatchPart& part,
                                             const Failure& failure) {
  // Keys another slice has now are that slice's to process, or to set aside, itself.
  const std::optional<BatchPart> own = own_part(tx, part);
  if (!own) {
    tx.commit();
    return std::nullopt;
  }
  const std::optional<std::string> sqlstate =
      failure.sqlstate.empty() ? std::nullopt : std::optional<std::string>(failure.sqlstate);
  const pqxx::result r = exec(
      tx, statement_name("skip"), [&] { return set_aside_sql(m_task.store.schema(), m_slicing); },
      own->first, own->last, sqlstate, failure.message);
  if (r[0]["moved"].as<long long>() != 1)
    throw std::runtime_error("the cursor of " + m_task.task.text() + " moved under this runner");
  tx.commit();
  m_cursor.last_key = own->last;
  return own;
}

std::optional<BatchPart> MainPass::next_part(long size) {
  try {
    pqxx::read_transaction tx(m_task.session.conn());
    const pqxx::row r = walk_bounds(tx, size);
    if (!r[0].is_null()) return BatchPart{r[0].as<std::string>(), r[1].as<std::string>(), {}};
  } catch (const std::exception& e) {
    spdlog::warn("{}: could not find the failing batch's key range: {}", m_task.task.text(),
                 redact(e.what()));
  }
  return std::nullopt;
}

std::optional<std::pair<BatchPart, BatchPart>> MainPass::split(const BatchPart& part) {
  try {
    pqxx::read_transaction tx(m_task.session.conn());
    const pqxx::row r = tx.exec_params1(split_query(m_task.job), part.first, part.last);
    if (!r[0].is_null() && !r[1].is_null())
      return std::make_pair(BatchPart{part.first, r[0].as<std::string>(), {}},
                            BatchPart{r[1].as<std::string>(), part.last, {}});
  } catch (const std::exception& e) {
    spdlog::warn("{}: cannot split [{}, {}]: {}", m_task.task.text(), part.first, part.last,
                 redact(e.what()));
  }
  return std::nullopt;  // a single key value (or no way to tell): the culprit
}

bool MainPass::sets_aside() const {
  return m_task.spec.settings.on_error == OnError::skip;
}

bool MainPass::narrows() const {
  return m_task.spec.settings.bisect;
}

TaskOutcome MainPass::fail(const Failure& failure, const std::optional<BatchPart>& part) {
  const std::optional<std::string> first =
      part ? std::optional<std::string>(part->first) : std::nullopt;
  const std::optional<std::string> last =
      part ? std::optional<std::string>(part->last) : std::nullopt;
  std::string message = m_task.task.text() + ": batch [" + first.value_or("?") + ", " +
                        last.value_or("?") + "] failed";
  if (!failure.sqlstate.empty()) message += " (SQLSTATE " + failure.sqlstate + ")";
  message += ": " + failure.message;
  m_task.store.mark_failed(m_task.task, m_slicing, failure, first, last);
  m_task.metrics.batch_failed(m_task.job.name, Phase::main);
  return {TaskOutcome::Kind::failed, message};
}

void MainPass::finish() {
  const std::optional<long long> job_rows = m_task.store.mark_done(m_task.task, m_slicing);
  if (job_rows) m_task.metrics.job_done(m_task.job.name);
  if (m_started) m_task.progress.job_finished(m_task.task.text(), job_rows);
}

void MainPass::stop() {
  m_task.store.mark_stopped(m_task.task, m_slicing);
}

}  // namespace pgxform
