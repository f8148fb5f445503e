// init's skeleton without a database (skeleton.h: plan_skeleton): which key each table is paged
// by, how the lists are ordered by foreign keys (chains, cycles, self-references), what is
// noted, and what is refused.
#include "catalog/skeleton.h"

#include <catch2/catch.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "catalog/skeleton_files.h"
#include "plan/jobs_file.h"
#include "support/source_schemas.h"

using namespace pgxform;
using namespace pgxform_test;

namespace {

const SkeletonJob& job_of(const Skeleton& s, const std::string& name) {
  for (const auto& j : s.jobs)
    if (j.table.name == name) return j;
  FAIL("no job " << name);
  throw std::logic_error("unreachable");
}

std::vector<std::string> list_order(const Skeleton& s) {
  std::vector<std::string> names;
  for (const auto& j : s.jobs) names.push_back(j.table.name);
  return names;
}

std::vector<std::string> after_of(const Skeleton& s, const std::string& name) {
  std::vector<std::string> lists;
  for (const auto& a : job_of(s, name).after) lists.push_back(a.list);
  return lists;
}

std::string all_notes(const Skeleton& s) {
  std::string notes;
  for (const auto& j : s.jobs)
    for (const auto& n : j.notes) notes += n + "\n";
  return notes;
}

std::vector<std::string> refusals_of(const SourceSchema& s, const std::string& target) {
  try {
    plan_skeleton(s, target);
  } catch (const InitError& e) {
    CHECK(e.outcome() == "nothing was written");
    return e.problems();
  }
  return {};
}

}  // namespace

TEST_CASE(
    "init pages a table by its single-column primary key, else a unique column, else the "
    "leading column of a btree index") {
  SourceTable by_pk = keyed("by_pk");
  by_pk.columns.insert(by_pk.columns.begin(), column("code", "text"));
  by_pk.indexes.push_back(index("by_pk_code_key", {"code"}, false, true));  // unique too
  SourceTable by_unique;
  by_unique.name = "by_unique";
  by_unique.columns = {column("a"), column("code", "character varying(20)")};
  by_unique.indexes = {primary_key("by_unique", {"a", "code"}),
                       index("by_unique_code_key", {"code"}, false, true)};
  SourceTable by_leading;
  by_leading.name = "by_leading";
  by_leading.columns = {column("order_id"), column("line_no", "integer")};
  by_leading.indexes = {primary_key("by_leading", {"order_id", "line_no"}),
                        index("by_leading_line_no_idx", {"line_no"})};
  const Skeleton s = plan(schema_of({by_pk, by_unique, by_leading}));

  const JobKey& pk = job_of(s, "by_pk").key;
  CHECK(pk.column == "id");
  CHECK(pk.kind == KeyKind::primary_key);
  const JobKey& unique = job_of(s, "by_unique").key;
  CHECK(unique.column == "code");
  CHECK(unique.kind == KeyKind::unique_index);
  CHECK(unique.index == "by_unique_code_key");
  CHECK(unique.type == "character varying(20)");
  CHECK(unique.arg_type == "character varying");
  // A composite primary key: its leading column, before another index's column.
  const SkeletonJob& leading = job_of(s, "by_leading");
  CHECK(leading.key.column == "order_id");
  CHECK(leading.key.kind == KeyKind::leading_column);
  CHECK_THAT(all_notes(s), Catch::Contains("The key order_id is not unique (it leads index "
                                           "by_leading_pkey)"));
}

TEST_CASE(
    "init prefers a NOT NULL key that is not unique to a unique one that may be NULL, and "
    "notes what a nullable key leaves out") {
  SourceTable t;
  t.name = "t";
  t.columns = {column("maybe", "text", false), column("sure")};
  t.indexes = {index("t_maybe_key", {"maybe"}, false, true), index("t_sure_idx", {"sure"})};
  CHECK(job_of(plan(schema_of({t})), "t").key.column == "sure");

  t.indexes = {index("t_maybe_key", {"maybe"}, false, true)};
  const Skeleton only_nullable = plan(schema_of({t}));
  CHECK(job_of(only_nullable, "t").key.column == "maybe");
  CHECK_THAT(all_notes(only_nullable),
             Catch::Contains("rows whose maybe is NULL are in no batch, and are not copied"));
}

TEST_CASE("init gives a table without a usable btree index no job, says why, and suggests a key") {
  SourceTable none;
  none.name = "audit";
  none.columns = {column("note", "text", false), column("at", "timestamp without time zone")};
  SourceTable unusable = none;
  unusable.name = "unusable";
  SourceIndex hash = index("unusable_at_hash", {"at"});
  hash.btree = false;
  SourceIndex partial = index("unusable_at_recent", {"at"});
  partial.partial = true;
  SourceIndex expression = index("unusable_lower_note", {""});
  unusable.indexes = {hash, partial, expression};
  const Skeleton s = plan(schema_of({keyed("a"), none, unusable}));

  CHECK(list_order(s) == std::vector<std::string>{"a"});
  REQUIRE(s.skipped.size() == 2);
  CHECK(s.skipped[0].table == "audit");
  CHECK(s.skipped[0].reason == "no primary key, unique index or btree index to page it by");
  CHECK(s.skipped[0].target == Target::copied);
  CHECK(s.skipped[0].suggested_key == "at");  // the first NOT NULL column
  CHECK(s.skipped[1].reason ==
        "no primary key, unique index or btree index to page it by (index unusable_at_hash is "
        "not a btree index; index unusable_at_recent is partial; index unusable_lower_note "
        "starts with an expression)");
  // Still copied into the target, for the DBA to give a key.
  CHECK(s.tables.size() == 3);
  const std::string yaml = jobs_yaml(s);
  CHECK_THAT(yaml, Catch::Contains("  # audit: no primary key, unique index or btree index to page "
                                   "it by.\n  # - name: audit\n") &&
                       Catch::Contains("  #       key: at\n"));
}

TEST_CASE("init orders the lists so that each runs after the lists of the tables it references") {
  // A chain customers <- orders <- lines, products referenced by lines, events independent.
  const Skeleton s =
      plan(schema_of({keyed("lines", {"orders", "products"}), keyed("orders", {"customers"}),
                      keyed("customers"), keyed("products"), keyed("events")}));
  // Dependencies first, otherwise by name.
  CHECK(list_order(s) ==
        std::vector<std::string>{"customers", "events", "orders", "products", "lines"});
  CHECK(after_of(s, "customers").empty());
  CHECK(after_of(s, "events").empty());
  CHECK(after_of(s, "orders") == std::vector<std::string>{"customers_list"});
  CHECK(after_of(s, "lines") == std::vector<std::string>{"orders_list", "products_list"});
  CHECK(job_of(s, "lines").after[0].foreign_keys == std::vector<std::string>{"lines_orders_fk"});
  CHECK(all_notes(s).empty());
  // Every foreign key: the referenced table's list comes first, and is in `after:`.
  const auto order = list_order(s);
  const auto position = [&](const std::string& name) {
    return std::find(order.begin(), order.end(), name) - order.begin();
  };
  for (const auto& job : s.jobs)
    for (const auto& fk : job.table.foreign_keys) {
      CHECK(position(fk.referenced_table) < position(job.table.name));
      const auto after = after_of(s, job.table.name);
      CHECK(std::count(after.begin(), after.end(), fk.referenced_table + "_list") == 1);
    }
}

TEST_CASE(
    "init breaks a cycle of foreign keys at the first table by name and says so, and a "
    "self-reference orders nothing") {
  // b -> c -> d -> b is a cycle; a references b; e references itself and d.
  SourceTable e = keyed("e", {"d"});
  e.foreign_keys.push_back(references("e_parent_fk", "id", "e"));
  const Skeleton s = plan(
      schema_of({keyed("a", {"b"}), keyed("b", {"c"}), keyed("c", {"d"}), keyed("d", {"b"}), e}));
  // The cycle comes first, as a and e wait for it. Its first table by name, b, goes first, and
  // its reference to c is dropped; then each table of the cycle as soon as the tables it
  // references are placed.
  CHECK(list_order(s) == std::vector<std::string>{"b", "d", "c", "a", "e"});
  CHECK(after_of(s, "b").empty());
  CHECK(after_of(s, "d") == std::vector<std::string>{"b_list"});
  CHECK(after_of(s, "c") == std::vector<std::string>{"d_list"});
  CHECK(after_of(s, "a") == std::vector<std::string>{"b_list"});
  CHECK(after_of(s, "e") == std::vector<std::string>{"d_list"});
  CHECK(job_of(s, "b").notes ==
        std::vector<std::string>{
            "b references c (b_c_fk), which leads back to it through a cycle of foreign keys: "
            "its list cannot wait for c's, so add that foreign key to the target after the "
            "run."});
  CHECK(job_of(s, "e").notes ==
        std::vector<std::string>{"e references itself (e_parent_fk): its rows are copied in key "
                                 "order, so add that foreign key to the target after the run."});
  // The same schema gives the same order, whatever order its tables were read in.
  auto shuffled = schema_of({});
  shuffled.tables = {e, keyed("d", {"b"}), keyed("c", {"d"}), keyed("a", {"b"}), keyed("b", {"c"})};
  std::sort(shuffled.tables.begin(), shuffled.tables.end(),
            [](const SourceTable& x, const SourceTable& y) { return x.name < y.name; });
  CHECK(list_order(plan(shuffled)) == list_order(s));
}

TEST_CASE("init notes references to tables without a job and to other schemas") {
  SourceTable audit;
  audit.name = "audit";
  audit.columns = {column("id")};
  SourceTable orders = keyed("orders", {"audit"});
  orders.foreign_keys.push_back(
      {"orders_country_fk", {"country"}, "reference", "countries", {"code"}});
  const Skeleton s = plan(schema_of({audit, orders}));
  CHECK(after_of(s, "orders").empty());
  CHECK(job_of(s, "orders").notes ==
        std::vector<std::string>{
            "orders references audit (orders_audit_fk), which has no job: copy that table "
            "before this one.",
            "orders references reference.countries (orders_country_fk), outside schema legacy, "
            "which this migration does not copy."});
}

TEST_CASE(
    "init refuses a schema that does not exist or holds no table, and a target schema "
    "that cannot be created") {
  SourceSchema missing = schema_of({keyed("a")});
  missing.name = "legazy";
  CHECK(refusals_of(missing, "legazy_new") ==
        std::vector<std::string>{"schema 'legazy' does not exist; did you mean 'legacy'?"});
  missing.name = "nothing_like_it";
  CHECK(refusals_of(missing, "x") ==
        std::vector<std::string>{"schema 'nothing_like_it' does not exist"});
  CHECK(refusals_of(schema_of({}), "legacy_new") ==
        std::vector<std::string>{"schema 'legacy' holds no tables (pgxform init copies tables; "
                                 "views, sequences and foreign tables are not)"});

  const SourceSchema s = schema_of({keyed("a")});
  CHECK(refusals_of(s, "public") ==
        std::vector<std::string>{"the target schema 'public' exists already, and the V1 script "
                                 "would fail to create it: name another with --target-schema"});
  CHECK(refusals_of(s, "legacy") ==
        std::vector<std::string>{"the target schema 'legacy' is the legacy schema itself: name "
                                 "another with --target-schema"});
  CHECK(refusals_of(s, "xf") ==
        std::vector<std::string>{"the target schema 'xf' is where the transform functions go: "
                                 "name another with --target-schema"});
  CHECK(refusals_of(s, "pg_new") ==
        std::vector<std::string>{"the target schema 'pg_new' is a name PostgreSQL reserves for "
                                 "itself: name another with --target-schema"});
  const auto long_name = refusals_of(s, std::string(64, 'n'));
  REQUIRE(long_name.size() == 1);
  CHECK_THAT(long_name[0], Catch::Contains("is longer than PostgreSQL's 63 bytes for a name"));
  CHECK(refusals_of(s, std::string(63, 'n')).empty());
}

TEST_CASE(
    "init refuses to replace a function of the function schema, and a schema where no "
    "table has a key") {
  SourceSchema s = schema_of({keyed("a"), keyed("b")});
  s.functions = {"b", "unrelated"};
  CHECK(refusals_of(s, "legacy_new") ==
        std::vector<std::string>{"function xf.b exists already, and R__transforms.sql would "
                                 "replace it: drop it, or run pgxform init against a database "
                                 "without it"});
  SourceTable audit;
  audit.name = "audit";
  audit.columns = {column("id")};
  CHECK(refusals_of(schema_of({audit}), "legacy_new") ==
        std::vector<std::string>{"no table of schema 'legacy' has a usable key (a column that "
                                 "leads a btree index): a jobs file needs at least one job",
                                 "audit: no primary key, unique index or btree index to page "
                                 "it by"});
}

TEST_CASE("a table or column whose name holds a control character is left out, named printably") {
  SourceTable bad = keyed("bad\nname");
  SourceTable bad_column = keyed("ok");
  bad_column.columns.push_back(column("c\x1b[0m"));
  const Skeleton s = plan(schema_of({bad, bad_column, keyed("fine")}));
  CHECK(list_order(s) == std::vector<std::string>{"fine"});
  REQUIRE(s.skipped.size() == 2);
  CHECK(s.skipped[0].table == "bad\\x0aname");
  CHECK(s.skipped[0].reason == "its name holds a control character");
  CHECK(s.skipped[0].target == Target::left_out);
  CHECK(s.skipped[1].reason == "the name of its column c\\x1b[0m holds a control character");
  const std::string yaml = jobs_yaml(s);
  CHECK(yaml.find('\x1b') == std::string::npos);
  CHECK_THAT(yaml, Catch::Contains("  # bad\\x0aname: its name holds a control character.\n"));
  CHECK_NOTHROW(parse_jobs_text(yaml, "jobs.yaml"));
}

TEST_CASE(
    "a schema whose name holds a control character is refused, and a table named k=v gets no job") {
  SourceSchema bad = schema_of({keyed("a")});
  bad.name = "leg\nacy";
  bad.schemas.insert(bad.name);
  const auto refused = refusals_of(bad, "target");
  REQUIRE(refused.size() == 1);
  CHECK_THAT(refused[0], Catch::StartsWith("the name of schema 'leg\\x0aacy' holds a control "
                                           "character"));
  const Skeleton s = plan(schema_of({keyed("a"), keyed("k=v")}));
  CHECK(list_order(s) == std::vector<std::string>{"a"});
  REQUIRE(s.skipped.size() == 1);
  CHECK(s.skipped[0].table == "k=v");
  CHECK(s.skipped[0].target == Target::copied);
  CHECK_THAT(s.skipped[0].reason, Catch::StartsWith("a job's name holds '='"));
  const std::string yaml = jobs_yaml(s);
  CHECK(yaml.find("# - name: 'k=v'") == std::string::npos);
  CHECK_NOTHROW(parse_jobs_text(yaml, "jobs.yaml"));
  CHECK_THAT(schema_script(s), Catch::Contains("CREATE TABLE \"legacy_new\".\"k=v\""));
}

TEST_CASE(
    "init names each list after its table with _list, never a job's name nor another list's") {
  const Skeleton s =
      plan(schema_of({keyed("orders"), keyed("orders_list"), keyed("lines", {"orders"})}));
  std::set<std::string> jobs, lists;
  for (const auto& job : s.jobs) jobs.insert(job.table.name);
  for (const auto& job : s.jobs) {
    INFO(job.table.name << " in list " << job.list);
    CHECK(jobs.count(job.list) == 0);
    CHECK(lists.insert(job.list).second);
  }
  CHECK(job_of(s, "lines").list == "lines_list");
  CHECK(job_of(s, "orders").list == "orders_list_list");
  CHECK(after_of(s, "lines") == std::vector<std::string>{"orders_list_list"});
}
