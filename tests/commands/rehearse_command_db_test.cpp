// rehearse against a real PostgreSQL: it changes no data, before a run and after one, and sends
// nothing to a logical replication slot; it projects a job's duration within a factor of 2 of
// the real run; it counts the foreign-key checks it skips and adds their cost; --json.
#include <catch2/catch.hpp>
#include <sstream>

#include "commands/rehearse_command.h"
#include "support/fixtures.h"
#include "support/planted.h"
#include "support/prerequisite.h"
#include "support/test_db.h"
#include "support/test_json.h"

using namespace pgxform_test;

TEST_CASE("rehearse changes no data, before a run and after one") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  pgxform::RehearseOptions o;
  o.file = path;
  o.dsn = db.dsn();
  o.samples = 3;

  std::string before = planted_snapshot(db);
  std::ostringstream out;
  REQUIRE(pgxform::rehearse_command(o, out) == 0);
  INFO(out.str());
  CHECK(planted_snapshot(db) == before);
  CHECK_FALSE(db.schema_exists("pgxform"));
  CHECK(out.str().find("whole run on 4 threads:") != std::string::npos);

  run_planted(db, path);
  before = planted_snapshot(db);
  std::ostringstream again;
  REQUIRE(pgxform::rehearse_command(o, again) == 0);
  CHECK(planted_snapshot(db) == before);

  o.jobs = {"nope"};
  CHECK_THROWS_AS(pgxform::rehearse_command(o, again), pgxform::PreflightError);
}

TEST_CASE("rehearse projects a job's duration within a factor of 2 of the real run", "[timing]") {
  TestDatabase db;
  create_items(db, 200000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(5000));
  pgxform::RehearseOptions o;
  o.file = path;
  o.dsn = db.dsn();
  const pgxform::Rehearsal rehearsal = pgxform::rehearse(o);
  REQUIRE(rehearsal.jobs.size() == 1);
  const pgxform::JobRehearsal& job = rehearsal.jobs.front();
  CHECK(job.error.empty());
  CHECK(job.samples.size() == 3);
  CHECK(job.rows == 200000);
  CHECK_FALSE(job.growing());
  CHECK(rehearsal.run.seconds == Approx(job.projected_ms / 1000));
  CHECK(db.count("SELECT count(*) FROM target.items") == 0);

  REQUIRE(run_cli({"run", "-f", path, "--dsn", db.dsn()}).exit_code == 0);
  const double real = std::stod(
      db.scalar("SELECT extract(epoch FROM finished_at - started_at) FROM pgxform.job_state"
                " WHERE job = 'items'"));
  const double projected = job.projected_ms / 1000;
  WARN("rehearse projected " << projected << " s, the run took " << real << " s; commit "
                             << rehearsal.commit_ms.value_or(-1) << " ms; ms per 1000 rows "
                             << job.samples[0].ms_per_row * 1000 << " "
                             << job.samples[1].ms_per_row * 1000 << " "
                             << job.samples[2].ms_per_row * 1000 << "; batch_log sum "
                             << db.scalar("SELECT sum(duration_ms) FROM pgxform.batch_log"));
  CHECK(projected > real / 2);
  CHECK(projected < real * 2);
}

TEST_CASE("rehearse counts the foreign-key checks it skips and adds their cost") {
  TestDatabase db;
  // As in the sample migration: `children` references rows that `parents`, in a list before
  // it, writes, so at rehearsal time every child row fails its foreign key. Each child row is
  // one check; the copy beside it, into a table without foreign keys, is none.
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;"
      "CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int NOT NULL);"
      "INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, 6000) g;"
      "CREATE TABLE target.parents (id bigint PRIMARY KEY);"
      "CREATE TABLE target.children (id bigint NOT NULL, parent bigint NOT NULL"
      " REFERENCES target.parents);"
      "CREATE TABLE target.copies (id bigint NOT NULL);"
      "CREATE FUNCTION xf.parents(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$ WITH ins AS (INSERT INTO target.parents SELECT id FROM legacy.items"
      " WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM ins $$;"
      "CREATE FUNCTION xf.children(first_key bigint, last_key bigint) RETURNS bigint"
      " LANGUAGE sql AS $$"
      "  INSERT INTO target.copies SELECT id FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key;"
      "  WITH ins AS (INSERT INTO target.children SELECT id, id FROM legacy.items"
      "   WHERE id BETWEEN first_key AND last_key RETURNING 1) SELECT count(*) FROM ins $$;"
      "ANALYZE legacy.items;");
  TempDir dir;
  const auto path =
      dir.write("jobs.yaml",
                "version: 1\nlists:\n"
                "  - name: parents\n    jobs:\n"
                "      - {name: parents, table: legacy.items, key: id, function: xf.parents,"
                " batch_size: 500, target_batch_ms: 0}\n"
                "  - name: children\n    after: [parents]\n    jobs:\n"
                "      - {name: children, table: legacy.items, key: id, function: xf.children,"
                " batch_size: 500, target_batch_ms: 0}\n");
  const auto counts = [&db] {
    return db.scalar(
        "SELECT (SELECT count(*) FROM target.parents) || '/' || (SELECT count(*) FROM"
        " target.children) || '/' || (SELECT count(*) FROM target.copies)");
  };
  pgxform::RehearseOptions o;
  o.file = path;
  o.dsn = db.dsn();
  const pgxform::Rehearsal rehearsal = pgxform::rehearse(o);
  CHECK(counts() == "0/0/0");
  CHECK_FALSE(db.schema_exists("pgxform"));
  REQUIRE(rehearsal.jobs.size() == 2);

  const pgxform::JobRehearsal& parents = rehearsal.jobs[0];
  CHECK(parents.error.empty());
  CHECK_FALSE(parents.foreign_keys_unchecked);
  CHECK_FALSE(parents.fk_checks_per_row);
  CHECK(parents.projected_fk_ms == 0);

  const pgxform::JobRehearsal& children = rehearsal.jobs[1];
  INFO(children.error);
  REQUIRE(children.error.empty());
  CHECK(children.foreign_keys_unchecked);
  REQUIRE(children.samples.size() == 3);
  // Counted, not timed: one check per child row, none for the copies.
  for (const auto& s : children.samples) CHECK(s.fk_checks == s.rows);
  REQUIRE(children.fk_checks_per_row);
  CHECK(*children.fk_checks_per_row == 1.0);
  // Calibrated once, and the job's projection holds every row's check at that cost, on top of
  // what the samples measured and one COMMIT per batch.
  REQUIRE(rehearsal.fk_check_ms);
  CHECK(*rehearsal.fk_check_ms > 0);
  CHECK(children.projected_fk_ms == Approx(children.rows * *rehearsal.fk_check_ms));
  CHECK(children.projected_ms >
        children.projected_fk_ms + children.batches * rehearsal.commit_ms.value_or(0));
  WARN("a foreign-key check costs " << *rehearsal.fk_check_ms * 1000
                                    << " µs: " << children.projected_fk_ms << " of the "
                                    << children.projected_ms << " ms projected for children");

  std::ostringstream out;
  REQUIRE(pgxform::rehearse_command(o, out) == 0);
  INFO(out.str());
  CHECK(out.str().find("The checks' cost was estimated, 1.00 checks per row at ") !=
        std::string::npos);
  CHECK(counts() == "0/0/0");
}

TEST_CASE("rehearse --json prints the projections as one object and changes no data") {
  TestDatabase db;
  create_planted(db);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", planted_yaml());
  const std::string before = planted_snapshot(db);
  const auto r = run_cli({"rehearse", "-f", path, "--dsn", db.dsn(), "--json"});
  INFO(r.err);
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(planted_snapshot(db) == before);
  CHECK_FALSE(db.schema_exists("pgxform"));

  // PostgreSQL parses it: a jsonb cast fails on anything that is not one valid JSON value.
  const auto field = [&db, &r](const std::string& expression) {
    return db.scalar("SELECT " + expression + " FROM (SELECT $json$" + r.out +
                     "$json$::jsonb AS j) x");
  };
  CHECK(field("jsonb_typeof(j)") == "object");
  CHECK(field("j->>'threads'") == "4");
  CHECK(field("jsonb_typeof(j->'fk_check_ms')") == "null");
  CHECK(field("jsonb_array_length(j->'jobs')") == "2");
  CHECK(field("j->'jobs'->0->>'job'") == "quadratic");
  CHECK(field("j->'jobs'->1->>'job'") == "linear");
  const double quadratic = std::stod(field("j->'jobs'->0->>'projected_seconds'"));
  const double linear = std::stod(field("j->'jobs'->1->>'projected_seconds'"));
  CHECK(quadratic > 0);
  CHECK(linear > 0);
  // Two independent lists on 4 threads: side by side, so the run takes the longer of the two.
  CHECK(std::stod(field("j->>'seconds'")) == Approx(std::max(quadratic, linear)).margin(0.002));
  CHECK(field("j->'jobs'->0->>'rows'") == std::to_string(k_planted_rows));
  CHECK(field("jsonb_array_length(j->'jobs'->0->'samples')") == "3");
  CHECK(field("jsonb_typeof(j->'jobs'->0->'samples'->0->'after')") == "null");
  CHECK(field("jsonb_typeof(j->'jobs'->0->'samples'->1->'after')") == "string");
  CHECK(field("j->'jobs'->0->>'foreign_keys_unchecked'") == "false");
  CHECK(field("jsonb_typeof(j->'jobs'->0->'fk_checks_per_row')") == "null");
  CHECK(field("jsonb_typeof(j->'jobs'->0->'error')") == "null");
  // Which of the two, a timing says: only its type is the format's.
  CHECK(field("jsonb_typeof(j->'jobs'->1->'trend')") == "string");
  CHECK(field("jsonb_array_length(j->'lists')") == "2");
}

TEST_CASE("rehearse sends nothing to a logical replication slot") {
  TestDatabase db;
  if (!prerequisite(db.scalar("SHOW wal_level") == "logical",
                    "this server runs with wal_level " + db.scalar("SHOW wal_level") +
                        ", a logical replication slot needs logical"))
    return;
  create_items(db, 4000);
  TempDir dir;
  const auto path = dir.write("jobs.yaml", items_jobs_yaml(500));
  const std::string slot = db.name() + "_slot";
  db.exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'test_decoding')");
  const auto r = run_cli(with_db(db, path, {"rehearse"}));
  const std::string changes =
      db.scalar("SELECT count(*) FROM pg_logical_slot_get_changes('" + slot +
                "', NULL, NULL, 'skip-empty-xacts', '0', 'include-xids', '1')");
  db.exec("SELECT pg_drop_replication_slot('" + slot + "')");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(changes == "0");
}
