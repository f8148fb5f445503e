// bound_finder: the next batch's last key, found on a connection of its own while the batch
// before it runs.
//
// A batch of a unique key finds its last key by walking the key's index from the cursor
// (batch_sql.h): `OFFSET size - 1`, one index entry after another. That walk is 6-8 % of a
// light transform's time (about 70 ns a key against the copy's 800 ns a row), paid on the
// worker's connection before the function starts. The walk of batch i+1 needs only batch i's
// last key and a size, both known when batch i starts: a main-pass task asks this finder for
// it then (request), and takes the result when batch i+1 starts (take). The finder walks on
// its own thread and connection (one connection per thread), for every worker of the run in
// turn; on a server with a core to spare, the walk is off the batch's path.
//
// Nothing depends on it for exactness: the batch that takes a found key still reads the first
// key after the cursor itself, processes (cursor, last key], and moves the cursor there, in
// its one transaction (batch_sql.h: LastKey::given). What the finder's snapshot can get wrong
// is only the batch's row count, where the leading table changed between the walk and the
// batch (the rows inserted or deleted in that range meanwhile; capture's business). A result
// is taken only by the task that asked, for the cursor it asked from, and only when its size is
// what the task's sizer asks now or down to half of it (time-sized batches grow by steps); else
// the batch walks for itself, as it does while the finder is busy with another worker's walk
// or cannot connect (then it gives up after k_max_failures, and the run goes on without it).
//
// The end of a range: fewer keys than asked are left. The finder then gives the range's last
// key and counts the keys up to it (a batch that walked for itself would walk them and count
// them, both on its path: the last batch of a range was the slowest of a run). Such a result
// serves any size that takes them all.
//
// Its session's application_name is the runner's followed by " bounds": it holds no claim and
// no lock, and is not one of the pool's workers.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "catalog/catalog.h"
#include "database/database.h"
#include "engine/batch_sql.h"

namespace pgxform {

// The last key of the `size` keys after `after` (none: from the first key), up to `hi_key`
// when the slice has one: the walk of bounds_query for `task` (TaskId::text()).
struct BoundRequest {
  std::string task;
  const ResolvedJob* job = nullptr;
  BatchShape shape;
  std::optional<std::string> after;
  long size = 0;
  int slice = 0;
  std::optional<std::string> hi_key;
};

// A walk's result: `size` keys after the request's cursor end at `last_key`; with `end`, they
// are all the range had left (fewer than asked).
struct FoundBound {
  std::optional<std::string> after;
  std::string last_key;
  long size = 0;
  bool end = false;
};

class BoundFinder {
 public:
  static constexpr int k_max_failures = 3;
  explicit BoundFinder(std::string dsn);
  ~BoundFinder();
  BoundFinder(const BoundFinder&) = delete;
  BoundFinder& operator=(const BoundFinder&) = delete;

  // Queues the walk (replacing the task's earlier request, if not started yet).
  void request(BoundRequest request);
  // The found last key for `task` after `after`, when its size is `size` or down to half of
  // it (at the end of the range: up to `size`); waits for the walk when it is running now; none
  // otherwise (not asked, still queued, no key left, failed). A result is taken once.
  std::optional<FoundBound> take(const std::string& task, const std::optional<std::string>& after,
                                 long size);
  // For tests and the debug log: walks tried, walks done, results taken, and whether the finder
  // gave up (k_max_failures failures in a row).
  long long tries() const;
  long long walks() const;
  long long taken() const;
  bool gave_up() const;

 private:
  void loop();
  std::optional<FoundBound> walk(const BoundRequest& request);

  Session m_session;
  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::deque<BoundRequest> m_queue;
  std::map<std::string, FoundBound> m_found;                    // by task
  std::optional<std::pair<std::string, FoundBound>> m_running;  // task, and what it asked
  bool m_stop = false;
  bool m_disabled = false;
  int m_failures = 0;
  long long m_tries = 0;
  long long m_walks = 0;
  long long m_taken = 0;
  std::thread m_thread;  // started at the first request
};

}  // namespace pgxform
