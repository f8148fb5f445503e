// main_pass: the main pass's part of a task (batch_runner.h: BatchPhase) — a job, or one slice
// of a sliced job, walked in keyset batches after its cursor.
//
// A batch is one transaction of two statements (batch_sql.h): the batch itself, under EXPLAIN
// ANALYZE for its buffer counters — the bounds by two index probes, the function's call, the
// cursor's move (task_cursor.h), and for a job with `changes: trigger` the removal of the
// change-log rows of the keys it processed (change_log.h), so that a change the batch read is
// not refreshed again by catch-up — then its batch_log row. So a batch costs four round trips
// (BEGIN, the two statements, COMMIT) whatever its size, and the function's writes, the
// cursor's move and the batch_log row commit together or not at all.
//
// A failing batch is set aside with `on_error: skip` (its range goes to failed_batches in the
// transaction that moves the cursor past it), narrowed down first with `bisect: true`; with
// `on_error: stop` the job fails with the error, SQLSTATE and key range. A slice of `parallel:
// auto` may be split while its failing batch is narrowed down: each part is processed or set
// aside only up to the slice's hi_key as that part's transaction reads it (slice_split.h), the
// keys above are the other slice's, so that a key is neither processed nor set aside twice, and
// a range set aside lies inside one slice.
//
// With a bound finder (bound_finder.h) and a unique key, a batch takes its last key from the
// walk the finder did while the batch before it ran (or, when the finder has none for it, from
// a walk of its own in its transaction, first), asks the finder for the next batch's, and runs
// the batch statement of a given last key (batch_sql.h: LastKey::given); the walked statement
// runs instead where that one finds no batch.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "engine/batch_runner.h"
#include "engine/batch_sql.h"
#include "engine/bound_finder.h"
#include "state/task_cursor.h"

namespace pgxform {

class MainPass : public BatchPhase {
 public:
  explicit MainPass(TaskContext& task);

  bool start() override;
  std::optional<Done> batch(pqxx::work& tx, long size) override;
  std::optional<BatchPart> next_part(long size) override;
  std::optional<std::pair<BatchPart, BatchPart>> split(const BatchPart& part) override;
  long long process(pqxx::work& tx, const BatchPart& part) override;
  std::optional<BatchPart> set_aside(pqxx::work& tx, const BatchPart& part,
                                     const Failure& failure) override;
  bool sets_aside() const override;
  bool narrows() const override;
  TaskOutcome fail(const Failure& failure, const std::optional<BatchPart>& part) override;
  void finish() override;
  void stop() override;

 private:
  BatchShape shape() const;
  // A slice of `parallel: auto`: locks its row for `tx` and takes its hi_key as it is now
  // (slice_split.h, rule 1).
  void lock_bound(pqxx::work& tx);
  // What of `part` is still this task's in `tx`: for a slice of `parallel: auto`, its row locked
  // as lock_bound does, the part up to the slice's hi_key as it is now (a split may have come
  // since the part was found); none when all of it is another slice's. `part` for other tasks.
  std::optional<BatchPart> own_part(pqxx::work& tx, const BatchPart& part);
  // "0h": the name of a shape's batch statement, and its function's.
  static std::string variant(const BatchShape& shape);
  // The temporary batch function of `shape` on this session, once (without: the statement).
  void define_function(const BatchShape& shape);
  // Runs prepared statement `name` (`sql` builds its text the first time) with the five
  // parameters of batch_sql.h (seven with a failure's SQLSTATE and error).
  pqxx::result exec(pqxx::work& tx, const std::string& name,
                    const std::function<std::string()>& sql,
                    const std::optional<std::string>& second,
                    const std::optional<std::string>& fifth,
                    const std::optional<std::string>& sqlstate = std::nullopt,
                    const std::optional<std::string>& error = std::nullopt);
  // Commits the range the batch statement processed (its plan in `plan`): the log statement
  // writes the batch_log row; the cursor must have moved. The range's last key and rows; none
  // when the statement found no key left (nothing is committed).
  std::optional<Done> commit_logged(pqxx::work& tx, const pqxx::result& plan);
  std::string statement_name(const std::string& what) const;
  // The next batch's bounds_query row (batch_sql.h) for `size` keys, walked in `tx`.
  pqxx::row walk_bounds(pqxx::transaction_base& tx, long size);
  // The last key of the next batch of `size` keys, found beforehand (by the finder, or by a walk
  // in `tx`), the next batch's walk asked of the finder (unless this one ends the range); none
  // without a finder, for a key that is not unique, and at the end of a range that the finder
  // did not walk (the walked statement finds it and counts its rows).
  std::optional<FoundBound> given_last_key(pqxx::work& tx, long size);
  // The batch of the given last key, committed; none when it found no batch (nothing committed).
  std::optional<Done> given_batch(pqxx::work& tx, const FoundBound& last, long size);

  TaskContext& m_task;
  Slicing m_slicing;
  Cursor m_cursor;
  bool m_started = false;  // a cursor was found (a slice that was never cut has none)
  // By variant, built and defined once; the name empty where the session has none.
  std::map<std::string, BatchFunction> m_functions;
};

}  // namespace pgxform
