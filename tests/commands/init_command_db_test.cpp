// pgxform init against a real PostgreSQL: the skeleton it writes for the sample legacy schema,
// and for a schema with foreign-key chains, a cycle, a self-reference, a table without a key,
// a composite key, text, uuid and timestamp keys and mixed-case names, validates, runs and
// copies every keyed table exactly; its lists keep the target's foreign keys satisfied; and
// bad input (a second init into the same directory, a missing or empty schema) exits 2
// having written nothing.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "base/sql_text.h"
#include "base/text_check.h"
#include "plan/jobs_file.h"
#include "support/fixtures.h"
#include "support/test_db.h"

using namespace pgxform_test;
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void append_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::app) << text;
}

CliResult init(TestDatabase& db, const std::string& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "init");
  args.insert(args.end(), {"--dir", dir, "--dsn", db.dsn()});
  return run_cli(args);
}

// `command` on the skeleton in `dir`.
CliResult on_skeleton(TestDatabase& db, const std::string& dir, const std::string& command) {
  return run_cli(with_db(db, dir + "/jobs.yaml", {command}));
}

// The copy of `source` in `target` is exact: the same rows, as many times each.
void check_copied(TestDatabase& db, const std::string& source, const std::string& target) {
  INFO(source << " -> " << target);
  const long long rows = db.count("SELECT count(*) FROM " + source);
  CHECK(rows > 0);
  CHECK(db.count("SELECT count(*) FROM " + target) == rows);
  CHECK(db.count("SELECT count(*) FROM (SELECT * FROM " + source + " EXCEPT ALL SELECT * FROM " +
                 target + ") d") == 0);
  CHECK(db.count("SELECT count(*) FROM (SELECT * FROM " + target + " EXCEPT ALL SELECT * FROM " +
                 source + ") d") == 0);
}

// The sample's legacy schema (sql/legacy_schema.sql) with its keys, as legacy_data.sql adds
// them, and a few hundred rows of the same shapes instead of a million.
void create_small_sample(TestDatabase& db) {
  db.exec(read_text(source_dir() + "/sql/legacy_schema.sql"));
  db.exec(
      "ALTER TABLE legacy.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);"
      "ALTER TABLE legacy.shop_orders ADD CONSTRAINT shop_orders_pkey PRIMARY KEY (id);"
      "ALTER TABLE legacy.order_lines ADD CONSTRAINT order_lines_pkey PRIMARY KEY (id);"
      "ALTER TABLE legacy.logistic_events ADD CONSTRAINT logistic_events_pkey"
      " PRIMARY KEY (event_id);"
      "CREATE INDEX order_lines_order_id_idx ON legacy.order_lines (order_id);"
      "INSERT INTO legacy.customers SELECT g * 3 - g % 3, 'MÜLLER, anna ' || g,"
      " CASE WHEN g % 5 = 0 THEN NULL ELSE ' Anna@Example.com ' END,"
      " (ARRAY['de', ' DE', 'uk', 'at '])[1 + g % 4], timestamp '2017-01-01' + g * interval '7 h',"
      " CASE WHEN g % 9 = 0 THEN 'Y' ELSE 'N' END FROM generate_series(1, 300) g;"
      "INSERT INTO legacy.shop_orders SELECT 1000000 + g * 2, (1 + g % 300) * 3 - (1 + g % 300) % "
      "3,"
      " timestamp '2018-01-01' + g * interval '1 h 13.5 s', (ARRAY['N','P','S','C','R'])[1 + g % "
      "5],"
      " 'eur', 'De' FROM generate_series(1, 600) g;"
      "INSERT INTO legacy.order_lines SELECT 5000000 + o * 4 + l, 1000000 + o * 2, l, ' sku-' || l,"
      " l, 1999, CASE WHEN l = 2 THEN 100 ELSE 0 END, CASE WHEN o % 3 = 0 THEN NULL ELSE 0.19 END"
      " FROM generate_series(1, 600) o, generate_series(1, 1 + o % 3) l;"
      "INSERT INTO legacy.logistic_events SELECT 9000000000 + g * 7, 1000000 + g * 2, 'SHIPPED',"
      " timestamp '2018-02-01' + g * interval '1 h',"
      " CASE WHEN g % 10 = 0 THEN '' WHEN g % 10 = 1 THEN NULL"
      " ELSE '{\"carrier\":\"dhl\"}' END FROM generate_series(1, 400) g;"
      "ANALYZE;");
}

// A statement of a script without the comment lines before it.
std::string without_comments(std::string statement) {
  while (statement.rfind("--", 0) == 0) statement.erase(0, statement.find('\n') + 1);
  return statement;
}

// legacy.items(id bigint PRIMARY KEY, v int), ten rows, and no transform yet.
void create_legacy_items(TestDatabase& db) {
  db.exec(
      "CREATE SCHEMA legacy; CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int);"
      "INSERT INTO legacy.items SELECT g, g FROM generate_series(1, 10) g;");
}

}  // namespace

TEST_CASE(
    "init on the sample legacy schema writes a skeleton that validates, runs and copies "
    "every table exactly") {
  TestDatabase db;
  create_small_sample(db);
  TempDir tmp;
  const std::string dir = tmp.path() + "/migration";
  const auto r = init(db, dir, {"--schema", "legacy"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith(
                        "schema legacy: 4 tables, 4 jobs in 4 lists, 0 tables without a "
                        "job\n  list customers_list: legacy.customers by id (bigint, primary "
                        "key), ~300 rows\n"));
  CHECK_THAT(r.out, Catch::Contains("wrote " + dir +
                                    "/sql/V1__legacy_new_schema.sql: schema "
                                    "legacy_new, 4 tables\n"));
  // init reads catalogs only.
  CHECK_FALSE(db.schema_exists("legacy_new"));
  CHECK_FALSE(db.schema_exists("pgxform"));

  const auto migrate = on_skeleton(db, dir, "migrate");
  INFO(migrate.err);
  REQUIRE(migrate.exit_code == 0);
  const auto validate = on_skeleton(db, dir, "validate");
  INFO(validate.out);
  CHECK(validate.exit_code == 0);
  CHECK_THAT(validate.out, Catch::EndsWith(dir + "/jobs.yaml: 4 jobs in 4 lists, 0 error(s), 0 "
                                                 "warning(s)\n"));
  const auto run = on_skeleton(db, dir, "run");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  for (const char* table : {"customers", "shop_orders", "order_lines", "logistic_events"})
    check_copied(db, std::string("legacy.") + table, std::string("legacy_new.") + table);
}

TEST_CASE(
    "init orders the lists by every foreign key and copies tables with text, uuid, "
    "timestamp, composite and mixed-case keys exactly") {
  TestDatabase db;
  db.exec(
      "CREATE SCHEMA \"Shop\";"
      "CREATE TABLE \"Shop\".\"Customers\" (\"Code\" text PRIMARY KEY, \"Full Name\" text NOT NULL,"
      " since date);"
      "CREATE TABLE \"Shop\".orders (id uuid PRIMARY KEY,"
      " \"Code\" text NOT NULL REFERENCES \"Shop\".\"Customers\", placed timestamp NOT NULL);"
      "CREATE TABLE \"Shop\".order_lines (order_id uuid REFERENCES \"Shop\".orders,"
      " line_no int, sku text, PRIMARY KEY (order_id, line_no));"
      "CREATE TABLE \"Shop\".shipments (at timestamp PRIMARY KEY,"
      " order_id uuid NOT NULL REFERENCES \"Shop\".orders, first_key text);"
      "CREATE TABLE \"Shop\".categories (id int PRIMARY KEY,"
      " parent_id int REFERENCES \"Shop\".categories);"
      "CREATE TABLE \"Shop\".a (id bigint PRIMARY KEY, b_id bigint);"
      "CREATE TABLE \"Shop\".b (id bigint PRIMARY KEY, a_id bigint REFERENCES \"Shop\".a);"
      "ALTER TABLE \"Shop\".a ADD FOREIGN KEY (b_id) REFERENCES \"Shop\".b;"
      "CREATE TABLE \"Shop\".audit (at timestamp, what text);"
      "INSERT INTO \"Shop\".\"Customers\" SELECT 'C' || lpad(g::text, 4, '0'), 'Name ' || g,"
      " date '2020-01-01' + g FROM generate_series(1, 120) g;"
      "INSERT INTO \"Shop\".orders SELECT md5('o' || g)::uuid, 'C' || lpad((1 + g % 120)::text,"
      " 4, '0'), timestamp '2021-01-01' + g * interval '37 min 13.25 s'"
      " FROM generate_series(1, 400) g;"
      "INSERT INTO \"Shop\".order_lines SELECT o.id, l, 'SKU-' || l FROM \"Shop\".orders o,"
      " generate_series(1, 1 + abs(hashtext(o.id::text)) % 3) l;"
      "INSERT INTO \"Shop\".shipments SELECT timestamp '2022-01-01' + g * interval '1 h 0.5 s',"
      " md5('o' || g)::uuid, 'k' || g FROM generate_series(1, 300) g;"
      "INSERT INTO \"Shop\".categories SELECT g, nullif(g / 2, 0) FROM generate_series(1, 90) g;"
      "INSERT INTO \"Shop\".a SELECT g, NULL FROM generate_series(1, 70) g;"
      "INSERT INTO \"Shop\".b SELECT g, g FROM generate_series(1, 70) g;"
      "UPDATE \"Shop\".a SET b_id = id;"
      "INSERT INTO \"Shop\".audit SELECT now(), 'x' FROM generate_series(1, 5);"
      "ANALYZE;");
  TempDir tmp;
  const std::string dir = tmp.path();
  const auto r = init(db, dir, {"--schema", "Shop"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("no job for audit: no primary key, unique index or btree "
                                    "index to page it by\n"));
  const std::string yaml = read_text(dir + "/jobs.yaml");
  CHECK_THAT(yaml, Catch::Contains("  # - name: audit\n"));

  // The lists order every foreign key, but the one that closes the cycle a <-> b, which its
  // comment names; a self-reference orders nothing.
  const pgxform::JobsFile file = pgxform::parse_jobs_file(dir + "/jobs.yaml");
  std::map<std::string, std::size_t> position;
  // Each list by its job's name (init names a list after its table, with _list).
  for (std::size_t i = 0; i < file.lists.size(); ++i) {
    CHECK(file.lists[i].name == file.lists[i].jobs.at(0).name + "_list");
    position[file.lists[i].jobs.at(0).name] = i;
  }
  REQUIRE(position.size() == 7);
  pqxx::connection conn(db.dsn());
  pqxx::read_transaction tx(conn);
  int dropped = 0;
  for (const auto& fk :
       tx.exec("SELECT c.relname, rc.relname FROM pg_constraint con"
               " JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class rc ON rc.oid = con.confrelid"
               " WHERE con.contype = 'f' AND c.relnamespace = '\"Shop\"'::regnamespace")) {
    const std::string from = fk[0].as<std::string>(), to = fk[1].as<std::string>();
    INFO(from << " -> " << to);
    if (from == to) continue;
    const auto& after = file.lists[position.at(from)].after;
    if (std::find(after.begin(), after.end(), to + "_list") == after.end()) {
      ++dropped;
      CHECK(from + to == "ab");  // the cycle is broken at its first table by name
      CHECK_THAT(yaml,
                 Catch::Contains(
                     "# a references b (a_b_id_fkey), which leads back to it through a cycle"));
      continue;
    }
    CHECK(position.at(to) < position.at(from));
  }
  CHECK(dropped == 1);

  // The target keeps the foreign keys of the chain Customers <- orders <- order_lines and
  // shipments: with small batches on four threads, a list that started before the lists it
  // references were done would fail on them.
  const std::string v1 = dir + "/sql/V1__Shop_new_schema.sql";
  append_text(v1,
              "ALTER TABLE \"Shop_new\".orders ADD FOREIGN KEY (\"Code\")"
              " REFERENCES \"Shop_new\".\"Customers\";\n"
              "ALTER TABLE \"Shop_new\".order_lines ADD FOREIGN KEY (order_id)"
              " REFERENCES \"Shop_new\".orders;\n"
              "ALTER TABLE \"Shop_new\".shipments ADD FOREIGN KEY (order_id)"
              " REFERENCES \"Shop_new\".orders;\n");
  std::string small = yaml;
  const std::string defaults = "defaults: {batch_size: 10000, threads: 4}";
  REQUIRE(small.find(defaults) != std::string::npos);
  small.replace(small.find(defaults), defaults.size(),
                "defaults: {batch_size: 25, target_batch_ms: 0, threads: 4}");
  std::ofstream(dir + "/jobs.yaml") << small;

  REQUIRE(on_skeleton(db, dir, "migrate").exit_code == 0);
  const auto validate = on_skeleton(db, dir, "validate");
  INFO(validate.out);
  CHECK(validate.exit_code == 0);
  const auto run = on_skeleton(db, dir, "run");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  for (const char* table :
       {"\"Customers\"", "orders", "order_lines", "shipments", "categories", "a", "b"})
    check_copied(db, std::string("\"Shop\".") + table, std::string("\"Shop_new\".") + table);
  // More than one batch each: the keys' text form round-tripped through the cursor.
  CHECK(db.count("SELECT min(batches_done) FROM pgxform.job_state") > 1);
  CHECK(db.count("SELECT count(*) FROM \"Shop_new\".audit") == 0);
}

TEST_CASE("a second init into the same directory exits 2 and writes nothing") {
  TestDatabase db;
  create_legacy_items(db);
  TempDir tmp;
  const std::string dir = tmp.path();
  REQUIRE(init(db, dir, {"--schema", "legacy"}).exit_code == 0);
  // The DBA edits jobs.yaml and removes the R script: a second init must touch neither.
  append_text(dir + "/jobs.yaml", "# edited\n");
  const std::string edited = read_text(dir + "/jobs.yaml");
  fs::remove(dir + "/sql/R__transforms.sql");

  const auto again = init(db, dir, {"--schema", "legacy"});
  CHECK(again.exit_code == 2);
  CHECK(again.err == "pgxform: " + dir + "/jobs.yaml exists already\npgxform: " + dir +
                         "/sql/V1__legacy_new_schema.sql exists already\npgxform: nothing was "
                         "written; pgxform init never overwrites a file: choose another --dir\n");
  CHECK(read_text(dir + "/jobs.yaml") == edited);
  CHECK_FALSE(fs::exists(dir + "/sql/R__transforms.sql"));

  // Another target: other file names, but a second V1 script would collide with the first.
  fs::remove(dir + "/jobs.yaml");
  const auto other = init(db, dir, {"--schema", "legacy", "--target-schema", "other"});
  CHECK(other.exit_code == 2);
  CHECK_THAT(other.err, Catch::Contains("V1__legacy_new_schema.sql exists already, and the V1 "
                                        "script init writes would have its version"));
  CHECK_FALSE(fs::exists(dir + "/jobs.yaml"));
  CHECK_FALSE(fs::exists(dir + "/sql/V1__other_schema.sql"));
}

TEST_CASE("init of a schema that does not exist, or holds no table, exits 2 and writes nothing") {
  TestDatabase db;
  create_legacy_items(db);
  db.exec("CREATE SCHEMA target; CREATE SCHEMA empty; CREATE VIEW empty.v AS SELECT 1 AS one;");
  TempDir tmp;
  const std::string dir = tmp.path() + "/migration";

  const auto missing = init(db, dir, {"--schema", "legasy"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err ==
        "pgxform: schema 'legasy' does not exist; did you mean 'legacy'?\n"
        "pgxform: nothing was written\n");
  CHECK_FALSE(fs::exists(dir));

  const auto empty = init(db, dir, {"--schema", "empty"});
  CHECK(empty.exit_code == 2);
  CHECK_THAT(empty.err, Catch::Contains("schema 'empty' holds no tables"));
  CHECK_FALSE(fs::exists(dir));

  // A target schema that exists: its V1 script would fail.
  const auto exists = init(db, dir, {"--schema", "legacy", "--target-schema", "target"});
  CHECK(exists.exit_code == 2);
  CHECK_THAT(exists.err, Catch::Contains("the target schema 'target' exists already"));
  CHECK_FALSE(fs::exists(dir));

  // A folder that cannot be created: below a file.
  const std::string file = tmp.write("file", "not a folder\n");
  const auto below_file = init(db, file + "/migration", {"--schema", "legacy"});
  CHECK(below_file.exit_code == 2);
  CHECK_THAT(below_file.err,
             Catch::Contains("pgxform: cannot create " + file + "/migration/sql: "));
  CHECK(read_text(file) == "not a folder\n");
  CHECK_FALSE(db.schema_exists("pgxform"));
}

TEST_CASE(
    "a key column's type named with a line break and a DROP TABLE stays in its comments: the "
    "files parse, migrate drops nothing and the run copies the table") {
  TestDatabase db;
  db.exec(
      "CREATE SCHEMA legacy; CREATE SCHEMA other; CREATE TABLE other.victim (a int);"
      "INSERT INTO other.victim VALUES (1);"
      "CREATE DOMAIN legacy.\"d\nDROP TABLE other.victim CASCADE; --\" AS int;"
      "CREATE TABLE legacy.t (id legacy.\"d\nDROP TABLE other.victim CASCADE; --\" PRIMARY KEY,"
      " v text);"
      "INSERT INTO legacy.t SELECT g, 'v' || g FROM generate_series(1, 20) g;");
  TempDir tmp;
  const std::string dir = tmp.path() + "/m";
  const auto r = init(db, dir, {"--schema", "legacy"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("\nDROP") == std::string::npos);
  const std::string yaml = read_text(dir + "/jobs.yaml");
  INFO(yaml);
  CHECK(yaml.find("\nDROP") == std::string::npos);
  CHECK_NOTHROW(pgxform::parse_jobs_file(dir + "/jobs.yaml"));
  for (const char* script : {"/sql/V1__legacy_new_schema.sql", "/sql/R__transforms.sql"})
    for (const auto& statement : pgxform::split_statements(read_text(dir + script)))
      CHECK(without_comments(statement).rfind("CREATE ", 0) == 0);
  const auto migrate = on_skeleton(db, dir, "migrate");
  INFO(migrate.err);
  REQUIRE(migrate.exit_code == 0);
  CHECK(db.count("SELECT count(*) FROM other.victim") == 1);
  const auto run = on_skeleton(db, dir, "run");
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  check_copied(db, "legacy.t", "legacy_new.t");
  CHECK(db.count("SELECT count(*) FROM other.victim") == 1);
}

TEST_CASE(
    "init never removes what it did not create: a dangling symbolic link at DIR/sql stays, and "
    "an empty --dir is refused") {
  TestDatabase db;
  create_legacy_items(db);
  TempDir tmp;
  const std::string dir = tmp.path() + "/d1";
  fs::create_directory(dir);
  fs::create_symlink(tmp.path() + "/nowhere", dir + "/sql");
  const auto r = init(db, dir, {"--schema", "legacy"});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(dir + "/sql is a symbolic link to " + tmp.path() +
                                    "/nowhere, which does not exist") &&
                        Catch::Contains("nothing was written"));
  CHECK(fs::is_symlink(fs::symlink_status(dir + "/sql")));
  CHECK_FALSE(fs::exists(dir + "/jobs.yaml"));

  // A file where init would create its sql directory: named, and kept.
  fs::remove(dir + "/sql");
  tmp.write("d1/sql", "mine\n");
  const auto file = init(db, dir, {"--schema", "legacy"});
  CHECK(file.exit_code == 2);
  CHECK_THAT(file.err, Catch::Contains("cannot create " + dir + "/sql: "));
  CHECK(read_text(dir + "/sql") == "mine\n");
  CHECK(fs::exists(dir));

  const std::string here = fs::current_path().string();
  const auto empty = init(db, "", {"--schema", "legacy"});
  CHECK(empty.exit_code == 2);
  CHECK_THAT(empty.err, Catch::Contains("--dir may not be empty"));
  CHECK_FALSE(fs::exists(here + "/jobs.yaml"));
}

namespace {

// The pieces hostile names are made of: what ends a line, a comment, a statement, a quote or
// a YAML scalar; what a terminal obeys; what YAML reads as something else; bytes beyond ASCII.
const std::vector<std::string> k_hostile = {"\n",
                                            "\r\n",
                                            "\r",
                                            "\t",
                                            "--",
                                            "/*",
                                            "*/",
                                            ";",
                                            "'",
                                            "\"",
                                            "$$",
                                            "$body$",
                                            "#",
                                            ": ",
                                            "- ",
                                            "{",
                                            "}",
                                            "[",
                                            "]",
                                            "&a",
                                            "*a",
                                            "!",
                                            "%",
                                            "@",
                                            "`",
                                            "\\",
                                            " ",
                                            ".",
                                            "=",
                                            "yes",
                                            "null",
                                            "123",
                                            "é",
                                            "\xe2\x80\xa8",
                                            "\xc2\x85",
                                            "\xe2\x80\xae",
                                            "\x1b]0;t\x07",
                                            "\x1b[31m",
                                            "\xf0\x9f\x90\x98",
                                            "DROP TABLE canary.victim CASCADE; --",
                                            "'); DROP TABLE canary.victim; --",
                                            "$$; DROP TABLE canary.victim; $$",
                                            "*/ DROP TABLE canary.victim; /*"};

bool has_control(const std::string& name) {
  return pgxform::name_flaw(name).has_value();
}

// A name of at most `limit` bytes: hostile pieces and a plain word, `suffix` last (to keep the
// names of one kind apart).
std::string hostile_name(std::mt19937& rng, std::size_t limit, const std::string& suffix,
                         bool controls) {
  std::string name;
  const int pieces = 1 + int(rng() % 3);
  for (int i = 0; i < pieces; ++i) {
    std::string piece = k_hostile[rng() % k_hostile.size()];
    if (!controls && has_control(piece)) piece = "x";
    if (name.size() + piece.size() + suffix.size() > limit) break;
    name += piece;
  }
  return name + suffix;
}

// Every object of the database outside the state schema: relations, functions, schemas and
// types that are no table's row type or array, as "kind schema.name" lines.
std::set<std::string> objects(TestDatabase& db) {
  pqxx::connection conn(db.dsn());
  pqxx::read_transaction tx(conn);
  std::set<std::string> out;
  for (const auto& r :
       tx.exec("SELECT 'relation ' || c.relkind::text || ' ' || n.nspname || '.' || c.relname FROM "
               "pg_class c"
               " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN"
               " ('pg_catalog', 'information_schema', 'pg_toast', 'pgxform')"
               " UNION ALL SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p"
               " JOIN pg_namespace n ON n.oid = p.pronamespace"
               " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgxform')"
               " UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname <> 'pgxform'"
               " AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
               " UNION ALL SELECT 'type ' || n.nspname || '.' || t.typname FROM pg_type t"
               " JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typrelid = 0"
               " AND t.typelem = 0 AND n.nspname NOT IN ('pg_catalog', 'information_schema')"))
    out.insert(r[0].as<std::string>());
  return out;
}

// The legacy schema one seed makes: its tables, the ones init may copy and give a job.
struct HostileSchema {
  std::string name;
  std::vector<std::string> copied;  // tables whose names, and their columns', hold no control
  std::vector<std::string> jobs;    // ... with a key, and no '=' in the name
};

HostileSchema create_hostile_schema(TestDatabase& db, std::mt19937& rng) {
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  HostileSchema s;
  s.name = hostile_name(rng, 40, "_s", false);
  const std::string schema = tx.quote_name(s.name);
  tx.exec(
      "CREATE SCHEMA canary; CREATE TABLE canary.victim (a int); INSERT INTO canary.victim"
      " VALUES (1); CREATE SCHEMA " +
      schema + "; COMMENT ON SCHEMA " + schema + " IS " +
      tx.quote(hostile_name(rng, 200, "", true)));
  std::vector<std::string> domains{"bigint"};
  for (int d = 0; d < 2; ++d) {
    const std::string domain =
        schema + "." + tx.quote_name(hostile_name(rng, 60, "_d" + std::to_string(d), true));
    tx.exec("CREATE DOMAIN " + domain + " AS bigint CONSTRAINT " +
            tx.quote_name(hostile_name(rng, 60, "_c", true)) + " CHECK (VALUE > 0)");
    tx.exec("COMMENT ON DOMAIN " + domain + " IS " + tx.quote(hostile_name(rng, 100, "", true)));
    domains.push_back(domain);
  }
  std::vector<std::pair<std::string, std::string>> keyed;  // earlier tables: name, key type
  const int tables = 3 + int(rng() % 3);
  for (int t = 0; t < tables; ++t) {
    const std::string table = hostile_name(rng, 60, "_t" + std::to_string(t), rng() % 4 == 0);
    const std::string quoted = schema + "." + tx.quote_name(table);
    const std::string key = hostile_name(rng, 60, "_k", rng() % 6 == 0);
    const std::string type = domains[rng() % domains.size()];
    const bool has_key = rng() % 5 != 0;
    std::vector<std::string> columns{tx.quote_name(key) + " " + type};
    bool printable_columns = !has_control(key);
    const int others = 1 + int(rng() % 3);
    for (int c = 0; c < others; ++c) {
      const std::string column = hostile_name(rng, 60, "_c" + std::to_string(c), rng() % 8 == 0);
      printable_columns = printable_columns && !has_control(column);
      columns.push_back(tx.quote_name(column) + " text DEFAULT " +
                        tx.quote(hostile_name(rng, 100, "", true)));
    }
    std::string fk;
    if (!keyed.empty() && rng() % 2 == 0) {
      const auto& [to, to_type] = keyed[rng() % keyed.size()];
      columns.push_back("fk " + to_type + " CONSTRAINT " +
                        tx.quote_name(hostile_name(rng, 60, "_fk", true)) + " REFERENCES " + to);
      fk = "fk";
    }
    tx.exec("CREATE TABLE " + quoted + " (" + [&] {
      std::string joined;
      for (const auto& c : columns) joined += (joined.empty() ? "" : ", ") + c;
      return joined;
    }() + ")");
    if (has_key) {
      tx.exec("ALTER TABLE " + quoted + " ADD CONSTRAINT " +
              tx.quote_name(hostile_name(rng, 60, "_pk" + std::to_string(t), true)) +
              " PRIMARY KEY (" + tx.quote_name(key) + ")");
      keyed.emplace_back(quoted, type);
    }
    tx.exec("CREATE INDEX " + tx.quote_name(hostile_name(rng, 60, "_i" + std::to_string(t), true)) +
            " ON " + quoted + " (" + tx.quote_name(key) + " DESC)");
    tx.exec("COMMENT ON TABLE " + quoted + " IS " + tx.quote(hostile_name(rng, 100, "", true)));
    tx.exec("COMMENT ON COLUMN " + quoted + "." + tx.quote_name(key) + " IS " +
            tx.quote(hostile_name(rng, 100, "", true)));
    tx.exec("INSERT INTO " + quoted + " (" + tx.quote_name(key) + (fk.empty() ? "" : ", fk") +
            ") SELECT g" + (fk.empty() ? "" : ", g") + " FROM generate_series(1, 5) g");
    if (has_control(table) || !printable_columns) continue;
    s.copied.push_back(table);
    // A key from the index on it, even without the primary key: a btree index leads with it.
    if (table.find('=') == std::string::npos) s.jobs.push_back(table);
  }
  tx.exec("ANALYZE");
  tx.commit();
  return s;
}

}  // namespace

TEST_CASE(
    "init of schemas whose every name is hostile writes files that parse, and migrate creates "
    "exactly the copies and functions, dropping nothing") {
  std::vector<unsigned> seeds{1, 2, 3};
  if (const char* more = std::getenv("PGXFORM_INIT_FUZZ_SEEDS"))  // e.g. 100: seeds 1..100
    for (unsigned seed = 4; seed <= unsigned(std::stoul(more)); ++seed) seeds.push_back(seed);
  for (const unsigned seed : seeds) {
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    TestDatabase db;
    const HostileSchema s = create_hostile_schema(db, rng);
    TempDir tmp;
    const std::string dir = tmp.path() + "/m";
    const auto before = objects(db);
    const auto r = init(db, dir, {"--schema", s.name});
    INFO(r.out << r.err);
    if (s.jobs.empty()) {  // nothing to do: refused, nothing written
      CHECK(r.exit_code == 2);
      CHECK_FALSE(fs::exists(dir));
      continue;
    }
    REQUIRE(r.exit_code == 0);
    for (const char c : r.out) CHECK((c == '\n' || static_cast<unsigned char>(c) >= 0x20));

    const std::string yaml = read_text(dir + "/jobs.yaml");
    INFO(yaml);
    CHECK_NOTHROW(YAML::Load(yaml));
    const pgxform::JobsFile file = pgxform::parse_jobs_file(dir + "/jobs.yaml");
    std::set<std::string> jobs;
    for (const auto& list : file.lists)
      for (const auto& job : list.jobs) {
        jobs.insert(job.name);
        CHECK(job.table.schema == s.name);
        CHECK(job.table.name == job.name);
      }
    CHECK(jobs == std::set<std::string>(s.jobs.begin(), s.jobs.end()));
    for (const auto& entry : fs::directory_iterator(dir + "/sql")) {
      const std::string script = read_text(entry.path().string());
      for (const auto& statement : pgxform::split_statements(script)) {
        INFO(entry.path() << ": " << statement);
        CHECK(without_comments(statement).rfind("CREATE ", 0) == 0);
      }
    }

    const auto migrate = on_skeleton(db, dir, "migrate");
    INFO(migrate.err);
    REQUIRE(migrate.exit_code == 0);
    const auto after = objects(db);
    for (const auto& object : before) CHECK(after.count(object) == 1);  // nothing dropped
    const std::string target = s.name + "_new";
    std::set<std::string> expected{"schema " + target};
    if (!before.count("schema xf")) expected.insert("schema xf");
    for (const auto& table : s.copied) expected.insert("relation r " + target + "." + table);
    for (const auto& job : s.jobs) expected.insert("function xf." + job);
    std::set<std::string> created;
    for (const auto& object : after)
      if (!before.count(object) && object.rfind("relation i " + target + ".", 0) != 0)
        created.insert(object);  // the primary keys' indexes aside
    CHECK(created == expected);
    CHECK(db.count("SELECT count(*) FROM canary.victim") == 1);

    const auto run = on_skeleton(db, dir, "run");
    INFO(run.err);
    CHECK(run.exit_code == 0);
    pqxx::connection conn(db.dsn());
    pqxx::read_transaction tx(conn);
    for (const auto& job : s.jobs)
      CHECK(tx.exec1("SELECT count(*) FROM " + tx.quote_name(target) + "." + tx.quote_name(job))[0]
                .as<int>() == 5);
  }
}
