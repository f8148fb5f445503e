// One task from its claim to its release, against a real PostgreSQL and real runner processes:
// a step runs once; two runners share the work through the tasks' claims, and a runner that
// waits for a task another holds says so once, naming the holder; the session's
// synchronous_commit; and the reconnect policy through PostgreSQL restarted for real in the
// middle of a run, with -m fast and -m immediate (tagged [restart]: these restart the server
// every other test uses, so ctest runs them alone, RUN_SERIAL, and only on a throwaway server).
//
// The property of the one engine (task_runner.h) that run and catch-up share: every captured
// change is applied once, by the main pass or by a refresh, in any order of run, catch-up,
// catch-up --follow, capture, reset, SIGKILL and restart (docs/catch-up.md).
//
// A seeded sequence drives a real PostgreSQL: the Shop (fixtures.h: orders, and lines that read
// their order's status through changes.also, in two lists side by side) under a writer that
// changes the source all along (statuses, quantities, lines moved between orders, new keys
// above every cursor, keys put back into gaps below them, deletions, a line's key changed),
// while steps chosen by the seed start `run`, `catch-up` and `catch-up --follow` as real child
// processes, alone or together, and end them by SIGKILL, SIGINT or their own end at random
// moments, reset a job (its target emptied first, as docs/state-tables.md asks), or install the
// capture again. After the sequence the writer stops, a run and a catch-up drain everything, and
// then the targets must equal a from-scratch transform of the final source row by row (EXCEPT
// ALL both ways), with no key refreshed more often than its changes were recorded.
//
// The lines job has two fixed slices or `parallel: auto` (issue 28), as the seed says (or
// PGXFORM_PROPERTY_SLICING): with auto, the runs' idle workers split its slices while the steps
// kill and reset them.
//
// The variant of issue 24 runs the same sequences with the jobs captured by `changes: logical`
// (the slot read into the same log by run and catch-up), or by the triggers, as the seed says,
// and one more step: the capture switched to the other method (the new one installed, the old
// one read and removed), so that a change is applied once whichever way it reached the log.
//
// CI runs PGXFORM_PROPERTY_SEEDS sequences (default 3) from Catch's --rng-seed (or
// PGXFORM_PROPERTY_SEED); scripts/property_test runs hundreds, one process per seed.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;

namespace {

void run_through_restart(const std::string& mode, const std::string& settings = "") {
  TestDatabase db;
  create_items(db, 3000, 40);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 1, settings));
  Child child({"run", "-f", path, "--dsn", db.dsn(), "--threads", "2"}, dir.path());
  for (int i = 0; i < 3000; ++i) {
    try {
      if (db.count("SELECT batches_done FROM pgxform.job_state") >= 5) break;
    } catch (const std::exception&) {
      // The state schema does not exist yet.
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  TestServer(db).restart(mode);
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  CHECK_THAT(child.err(), Catch::Contains("retrying") || Catch::Contains("trying again"));
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.scalar("SELECT status || ' ' || rows_done FROM pgxform.job_state") == "done 3000");
}

}  // namespace

TEST_CASE("a PostgreSQL restart with -m fast mid-run costs a pause, not the run", "[restart]") {
  run_through_restart("fast");
}

TEST_CASE(
    "a PostgreSQL restart with -m immediate (crash recovery) mid-run costs a pause, not the "
    "run",
    "[restart]") {
  run_through_restart("immediate");
}

TEST_CASE(
    "with synchronous_commit: off, a PostgreSQL restart with -m immediate mid-run loses no row "
    "and applies none twice",
    "[restart]") {
  // A crash may lose the last batches' COMMITs that were not flushed yet: their writes and
  // their cursor's move together, so the run does them again, once.
  run_through_restart("immediate", "        synchronous_commit: off\n");
}

TEST_CASE("a one-shot step runs once and only once") {
  TestDatabase db;
  create_items(db, 10);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_and_counting_step_yaml(db));
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  REQUIRE(run_with_db(db, path, {"run"}).exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM target.step_runs") == 1);
  CHECK(db.scalar("SELECT status FROM pgxform.job_state WHERE job = 'count-step'") == "done");
}

TEST_CASE(
    "two runners started at the same moment share the work and apply every row exactly "
    "once",
    "[threads]") {
  TestDatabase db;
  create_two_lists(db, 4000, 2);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", two_lists_yaml(3));
  Child first(two_lists_run_args(db, path), dir.path());
  Child second(two_lists_run_args(db, path), dir.path());
  const int a = first.wait();
  const int b = second.wait();
  INFO(first.err() << second.err());
  CHECK(a == 0);
  CHECK(b == 0);
  check_two_lists_done_once(db, 4000);
  const long long batches = db.count("SELECT count(*) FROM pgxform.batch_log");
  Child third(two_lists_run_args(db, path), dir.path());
  CHECK(third.wait() == 0);
  CHECK(db.count("SELECT count(*) FROM pgxform.batch_log") == batches);
  check_two_lists_done_once(db, 4000);
}

TEST_CASE("a second runner says once per task that another runner holds it, however long it waits",
          "[threads]") {
  TestDatabase db;
  create_items(db, 800, 250);  // two slices of eight batches of 50 keys, 250 ms each
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 2));
  Child first(with_db(db, path, {"run", "-q", "--threads", "2"}), dir.path());
  // Both slices claimed: each has committed a batch, and has seven more to go.
  wait_until([&] {
    return db.count(
               "SELECT count(*) FROM pgxform.job_slice WHERE status = 'running' AND "
               "batches_done > 0") == 2;
  });
  // Paused, the first runner keeps its claims for as long as the second needs to retry a few
  // times, however slowly it starts (under TSan, on a loaded machine).
  REQUIRE(run_cli(with_db(db, path, {"pause", "items"})).exit_code == 0);
  Child second(with_db(db, path, {"run", "-v", "--threads", "2"}), dir.path());
  wait_until([&] { return lines_with(second.err(), {"held by another runner"}) > 4; });
  REQUIRE(run_cli(with_db(db, path, {"resume", "items"})).exit_code == 0);
  CHECK(second.wait() == 0);
  CHECK(first.wait() == 0);
  const std::string err = second.err();
  INFO(err);
  // One info line per held slice, naming the runner that holds it; the retries at debug.
  const std::string holder = ":" + std::to_string(first.pid()) + "); trying again shortly";
  CHECK(lines_with(err, {" info ", "held by another runner"}) == 2);
  CHECK(lines_with(err, {" info ", "items is held by another runner (", holder}) == 1);
  CHECK(lines_with(err, {" info ", "items#1 is held by another runner (", holder}) == 1);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
}

TEST_CASE(
    "batches commit with synchronous_commit off unless the job says on, and the done mark waits "
    "for the flush") {
  TestDatabase db;
  create_items(db, 100);
  db.exec("ALTER DATABASE " + db.name() + " SET synchronous_commit = remote_write");
  db.exec(
      "CREATE TABLE target.seen (setting text);"
      "CREATE OR REPLACE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ INSERT INTO target.seen"
      "  SELECT pg_catalog.current_setting('synchronous_commit');"
      "  WITH i AS (INSERT INTO target.items SELECT id, v * 10 FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM i $$");
  TempDir dir;
  const auto unset = dir.write("unset.yaml", items_jobs_yaml(50));
  // The state schema first, then a trigger that notes the setting of the transaction that
  // marks the job done.
  REQUIRE(run_cli(with_db(db, unset, {"migrate"})).exit_code == 0);
  db.exec(
      "CREATE TABLE target.marked (setting text);"
      "CREATE FUNCTION target.note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " INSERT INTO target.marked SELECT pg_catalog.current_setting('synchronous_commit');"
      " RETURN NEW; END $$;"
      "CREATE TRIGGER note AFTER UPDATE ON pgxform.job_state FOR EACH ROW"
      " WHEN (NEW.status = 'done' AND OLD.status <> 'done') EXECUTE FUNCTION target.note()");
  REQUIRE(run_cli(with_db(db, unset, {"run"})).exit_code == 0);
  CHECK(db.scalar("SELECT string_agg(DISTINCT setting, ',') FROM target.seen") == "off");
  // The done mark waits for the flush, as the database's setting says.
  CHECK(db.scalar("SELECT string_agg(setting, ',') FROM target.marked") == "remote_write");

  db.exec(
      "TRUNCATE target.items, target.seen, target.marked;"
      "UPDATE pgxform.job_state SET status = 'pending', last_key = NULL");
  const auto on = dir.write("on.yaml", items_jobs_yaml(50, 1, "        synchronous_commit: on\n"));
  REQUIRE(run_cli(with_db(db, on, {"run"})).exit_code == 0);
  CHECK(db.scalar("SELECT string_agg(DISTINCT setting, ',') FROM target.seen") == "on");

  // A database that commits with off: the done mark still flushes, locally.
  db.exec("ALTER DATABASE " + db.name() +
          " SET synchronous_commit = off; TRUNCATE target.items, target.seen, target.marked");
  REQUIRE(run_cli(with_db(db, unset, {"reset", "items"})).exit_code == 0);
  REQUIRE(run_cli(with_db(db, unset, {"run"})).exit_code == 0);
  CHECK(db.scalar("SELECT string_agg(setting, ',') FROM target.marked") == "local");
  CHECK(missing_items(db) == 0);
}

TEST_CASE("a second run says which runner holds the job it waits for", "[live][threads]") {
  TestDatabase db;
  create_items(db, 500, 20);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(100));
  REQUIRE(run_with_db(db, path, {"pause", "items"}).exit_code == 0);
  Child first({"run", "-f", path, "--dsn", db.dsn()}, dir.path());
  wait_until([&] { return first.err().find("items: paused") != std::string::npos; });
  const std::string holder = job_status_json(db, path, "items")["runner"];
  CHECK_THAT(holder, Catch::EndsWith(":" + std::to_string(first.pid())));
  // The job is held and paused: status says paused, and who holds it.
  CHECK(job_status_json(db, path, "items")["waiting"] == "paused");

  Child second({"run", "-f", path, "--dsn", db.dsn()}, dir.path(), progress_every(200));
  wait_until(
      [&] { return lines_with(second.err(), {"items: 0 rows in 0 batches this run"}) >= 2; });
  second.kill(SIGINT);
  CHECK(second.wait() == 3);
  INFO(second.err());
  CHECK(lines_with(second.err(), {"; held by " + holder}) >= 2);

  REQUIRE(run_with_db(db, path, {"resume", "items"}).exit_code == 0);
  CHECK(first.wait() == 0);
  CHECK(missing_items(db) == 0);
}

namespace {

long long env_or(const char* name, long long fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoll(value) : fallback;
}

// The source changing all along, at a pace of its own, until stop().
class Writer {
 public:
  Writer(Shop& shop, unsigned seed) : m_shop(shop) {
    m_thread = std::thread([this, seed] {
      pqxx::connection conn(m_shop.db.dsn());
      std::mt19937 rng(seed);
      std::uniform_int_distribution<int> pause(0, 15);
      while (m_writing) {
        try {
          m_shop.change(conn, rng);
        } catch (const pqxx::deadlock_detected&) {
          // A capture installed while the writer runs (a method switch, issue 24) takes its
          // tables' locks one by one, and a transaction writing two of them may be the one the
          // server aborts: as an application would, the writer goes on with its next change.
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(pause(rng)));
      }
    });
  }
  ~Writer() { stop(); }
  void stop() {
    m_writing = false;
    if (m_thread.joinable()) m_thread.join();
  }

 private:
  Shop& m_shop;
  std::atomic<bool> m_writing{true};
  std::thread m_thread;
};

// How a sequence's jobs capture: by the triggers only, or (issue 24) starting by the slot or
// the triggers and switching between them.
enum class Capturing { triggers, both };

// How the lines are cut: two fixed slices, or `parallel: auto` (split among idle workers).
enum class LinesSlicing { two, automatic };

// The Shop's jobs file with its jobs captured by `mode` (trigger or logical), its lines cut as
// `slicing` says.
std::string shop_yaml(const std::string& mode, LinesSlicing slicing) {
  std::string yaml = with_capture(Shop::yaml(30, 2), mode);
  if (slicing == LinesSlicing::automatic) {
    const std::string two = "parallel: 2\n";
    const auto at = yaml.find(two);
    REQUIRE(at != std::string::npos);
    yaml.replace(at, two.size(), "parallel: auto\n");
  }
  return yaml;
}

// One step of a sequence: pgxform commands as children, each ended at a random moment.
class Sequence {
 public:
  Sequence(Shop& shop, unsigned seed, Capturing capturing, std::string mode, LinesSlicing slicing)
      : m_shop(shop),
        m_rng(seed),
        m_capturing(capturing),
        m_mode(std::move(mode)),
        m_slicing(slicing) {}

  void step() {
    switch (pick(0, m_capturing == Capturing::both ? 7 : 6)) {
      case 0:
        children({{"run"}});
        break;
      case 1:
        children({{"catch-up"}});
        break;
      case 2:
        children({{"run"}, {"catch-up", "--follow"}});
        break;
      case 3:
        children({{"run", "--threads", "1"}, {"catch-up"}});
        break;
      case 4:
        reset(pick(0, 1) == 0 ? "orders" : "lines");
        break;
      case 5:
        reset_orders_to();
        break;
      case 6:
        REQUIRE(m_shop.pgxform({"capture"}).exit_code == 0);
        break;
      default:
        switch_capture();
    }
  }

 private:
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(m_rng); }

  // Starts the commands together; after a random while each is killed (SIGKILL), stopped
  // (SIGINT), or waited for.
  void children(const std::vector<std::vector<std::string>>& commands) {
    std::vector<std::unique_ptr<Child>> running;
    for (const auto& args : commands) {
      running.push_back(std::make_unique<Child>(m_shop.command(args), m_shop.dir.path()));
      log += args.front() + (args.size() > 1 ? " " + args[1] : "") + ", ";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(0, 2500)));
    for (std::size_t i = 0; i < running.size(); ++i) {
      Child* child = running[i].get();
      const bool follows = commands[i].size() > 1 && commands[i][1] == "--follow";
      // A catch-up --follow ends only on a signal.
      const int how = follows ? pick(0, 1) : pick(0, 2);
      if (how == 0) child->kill(SIGKILL);
      if (how == 1) child->kill(SIGINT);
      int code = 0;
      if (!child->wait_for(60000, code)) {
        child->kill(SIGKILL);
        code = child->wait();
      }
      log += std::to_string(code) + (how == 0 ? " killed; " : how == 1 ? " stopped; " : "; ");
      INFO("exit " << code << ": " << child->err());
      // A SIGINT before the command installed its handler ends it as the signal's default.
      CHECK((code == 0 || code == 3 || code == 128 + SIGKILL || code == 128 + SIGINT));
    }
  }

  // reset JOB, its target emptied first. A killed runner's claim may outlive it a moment.
  void reset(const std::string& job) {
    m_shop.db.exec(std::string("DELETE FROM target.") + (job == "orders" ? "orders" : "lines"));
    wait_until([&] { return m_shop.pgxform({"reset", job}).exit_code == 0; });
    log += "reset " + job + "; ";
  }

  // reset orders --to a key below its cursor, the target's rows after it deleted first.
  void reset_orders_to() {
    const std::string cursor =
        m_shop.db.scalar("SELECT last_key FROM pgxform.job_state WHERE job = 'orders'");
    if (cursor.empty()) return;
    const std::string key = std::to_string(std::stoll(cursor) * pick(0, 100) / 100);
    m_shop.db.exec("DELETE FROM target.orders WHERE id > " + key);
    wait_until([&] { return m_shop.pgxform({"reset", "orders", "--to", key}).exit_code == 0; });
    log += "reset orders --to " + key + "; ";
  }

  // The capture by the other method: installed first, the old one read and removed after.
  void switch_capture() {
    m_mode = m_mode == "logical" ? "trigger" : "logical";
    m_shop.path = m_shop.dir.write("jobs.yaml", shop_yaml(m_mode, m_slicing));
    const auto r = m_shop.pgxform({"capture"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    log += "capture by " + m_mode + "; ";
  }

  Shop& m_shop;
  std::mt19937 m_rng;
  Capturing m_capturing;
  std::string m_mode;
  LinesSlicing m_slicing;

 public:
  std::string log;  // what the sequence did, for a failure's message
};

// One seeded sequence and the checks after its full drain.
void sequence(unsigned seed, Capturing capturing) {
  const std::string mode = capturing == Capturing::both && seed % 2 == 0 ? "logical" : "trigger";
  // The lines in two slices, or in slices split while the runs' workers are idle: a key is at
  // or below its slice's cursor.
  // PGXFORM_PROPERTY_SLICING: seed (the default: the seed chooses), two or auto, to replay a
  // seed either way.
  const char* chosen = std::getenv("PGXFORM_PROPERTY_SLICING");
  const std::string how = chosen && *chosen ? chosen : "seed";
  const LinesSlicing slicing = how == "auto" || (how == "seed" && seed / 2 % 2 == 1)
                                   ? LinesSlicing::automatic
                                   : LinesSlicing::two;
  INFO("seed " << seed << ", changes: " << mode << ", lines in "
               << (slicing == LinesSlicing::two ? "parallel: 2" : "parallel: auto"));
  Shop shop(150, 4, 30, 15);
  shop.path = shop.dir.write("jobs.yaml", shop_yaml(mode, slicing));
  REQUIRE(shop.pgxform({"capture"}).exit_code == 0);
  shop.count_changes();
  Sequence steps(shop, seed, capturing, mode, slicing);
  {
    Writer writer(shop, seed + 1);
    for (int i = 0; i < 6; ++i) steps.step();
    writer.stop();
  }
  INFO("steps: " << steps.log);
  // The window: nothing writes any more, and a run and a catch-up finish what is left.
  const auto run = shop.pgxform({"run"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  const auto caught_up = shop.pgxform({"catch-up"});
  INFO(caught_up.err);
  REQUIRE(caught_up.exit_code == 0);
  CHECK(shop.pending() == 0);
  CHECK(shop.differences() == 0);
  CHECK(shop.refreshed_too_often() == 0);
}

}  // namespace

TEST_CASE("every captured change is applied once in any order of run, catch-up, kills and resets",
          "[property][kill]") {
  const long long seeds = env_or("PGXFORM_PROPERTY_SEEDS", 3);
  const auto first = static_cast<unsigned>(env_or("PGXFORM_PROPERTY_SEED", Catch::rngSeed()));
  for (long long i = 0; i < seeds; ++i)
    sequence(first + static_cast<unsigned>(i) * 7919u, Capturing::triggers);
}

TEST_CASE(
    "every change captured through the slot or the triggers is applied once in any order of run, "
    "catch-up, kills, resets and method switches",
    "[property][kill][logical]") {
  const long long seeds = env_or("PGXFORM_PROPERTY_SEEDS", 3);
  const auto first = static_cast<unsigned>(env_or("PGXFORM_PROPERTY_SEED", Catch::rngSeed()));
  for (long long i = 0; i < seeds; ++i)
    sequence(first + static_cast<unsigned>(i) * 7919u, Capturing::both);
}

TEST_CASE("a PostgreSQL restart mid catch-up costs a pause: every change refreshed once",
          "[restart]") {
  // Catch-up's tasks reconnect and claim again as a run's do (task_runner.h): the log, read
  // again, says what committed.
  TestDatabase db;
  create_items(db, 3000, 0);
  db.exec(
      "CREATE TABLE target.refreshed (id bigint);"
      "CREATE FUNCTION xf.items_refresh(keys bigint[]) RETURNS void LANGUAGE plpgsql AS $$"
      " BEGIN PERFORM pg_sleep(0.04); INSERT INTO target.refreshed SELECT unnest(keys);"
      " DELETE FROM target.items t WHERE t.id = ANY (keys);"
      " INSERT INTO target.items SELECT id, v * 10 FROM legacy.items WHERE id = ANY (keys);"
      " END $$");
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(50, 1,
                                                           "        changes: trigger\n"
                                                           "        refresh_function: "
                                                           "xf.items_refresh\n"));
  REQUIRE(run_cli({"run", "-f", path, "--dsn", db.dsn()}).exit_code == 0);
  db.exec("UPDATE legacy.items SET v = v + 1");
  Child child({"catch-up", "-f", path, "--dsn", db.dsn()}, dir.path());
  for (int i = 0; i < 3000; ++i) {
    if (db.count("SELECT count(*) FROM pgxform.batch_log WHERE catch_up") >= 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  TestServer(db).restart("immediate");
  const int code = child.wait();
  INFO(child.err());
  CHECK(code == 0);
  CHECK_THAT(child.err(), Catch::Contains("reconnecting"));
  CHECK(db.count("SELECT count(*) FROM pgxform.change_log") == 0);
  CHECK(missing_items(db) == 0);
  CHECK(duplicate_items(db) == 0);
  CHECK(db.count("SELECT count(*) FROM target.refreshed") == 3000);
}
