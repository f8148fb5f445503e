// The three files of init's skeleton (skeleton_files.h), without a database: the jobs file read
// back through pgxform's own parser, the scripts quoting every identifier, and YAML's quoting.
#include "catalog/skeleton_files.h"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "base/sql_text.h"
#include "commands/init_command.h"
#include "plan/jobs_file.h"
#include "support/source_schemas.h"

using namespace pgxform;
using namespace pgxform_test;

TEST_CASE(
    "the jobs file init writes reads back through pgxform's parser, mixed-case and quoted "
    "names intact") {
  SourceTable odd;
  odd.name = "Order Items";
  odd.columns = {column("Item Id", "uuid"), column("it's", "text")};
  odd.indexes = {primary_key("Order Items", {"Item Id"})};
  odd.estimated_rows.reset();
  SourceTable yes = keyed("yes", {"Order Items"});
  yes.foreign_keys[0].referenced_columns = {"Item Id"};
  SourceSchema s = schema_of({odd, yes});
  s.name = "Legacy";
  s.schemas.insert("Legacy");
  for (auto& t : s.tables)
    for (auto& fk : t.foreign_keys) fk.referenced_schema = "Legacy";
  const Skeleton skeleton = plan_skeleton(s, "New.Schema");
  const std::string yaml = jobs_yaml(skeleton);
  INFO(yaml);
  const JobsFile file = parse_jobs_text(yaml, "jobs.yaml");

  REQUIRE(file.lists.size() == 2);
  CHECK(file.state_schema == "pgxform");
  CHECK(file.scripts_dir == "sql");
  const JobList& first = file.lists[0];
  CHECK(first.name == "Order Items_list");
  const Job& items = first.jobs.at(0);
  CHECK(items.name == "Order Items");
  CHECK(items.table.schema == "Legacy");
  CHECK(items.table.name == "Order Items");
  CHECK(items.key == "Item Id");
  CHECK(items.function.schema == "xf");
  CHECK(items.function.name == "Order Items");
  // What its function writes, for validate: the target of the same name.
  REQUIRE(items.writes.size() == 1);
  CHECK(items.writes[0].schema == "New.Schema");
  CHECK(items.writes[0].name == "Order Items");
  CHECK(file.lists[1].name == "yes_list");
  CHECK(file.lists[1].jobs.at(0).name == "yes");  // a word YAML would read as true, quoted
  CHECK(file.lists[1].after == std::vector<std::string>{"Order Items_list"});
  CHECK_THAT(yaml, Catch::Contains("        table: '\"Legacy\".\"Order Items\"'     # rows "
                                   "unknown (not analyzed yet)\n") &&
                       Catch::Contains("        key: 'Item Id'") &&
                       Catch::Contains("# uuid, the primary key") &&
                       Catch::Contains("    after: ['Order Items_list']") &&
                       Catch::Contains("# foreign key yes_Order Items_fk"));
}

TEST_CASE(
    "the scripts init writes quote every identifier and copy columns, types, NOT NULL and "
    "primary keys") {
  SourceTable lines;
  lines.name = "Lines";
  lines.columns = {column("order_id"), column("line_no", "integer"),
                   column("sku", "character varying(20)", false)};
  lines.indexes = {primary_key("Lines", {"order_id", "line_no"})};
  lines.foreign_keys = {{"lines_order_fk", {"order_id"}, "legacy", "orders", {"id"}}};
  const Skeleton s = plan(schema_of({lines, keyed("orders")}));
  const auto files = skeleton_files(s);
  REQUIRE(files.size() == 3);
  CHECK(files[0].path == "jobs.yaml");
  CHECK(files[1].path == "sql/V1__legacy_new_schema.sql");
  CHECK(files[2].path == "sql/R__transforms.sql");

  const std::string& v1 = files[1].text;
  INFO(v1);
  CHECK_THAT(v1, Catch::Contains("CREATE SCHEMA \"legacy_new\";\n"
                                 "CREATE SCHEMA IF NOT EXISTS \"xf\";\n"));
  CHECK_THAT(v1, Catch::Contains("CREATE TABLE \"legacy_new\".\"Lines\" (\n"
                                 "    \"order_id\" bigint NOT NULL,\n"
                                 "    \"line_no\" integer NOT NULL,\n"
                                 "    \"sku\" character varying(20),\n"
                                 "    PRIMARY KEY (\"order_id\", \"line_no\")\n"
                                 ");\n"));
  // The legacy foreign key, commented out, on the target's tables.
  CHECK_THAT(v1, Catch::Contains("-- ALTER TABLE \"legacy_new\".\"Lines\" ADD CONSTRAINT "
                                 "\"lines_order_fk\"\n--     FOREIGN KEY (\"order_id\") "
                                 "REFERENCES \"legacy_new\".\"orders\" (\"id\");\n"));

  const std::string& r = files[2].text;
  INFO(r);
  CHECK_THAT(r, Catch::Contains("CREATE OR REPLACE FUNCTION \"xf\".\"Lines\"(first_key bigint, "
                                "last_key bigint)\nRETURNS bigint LANGUAGE sql AS $$\n"
                                "WITH ins AS (\n"
                                "    INSERT INTO \"legacy_new\".\"Lines\" (\"order_id\", "
                                "\"line_no\", \"sku\")\n"
                                "    SELECT s.\"order_id\",\n"
                                "           s.\"line_no\",\n"
                                "           s.\"sku\"\n"
                                "    FROM \"legacy\".\"Lines\" AS s\n"
                                "    WHERE s.\"order_id\" BETWEEN first_key AND last_key\n"
                                "    RETURNING 1\n)\nSELECT count(*) FROM ins\n$$;\n"));
}

TEST_CASE(
    "a transform whose table has a column named like a bound uses the bounds by position, "
    "and a body holding $$ gets another dollar quote") {
  SourceTable t = keyed("ranges");
  t.columns.push_back(column("first_key"));
  t.columns.push_back(column("a$$b", "text"));
  const std::string r = transforms_script(plan(schema_of({t})));
  INFO(r);
  CHECK_THAT(r, Catch::Contains("WHERE s.\"id\" BETWEEN $1 AND $2\n"));
  CHECK_THAT(r, Catch::Contains("LANGUAGE sql AS $body$\n") && Catch::EndsWith("$body$;\n"));
}

TEST_CASE(
    "yaml_scalar quotes what YAML would read otherwise, and the V1 script's name keeps "
    "letters, digits and _") {
  CHECK(yaml_scalar("customers") == "customers");
  CHECK(yaml_scalar("legacy.customers") == "legacy.customers");
  for (const char* word : {"yes", "No", "TRUE", "off", "null", "y"})
    CHECK(yaml_scalar(word) == std::string("'") + word + "'");
  CHECK(yaml_scalar("it's") == "'it''s'");
  CHECK(yaml_scalar("a: b") == "'a: b'");
  CHECK(yaml_scalar("#x") == "'#x'");
  CHECK(yaml_scalar("1e3") == "'1e3'");
  CHECK(yaml_name("legacy", "Orders") == "'legacy.\"Orders\"'");
  CHECK(yaml_name("my.schema", "t") == "'\"my.schema\".t'");
  CHECK(schema_script_name("legacy_new") == "V1__legacy_new_schema.sql");
  CHECK(schema_script_name("New Shop-2") == "V1__New_Shop_2_schema.sql");
}

namespace {

// No line of the YAML holds text outside a comment that a comment of it should hold.
void check_comment_lines(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    INFO(line);
    CHECK(
        (line.find("DROP TABLE") == std::string::npos || line.find('#') < line.find("DROP TABLE")));
  }
}

// Every statement of a script, read by pgxform's own lexer, creates something: none is a
// comment's line that escaped it.
void check_statements(const std::string& script) {
  for (std::string statement : split_statements(script)) {
    while (statement.rfind("--", 0) == 0) statement.erase(0, statement.find('\n') + 1);
    INFO(statement);
    CHECK(statement.rfind("CREATE ", 0) == 0);
  }
}

}  // namespace

TEST_CASE(
    "a key type, index or foreign key named with a line break stays inside its comment, and the "
    "signature keeps the type as SQL") {
  const std::string domain = "legacy.\"d\nDROP TABLE other.victim CASCADE; --\"";
  SourceTable t;
  t.name = "t";
  t.columns = {{"id", domain, domain, true}, column("v", "text")};
  t.indexes = {index("t\npkey DROP TABLE other.victim", {"id"}, true)};
  t.foreign_keys = {{"fk\nDROP TABLE other.victim CASCADE; --", {"v"}, "other\nx", "y\nz", {"w"}}};
  t.estimated_rows = 2;
  const Skeleton s = plan(schema_of({t}));
  const std::string yaml = jobs_yaml(s);
  INFO(yaml);
  check_comment_lines(yaml);
  const JobsFile file = parse_jobs_text(yaml, "jobs.yaml");
  REQUIRE(file.lists.size() == 1);
  CHECK(file.lists[0].jobs.at(0).key == "id");
  CHECK_THAT(yaml, Catch::Contains("# legacy.\"d\\x0aDROP TABLE other.victim CASCADE; --\", the "
                                   "primary key\n"));
  for (const auto& f : skeleton_files(s)) {
    INFO(f.path << ":\n" << f.text);
    if (f.path != "jobs.yaml") check_statements(f.text);
  }
  const std::string r = transforms_script(s);
  // The signature names the very type, as SQL: the line break is inside its quotes.
  CHECK_THAT(r, Catch::Contains("(first_key " + domain + ", last_key " + domain + ")"));
  CHECK_THAT(r, Catch::Contains("-- Job t: legacy.t by id (legacy.\"d\\x0aDROP TABLE"));
  std::ostringstream summary;
  print_init_summary(summary, s, "m");
  CHECK(summary.str().find("\nDROP") == std::string::npos);
}
