// parallel: auto against a real PostgreSQL, with real runner processes: a job's key range split
// while workers are idle, every key processed exactly once (EXCEPT ALL against a from-scratch
// transform) on 2 and 4 threads, under SIGKILL at any moment, with two runners started at
// once, when set --threads adds workers, for every key type; the split by rows on the key's
// index (past the batch in flight, then half the rest), so that a skewed key splits evenly;
// list and after: order kept while splitting.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <thread>

#include "catalog/catalog.h"
#include "engine/slice_sharing.h"
#include "plan/jobs_file.h"
#include "state/slice_split.h"
#include "state/state_locks.h"
#include "state/state_store.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

// items (create_items: keys 3, 6, ...) with parallel: auto, batches of `batch` keys.
std::string auto_items_yaml(int batch) {
  return items_jobs_yaml(batch, 1, "        parallel: auto\n");
}

// The target holds exactly what a from-scratch transform of the whole source gives: no row
// missing, none twice.
void check_exactly_once(TestDatabase& db) {
  CHECK(db.count("SELECT count(*) FROM (SELECT id, v * 10 FROM legacy.items EXCEPT ALL"
                 " SELECT id, v FROM target.items) m") == 0);
  CHECK(db.count("SELECT count(*) FROM (SELECT id, v FROM target.items EXCEPT ALL"
                 " SELECT id, v * 10 FROM legacy.items) d") == 0);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'items'") == "done");
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items' AND"
                 " status <> 'done'") == 0);
  // The job's counters are the sum of its slices', and of its batch log.
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state WHERE job = 'items'") ==
        db.count("SELECT sum(rows_done) FROM pgxform.job_slice WHERE job = 'items'"));
  CHECK(db.count("SELECT rows_done FROM pgxform.job_state WHERE job = 'items'") ==
        db.count("SELECT count(*) FROM legacy.items"));
}

long long slices(TestDatabase& db) {
  return db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items'");
}

std::vector<std::string> run_args(TestDatabase& db, const std::string& path, int threads) {
  return with_db(db, path, {"run", "-q", "--threads", std::to_string(threads)});
}

// The backend that holds slice `slice` of items (its task lock), or 0.
long long slice_holder(TestDatabase& db, int slice) {
  const pgxform::StateSchema schema("pgxform");
  const std::string space = "'" + pgxform::task_lock(schema, {"items", slice}).space + "'";
  return db.count(
      "SELECT coalesce(max(l.pid), 0) FROM pg_locks l WHERE " +
      pgxform::lock_held_sql(space, pgxform::task_name_sql("'items'", std::to_string(slice))));
}

// The runner's sessions (pg_stat_activity) that wait in a split of a slice, for the slice's row
// that a batch holds.
const char* const k_waiting_splits =
    "pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgxform %'"
    " AND wait_event_type = 'Lock' AND query LIKE '%AS fits%'";

// The runner's sessions that wait in a split, each terminated.
long long terminate_splits(TestDatabase& db) {
  return db.count(std::string("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM ") +
                  k_waiting_splits + ") t");
}

// The job items of `db` with `parallel: auto`, its state schema and its first slice, for
// splitting by hand (split_biggest) without a run.
struct SplitOnly {
  explicit SplitOnly(TestDatabase& db)
      : file(pgxform::parse_jobs_file(dir.write("jobs.yaml", auto_items_yaml(100)))),
        conn(pgxform::connect(db.dsn())),
        job(pgxform::resolve_jobs(*conn, file, {}).front()),
        schema(file.state_schema),
        store(*conn, schema) {
    store.ensure_schema();
    store.register_jobs(file);
    store.ensure_slices(job);
  }
  // Splits the biggest open slice.
  pgxform::SplitResult split() {
    return pgxform::split_biggest(*conn, schema, job, pgxform::open_slices(*conn, schema, "items"));
  }
  TempDir dir;
  pgxform::JobsFile file;
  std::unique_ptr<pqxx::connection> conn;
  pgxform::ResolvedJob job;
  pgxform::StateSchema schema;
  pgxform::StateStore store;
};

}  // namespace

TEST_CASE("a job with parallel: auto on 2 and 4 threads is split and processes every key once",
          "[threads]") {
  for (const int threads : {2, 4}) {
    TestDatabase db;
    create_items(db, 6000, 20);
    TempDir dir;
    const auto path = dir.write("jobs.yaml", auto_items_yaml(50));
    const CliResult r = run_cli(run_args(db, path, threads));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    check_exactly_once(db);
    CHECK(slices(db) >= threads);
    // Each slice ran: a split slice was taken up by another worker.
    CHECK(db.count("SELECT count(*) FROM pgxform.job_slice WHERE job = 'items' AND"
                   " rows_done = 0") == 0);
  }
}

TEST_CASE(
    "a job with parallel: auto killed with SIGKILL at any moment and run again until done "
    "processes every key once",
    "[kill]") {
  TestDatabase db;
  create_items(db, 8000, 25);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", auto_items_yaml(40));
  std::mt19937 rng(Catch::rngSeed());
  std::uniform_int_distribution<int> extra(0, 150);
  int kills = 0;
  bool done = false;
  for (int round = 0; round < 300 && !done; ++round) {
    const long long before = batches_committed(db);
    Child child(run_args(db, path, 3), dir.path());
    int code = -1;
    bool exited = false;
    if (round % 3 != 2)
      while (!(exited = child.wait_for(5, code)) && batches_committed(db) == before) {
      }
    if (!exited) exited = child.wait_for(extra(rng), code);
    if (exited) {
      INFO(child.err());
      REQUIRE(code == 0);
      done = true;
      break;
    }
    child.kill(SIGKILL);
    code = child.wait();
    if (code == 0) break;
    REQUIRE(code == 128 + SIGKILL);
    ++kills;
  }
  CHECK(kills >= 5);
  check_exactly_once(db);
  CHECK(slices(db) >= 2);
}

TEST_CASE(
    "two runners started at once on a job with parallel: auto share it and process every "
    "key once",
    "[threads]") {
  TestDatabase db;
  create_items(db, 6000, 20);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", auto_items_yaml(50));
  Child a(run_args(db, path, 2), dir.path());
  Child b(run_args(db, path, 2), dir.path());
  const int code_a = a.wait();
  const int code_b = b.wait();
  INFO(a.err() + "\n---\n" + b.err());
  CHECK(code_a == 0);
  CHECK(code_b == 0);
  check_exactly_once(db);
  CHECK(slices(db) >= 2);
}

TEST_CASE("set --threads from 1 to 3 during a run puts the new workers on split slices",
          "[threads]") {
  TestDatabase db;
  create_items(db, 6000, 30);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", auto_items_yaml(50));
  Child child(run_args(db, path, 1), dir.path());
  while (batches_committed(db) < 3) {
    int code = -1;
    REQUIRE_FALSE(child.wait_for(20, code));
  }
  // One worker: one slice, nothing split.
  CHECK(slices(db) == 1);
  const CliResult set = run_cli(with_db(db, path, {"set", "--threads", "3"}));
  INFO(set.err);
  REQUIRE(set.exit_code == 0);
  const int code = child.wait();
  INFO(child.err());
  REQUIRE(code == 0);
  check_exactly_once(db);
  CHECK(slices(db) >= 3);
}

TEST_CASE(
    "parallel: 1 stays one worker and parallel: auto splits only while work is above the "
    "floor") {
  TestDatabase db;
  create_items(db, 3000, 5);
  TempDir dir;
  const CliResult one = run_cli(run_args(db, dir.write("jobs.yaml", items_jobs_yaml(100)), 4));
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.job_slice") == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE slice <> 0") == 0);

  // A run of `parallel: auto` on 4 threads over `rows` rows in batches of 100: its slices, and
  // the fewest rows in the key range of one. `gated`: every batch waits for advisory lock 4242,
  // held here until an idle worker waits to split the slice behind the first batch (or 60 s),
  // so that the idle workers come while the whole range is left however slow their start
  // (ASan under load took over a second).
  struct Split {
    long long slices = 0;
    long long fewest_rows = 0;
  };
  const auto auto_run = [&](int rows, int sleep_ms, bool gated) {
    TestDatabase small;
    create_items(small, rows, sleep_ms);
    std::unique_ptr<pqxx::connection> gate;
    if (gated) {
      items_function_then(small, "PERFORM pg_advisory_xact_lock_shared(4242); PERFORM pg_sleep(" +
                                     std::to_string(sleep_ms / 1000.0) + ")");
      gate = pgxform::connect(small.dsn());
      pqxx::nontransaction(*gate).exec("SELECT pg_advisory_lock(4242)");
    }
    Child child(run_args(small, dir.write("small.yaml", auto_items_yaml(100)), 4), dir.path());
    for (int waited = 0; gate && waited < 600; ++waited) {
      if (small.count(std::string("SELECT count(*) FROM ") + k_waiting_splits) > 0) break;
      int code = -1;
      REQUIRE_FALSE(child.wait_for(100, code));
    }
    if (gate) pqxx::nontransaction(*gate).exec("SELECT pg_advisory_unlock(4242)");
    const int code = child.wait();
    INFO(child.err());
    REQUIRE(code == 0);
    check_exactly_once(small);
    return Split{slices(small),
                 small.count("SELECT min(n) FROM (SELECT count(i.id) AS n FROM pgxform.job_slice s"
                             " LEFT JOIN legacy.items i ON (s.lo_key IS NULL OR i.id >"
                             " s.lo_key::bigint) AND (s.hi_key IS NULL OR i.id <= s.hi_key::bigint)"
                             " WHERE s.job = 'items' GROUP BY s.slice) c")};
  };
  // 150 rows: fewer than the floor's two batches: never split, though three workers are idle
  // for the whole second of its two batches.
  CHECK(auto_run(150, 500, false).slices == 1);
  // 600 rows: split while the first batch runs, the donor keeping its batch in flight and half
  // the rest (350 rows). The split waits for that batch to commit, and a donor's next batch
  // may lock the slice's row first (a split starved of CPU, seen under ASan): its point is
  // still ahead of the donor after two such batches, which 300 rows' was not. A slice is split
  // only with two batches left, so no part ever gets less than half a batch (50 rows past the
  // donor's batch of 100 in flight and half of the rest). The floor's bound itself:
  // "a slice is split from two batches' rows left, not one row fewer".
  const Split split = auto_run(600, 100, true);
  CHECK(split.slices >= 2);
  CHECK(split.fewest_rows >= 50);
}

TEST_CASE("a job with parallel: auto splits for every key type and processes each key once",
          "[threads]") {
  struct KeyType {
    const char* type;
    const char* expr;
  };
  for (const KeyType& key :
       {KeyType{"int", "g * 7"}, KeyType{"text", "'k' || lpad(g::text, 6)"},
        KeyType{"uuid", "md5(g::text)::uuid"}, KeyType{"date", "date '2000-01-01' + g"},
        KeyType{"timestamp", "timestamp '2020-01-01' + g * interval '1 min'"},
        KeyType{"numeric", "g / 7.0"}}) {
    INFO(key.type);
    TestDatabase db;
    db.exec(std::string("CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
                        "CREATE TABLE legacy.typed (k ") +
            key.type + " PRIMARY KEY, g int NOT NULL);" + "INSERT INTO legacy.typed SELECT " +
            key.expr +
            ", g FROM generate_series(1, 3000) g;"
            "CREATE TABLE target.typed (k " +
            key.type + ", g int); CREATE FUNCTION xf.typed(a " + key.type + ", b " + key.type +
            ") RETURNS void LANGUAGE sql AS 'INSERT INTO target.typed SELECT k, g FROM"
            " legacy.typed WHERE k BETWEEN a AND b; SELECT pg_sleep(0.02)'");
    TempDir dir;
    const auto path = dir.write(
        "jobs.yaml",
        "version: 1\nlists:\n  - name: main\n    jobs:\n"
        "      - {name: typed, table: legacy.typed, key: k, function: xf.typed, batch_size: 25,"
        " target_batch_ms: 0, parallel: auto}\n");
    const CliResult r = run_cli(with_db(db, path, {"run", "-q", "--threads", "3"}));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(db.count("SELECT count(*) FROM (SELECT k, g FROM legacy.typed EXCEPT ALL"
                   " SELECT k, g FROM target.typed) m") == 0);
    CHECK(db.count("SELECT count(*) FROM (SELECT k, g FROM target.typed EXCEPT ALL"
                   " SELECT k, g FROM legacy.typed) d") == 0);
    CHECK(db.count("SELECT count(*) FROM pgxform.job_slice") >= 3);
  }
}

TEST_CASE("a skewed key splits into slices whose row counts differ by less than 20 percent") {
  TestDatabase db;
  // 90 % of the rows in the top 10 % of the key space (keys 1..100,000).
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.items SELECT g * 90, 1 FROM generate_series(1, 1000) g;"
      "INSERT INTO legacy.items SELECT 90000 + g, 1 FROM generate_series(1, 9000) g"
      " ON CONFLICT DO NOTHING;"
      "CREATE TABLE target.items (id bigint, v int);"
      "CREATE FUNCTION xf.items(a bigint, b bigint) RETURNS bigint LANGUAGE sql AS"
      " 'WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      " WHERE id BETWEEN a AND b RETURNING 1) SELECT count(*) FROM i'");
  SplitOnly items(db);
  // Three splits, each of the biggest slice: four slices of about a quarter each.
  for (int split = 0; split < 3; ++split) REQUIRE(items.split().slice);
  const long long rows = db.count("SELECT count(*) FROM legacy.items");
  const std::string per_slice =
      "SELECT count(*) FROM legacy.items i JOIN pgxform.job_slice s ON s.job = 'items' AND"
      " (s.lo_key IS NULL OR i.id > s.lo_key::bigint) AND"
      " (s.hi_key IS NULL OR i.id <= s.hi_key::bigint) GROUP BY s.slice";
  CHECK(db.count("SELECT count(*) FROM (" + per_slice + ") c") == 4);
  CHECK(db.count("SELECT min(count) FROM (" + per_slice + ") c") >= rows / 4 * 8 / 10);
  CHECK(db.count("SELECT max(count) FROM (" + per_slice + ") c") <= rows / 4 * 12 / 10);
  // Every row in exactly one slice.
  CHECK(db.count("SELECT sum(count) FROM (" + per_slice + ") c") == rows);
}

TEST_CASE(
    "a split leaves the donor its batch in flight and half of the rest, so that both parts end"
    " together") {
  TestDatabase db;
  create_items(db, 10000);  // keys 3, 6, ..., 30000: fewer than the estimate's threshold
  SplitOnly items(db);      // batches of 100, none run yet: the batch in flight is 100 rows
  REQUIRE(items.split().slice);
  // The donor keeps its 100 rows in flight and half of the 9,900 after them: 5,050 rows, up to
  // the 5,050th key (the median would be the 5,000th, 15000).
  CHECK(db.count("SELECT hi_key::bigint FROM pgxform.job_slice WHERE job = 'items' AND"
                 " slice = 0") == 5050 * 3);
  CHECK(db.count("SELECT lo_key::bigint FROM pgxform.job_slice WHERE job = 'items' AND"
                 " slice = 1") == 5050 * 3);
}

TEST_CASE("a slice is split from two batches' rows left, not one row fewer") {
  for (const int rows : {199, 200}) {
    INFO(rows << " rows");
    TestDatabase db;
    create_items(db, rows);
    SplitOnly items(db);  // batches of 100, none run yet
    const pgxform::SplitResult split = items.split();
    CHECK(split.slice.has_value() == (rows == 200));
    CHECK(split.too_small == (rows == 199));
    // 200: the donor keeps its batch of 100 in flight and half of the other 100.
    if (split.slice)
      CHECK(db.count("SELECT hi_key::bigint FROM pgxform.job_slice WHERE job = 'items' AND"
                     " slice = 0") == 150 * 3);
  }
}

TEST_CASE(
    "a large slice is split at the planner's estimated middle by one walk, not a count of"
    " every key left") {
  TestDatabase db;
  create_items(db, 300000);  // keys 3, 6, ..., 900000; analyzed
  SplitOnly items(db);
  pqxx::connection& conn = *items.conn;
  // The rows and index entries read, as the server counts them once the split's session
  // flushed: a count reads every row left, by the index or by a scan of the table.
  const std::string read =
      "SELECT i.idx_tup_read + t.seq_tup_read FROM pg_stat_user_indexes i"
      " JOIN pg_stat_user_tables t USING (relid) WHERE i.indexrelname = 'items_pkey'";
  pqxx::nontransaction(conn).exec("SELECT pg_catalog.pg_stat_force_next_flush()");
  const long long before = db.count(read);
  REQUIRE(items.split().slice);
  pqxx::nontransaction(conn).exec("SELECT pg_catalog.pg_stat_force_next_flush()");
  pqxx::nontransaction(conn).exec("SELECT 1");
  wait_until([&] { return db.count(read) > before; });
  // Half the keys (150,000) and the few the split reads itself; a count first reads 450,000.
  CHECK(db.count(read) - before < 200000);
  // Halves of equal rows past the 100 of the batch in flight, to the planner's estimate (within
  // 2 %).
  const long long lower = db.count(
      "SELECT count(*) FROM legacy.items WHERE id <= (SELECT hi_key::bigint FROM"
      " pgxform.job_slice WHERE job = 'items' AND slice = 0)");
  CHECK(lower > 147000);
  CHECK(lower < 153000);
}

TEST_CASE("list order and after: hold while a job with parallel: auto is split", "[threads]") {
  TestDatabase db;
  create_items(db, 4000, 20);
  db.exec(
      "CREATE TABLE target.log (job text, at timestamptz DEFAULT clock_timestamp());"
      "CREATE TABLE legacy.small (id int PRIMARY KEY); INSERT INTO legacy.small"
      " SELECT generate_series(1, 50);"
      "CREATE FUNCTION xf.next(a int, b int) RETURNS void LANGUAGE sql AS"
      " 'INSERT INTO target.log (job) VALUES (''next'')';"
      "CREATE FUNCTION xf.later(a int, b int) RETURNS void LANGUAGE sql AS"
      " 'INSERT INTO target.log (job) VALUES (''later'')'");
  TempDir dir;
  const auto path = dir.write(
      "jobs.yaml",
      "version: 1\nlists:\n"
      "  - name: main\n    jobs:\n"
      "      - {name: items, table: legacy.items, key: id, function: xf.items, batch_size: 40,"
      " target_batch_ms: 0, parallel: auto}\n"
      "      - {name: next, table: legacy.small, key: id, function: xf.next, batch_size: 10,"
      " target_batch_ms: 0}\n"
      "  - name: after_main\n    after: [main]\n    jobs:\n"
      "      - {name: later, table: legacy.small, key: id, function: xf.later, batch_size: 10,"
      " target_batch_ms: 0}\n");
  const CliResult r = run_cli(with_db(db, path, {"run", "-q", "--threads", "4"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  check_exactly_once(db);
  CHECK(slices(db) >= 3);
  // Neither the next job of the list nor the list after it started before items was done.
  CHECK(db.count("SELECT count(*) FROM target.log l, pgxform.job_state j WHERE j.job = 'items'"
                 " AND l.at < j.finished_at") == 0);
  CHECK(db.count("SELECT count(*) FROM target.log") == 10);
}

TEST_CASE("parallel: auto on a step, or on a job whose key has no index, is refused with exit 2") {
  TestDatabase db;
  create_items(db, 100);
  TempDir dir;
  const CliResult step = expect_run_refused(db, dir,
                                            "version: 1\nlists:\n  - name: main\n    jobs:\n"
                                            "      - {name: s, sql: 'SELECT 1', parallel: auto}\n");
  CHECK_THAT(step.err, Catch::Contains("'parallel' does not apply to the one-shot step"));
  db.exec("CREATE TABLE legacy.heap (id bigint, v int); INSERT INTO legacy.heap SELECT 3, 1");
  const CliResult heap =
      expect_run_refused(db, dir,
                         "version: 1\nlists:\n  - name: main\n    jobs:\n"
                         "      - {name: items, table: legacy.heap, key: id, function: xf.items,"
                         " parallel: auto}\n");
  CHECK_THAT(heap.err, Catch::Contains("parallel: auto needs a btree index whose first column is "
                                       "the key id of legacy.heap"));
  const CliResult defaults = expect_run_refused(
      db, dir,
      "version: 1\ndefaults: {parallel: 3}\nlists:\n  - name: main\n    jobs:\n"
      "      - {name: items, table: legacy.items, key: id, function: xf.items}\n");
  CHECK_THAT(defaults.err, Catch::Contains("defaults.parallel must be auto or 1"));
}

TEST_CASE(
    "a started job goes on under parallel: auto from its cursor and cannot go back to fewer "
    "slices") {
  TestDatabase db;
  create_items(db, 3000, 20);
  TempDir dir;
  const auto one = dir.write("one.yaml", items_jobs_yaml(50));
  // A run of parallel: 1 killed after a few batches.
  {
    Child child(run_args(db, one, 1), dir.path());
    while (batches_committed(db) < 3) {
      int code = -1;
      REQUIRE_FALSE(child.wait_for(10, code));
    }
    child.kill(SIGKILL);
    child.wait();
  }
  const std::string cursor = db.scalar("SELECT last_key FROM pgxform.job_state");
  const auto automatic = dir.write("auto.yaml", auto_items_yaml(50));
  const CliResult r = run_cli(run_args(db, automatic, 3));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  check_exactly_once(db);
  CHECK(slices(db) >= 2);
  // Slice 0 went on from the job's cursor: its first batch of this run starts after it.
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log WHERE first_key::bigint <= " + cursor +
                 " AND slice <> 0") == 0);
  // Back to one slice: refused, with the reason, before any work.
  const CliResult back = run_cli(run_args(db, one, 1));
  CHECK(back.exit_code == 2);
  CHECK_THAT(back.err, Catch::Contains("parallel changed from") &&
                           Catch::Contains("(parallel: auto keeps its slices too)"));
  // To the number of slices recorded: accepted, the slices stay.
  const long long recorded = slices(db);
  const CliResult same =
      run_cli(run_args(db, dir.write("same.yaml", items_jobs_yaml(50, int(recorded))), 2));
  INFO(same.err);
  CHECK(same.exit_code == 0);
  CHECK(slices(db) == recorded);
}

TEST_CASE(
    "a worker of a job with parallel: auto whose connection is terminated while it runs a split "
    "slice or splits one reconnects and goes on: the run ends 0 with every key once",
    "[threads]") {
  TestDatabase db;
  create_items(db, 3000, 20);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", auto_items_yaml(50));
  Child child(run_args(db, path, 2), dir.path());
  // The worker that runs slice 1, split off slice 0, loses its connection between or in its
  // batches.
  wait_until(
      [&] { return db.count("SELECT count(*) FROM pgxform.batch_log WHERE slice = 1") >= 2; });
  const long long holder = slice_holder(db, 1);
  REQUIRE(holder > 0);
  db.exec("SELECT pg_terminate_backend(" + std::to_string(holder) + ")");
  // Slice 0's row held here: its worker waits at its next batch, so that the other one, its
  // slice done, waits in its split of slice 0 for the row. It loses its connection there.
  auto conn = pgxform::connect(db.dsn());
  pqxx::work hold(*conn);
  hold.exec("SELECT 1 FROM pgxform.job_slice WHERE job = 'items' AND slice = 0 FOR NO KEY UPDATE");
  long long terminated = 0;
  wait_until([&] { return (terminated += terminate_splits(db)) > 0; });
  hold.commit();
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  CHECK(terminated == 1);
  check_exactly_once(db);
  CHECK(slices(db) >= 2);
}

TEST_CASE(
    "two runners started at once on a job with parallel: auto that a command holds at first "
    "split nothing and run nothing until it lets go, never mark the job done with a slice left, "
    "and process every key once",
    "[threads]") {
  std::mt19937 rng(Catch::rngSeed());
  for (int round = 0; round < 3; ++round) {
    const int threads = 2 + round % 2;
    const int batch = std::uniform_int_distribution<int>(30, 60)(rng);
    INFO("round " << round << ": --threads " << threads << ", batches of " << batch);
    TestDatabase db;
    create_items(db, 4000, 10);
    TempDir dir;
    const auto path = dir.write("jobs.yaml", auto_items_yaml(batch));
    auto conn = pgxform::connect(db.dsn());
    // A command (reset, retry-failed, verify --repair) holds the job as the runners start.
    auto claim =
        std::make_unique<pgxform::JobClaim>(*conn, pgxform::StateSchema("pgxform"), "items", 1);
    Child a(run_args(db, path, threads), dir.path());
    Child b(run_args(db, path, threads), dir.path());
    wait_until([&] { return slices(db) == 1; });
    // The runners find slice 0 held: they may not split it (the command counted one slice), so
    // no batch runs while the command holds the job.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(batches_committed(db) == 0);
    CHECK(slices(db) == 1);
    claim.reset();
    // Never done while a slice is not: sampled, each in one snapshot, until both runners end.
    long long done_early = 0;
    int code_a = -1, code_b = -1;
    bool a_done = false, b_done = false;
    while (!a_done || !b_done) {
      done_early += db.count(
          "SELECT count(*) FROM pgxform.job_state j WHERE j.status = 'done' AND EXISTS"
          " (SELECT 1 FROM pgxform.job_slice s WHERE s.job = j.job AND s.status <> 'done')");
      if (!a_done) a_done = a.wait_for(10, code_a);
      if (!b_done) b_done = b.wait_for(10, code_b);
    }
    INFO(a.err() + "\n---\n" + b.err());
    CHECK(code_a == 0);
    CHECK(code_b == 0);
    CHECK(done_early == 0);
    check_exactly_once(db);
    // No two batches took the same key.
    CHECK(db.count("SELECT count(*) FROM pgxform.batch_log x JOIN pgxform.batch_log y ON"
                   " x.batch_no < y.batch_no AND x.first_key::bigint <= y.last_key::bigint AND"
                   " y.first_key::bigint <= x.last_key::bigint") == 0);
    CHECK(slices(db) >= 2);
  }
}
