// worker_pool: how many workers a pool keeps (pool_size) and how it says why, without a database
// or threads. The pool itself runs in every database test of a run; the connections it takes
// are counted in worker_pool_db_test.cpp.
#include "engine/worker_pool.h"

#include <catch2/catch.hpp>

using pgxform::pool_size;
using pgxform::PoolFigures;

namespace {

PoolFigures figures(int workers, int threads, int tasks, std::optional<int> free, int reserve) {
  PoolFigures f;
  f.workers = workers;
  f.threads = threads;
  f.tasks = tasks;
  f.connections_free = free;
  f.reserve = reserve;
  return f;
}

}  // namespace

TEST_CASE("a pool has no more workers than asked, than tasks can run, or than connections allow") {
  CHECK(pool_size(figures(1, 4, 10, 100, 5)) == 4);    // as asked
  CHECK(pool_size(figures(1, 1024, 3, 100, 5)) == 3);  // no worker without a task
  CHECK(pool_size(figures(1, 1024, 16, 12, 5)) == 8);  // 1 held + 7 free beyond the reserve
  CHECK(pool_size(figures(8, 1024, 16, 5, 5)) == 8);   // keeps what it holds, takes no more
  CHECK(pool_size(figures(8, 1024, 16, 0, 5)) == 8);   // ... not giving back busy workers
  CHECK(pool_size(figures(8, 2, 16, 100, 5)) == 2);    // set --threads lower: shrinks
  CHECK(pool_size(figures(6, 1024, 2, 100, 5)) == 2);  // fewer tasks: idle workers leave
  CHECK(pool_size(figures(1, 1024, 16, std::nullopt, 5)) == 16);  // connections unknown
}

TEST_CASE("a pool always keeps one worker, so that the work goes on") {
  CHECK(pool_size(figures(0, 4, 3, 0, 5)) == 1);
  CHECK(pool_size(figures(1, 4, 0, 100, 5)) == 1);
  CHECK(pool_size(figures(0, 4, 3, 2, 5)) == 1);
}

TEST_CASE("a pool says how many workers it has, the tasks, the connections free and why") {
  CHECK(pgxform::pool_text(figures(3, 1024, 3, 42, 5)) ==
        "3 workers: 3 tasks can run, 42 connections free (1024 threads asked, 5 kept in "
        "reserve)");
  CHECK(pgxform::pool_text(figures(1, 1, 1, std::nullopt, 0)) ==
        "1 worker: 1 task can run, ? connections free (1 thread asked, 0 kept in reserve)");
}
