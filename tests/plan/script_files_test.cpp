// The pure parts of the script migrator: versions, file names, checksums, states. No database.
#include "plan/script_files.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "fuzz/fuzz_targets.h"

using namespace pgxform;
namespace fs = std::filesystem;

namespace {

// A scripts directory of its own, removed at the end.
class ScriptsDir {
 public:
  ScriptsDir() {
    std::string templ = (fs::temp_directory_path() / "pgxform_scripts_XXXXXX").string();
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    m_path = templ;
  }
  ~ScriptsDir() {
    std::error_code ec;
    fs::remove_all(m_path, ec);
  }
  const std::string& path() const { return m_path; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(m_path + "/" + name, std::ios::binary) << text;
  }

 private:
  std::string m_path;
};

std::vector<std::string> names(const std::vector<ScriptFile>& scripts) {
  std::vector<std::string> out;
  for (const auto& s : scripts) out.push_back(s.file);
  return out;
}

std::string problems_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ScriptError& e) {
    std::string all;
    for (const auto& p : e.problems()) all += p + "\n";
    return all;
  }
  return "";
}

ScriptFile script(const std::string& file, const std::string& checksum) {
  auto s = *parse_script_name(file);
  s.checksum = checksum;
  s.path = "sql/" + file;
  return s;
}

AppliedScript applied(const std::string& file, const std::string& checksum) {
  auto s = *parse_script_name(file);
  return {file, s.type, s.version, s.description, checksum, "2024-05-01 10:00:00+00", 12.5};
}

}  // namespace

TEST_CASE("versions compare as numbers part by part") {
  CHECK(compare_versions("1.2", "1.10") < 0);
  CHECK(compare_versions("1.10", "1.2") > 0);
  CHECK(compare_versions("2", "10") < 0);
  CHECK(compare_versions("1_2", "1.2") == 0);
  CHECK(compare_versions("1", "1.0") == 0);
  CHECK(compare_versions("01", "1") == 0);
  CHECK(compare_versions("1", "1.0.1") < 0);
  CHECK(compare_versions("1.9.9", "2") < 0);
  CHECK(compare_versions("3", "3") == 0);
  // Longer than any integer type.
  CHECK(compare_versions("20240501123000123456789", "20240501123000123456790") < 0);
  CHECK(compare_versions("99999999999999999999", "100000000000000000000") < 0);
}

TEST_CASE("a versioned script name gives its version and description") {
  auto v = parse_script_name("V1.2__target_schemas.sql");
  REQUIRE(v);
  CHECK(v->type == 'V');
  CHECK(v->version == "1.2");
  CHECK(v->description == "target schemas");
  CHECK(v->file == "V1.2__target_schemas.sql");

  auto underscored = parse_script_name("V2_1__orders.sql");
  REQUIRE(underscored);
  CHECK(underscored->version == "2_1");
  CHECK(underscored->description == "orders");

  auto r = parse_script_name("R__transforms.sql");
  REQUIRE(r);
  CHECK(r->type == 'R');
  CHECK(r->version.empty());
  CHECK(r->description == "transforms");
}

TEST_CASE("files that are not named like scripts are ignored") {
  for (const char* name :
       {"legacy_data.sql", "check_counts.sql", "README.md", "V1__x.sql.bak", "V1__x.txt",
        "Views.sql", "Reset.sql", "v1__lower.sql", "r__lower.sql", ".sql", "V.sql"}) {
    INFO(name);
    CHECK_FALSE(parse_script_name(name));
  }
}

TEST_CASE("a name that starts like a script but is malformed is an error naming the file") {
  for (const char* name :
       {"V1_x.sql", "V1.sql", "V__x.sql", "V1.a__x.sql", "V1..2__x.sql", "V1.__x.sql", "V1__.sql",
        "R_x.sql", "R1__x.sql", "R__.sql", "V_1__x.sql"}) {
    INFO(name);
    try {
      parse_script_name(name);
      FAIL("no error");
    } catch (const ScriptError& e) {
      CHECK(std::string(e.what()).find(name) == 0);
    }
  }
}

TEST_CASE("a directory is scanned into V scripts by version, then R scripts by name") {
  ScriptsDir dir;
  dir.write("V1.10__ten.sql", "SELECT 10;");
  dir.write("V1.2__two.sql", "SELECT 2;");
  dir.write("V1__one.sql", "SELECT 1;");
  dir.write("R__b.sql", "SELECT 'b';");
  dir.write("R__a.sql", "SELECT 'a';");
  dir.write("legacy_data.sql", "\\set ON_ERROR_STOP 1");
  dir.write("check_counts.sql", "SELECT 1;");
  dir.write("V3__concurrently.sql",
            "-- pgxform: no-transaction\r\nCREATE INDEX CONCURRENTLY i ON t (a);\r\n");
  fs::create_directory(dir.path() + "/archive");
  dir.write("archive/V0__old.sql", "SELECT 0;");

  const auto scripts = scan_scripts(dir.path());
  CHECK(names(scripts) == std::vector<std::string>{"V1__one.sql", "V1.2__two.sql", "V1.10__ten.sql",
                                                   "V3__concurrently.sql", "R__a.sql", "R__b.sql"});
  CHECK(scripts[0].path == dir.path() + "/V1__one.sql");
  CHECK(scripts[0].checksum == script_checksum("SELECT 1;"));
  CHECK(scripts[0].transaction == Transaction::own);
  CHECK(scripts[3].transaction == Transaction::none);
}

TEST_CASE("two V scripts with the same version are an error naming both files") {
  ScriptsDir dir;
  dir.write("V1.2__a.sql", "SELECT 1;");
  dir.write("V1_2__b.sql", "SELECT 2;");
  dir.write("V2__c.sql", "SELECT 3;");
  const std::string problems = problems_of([&] { scan_scripts(dir.path()); });
  CHECK(problems.find("V1.2__a.sql") != std::string::npos);
  CHECK(problems.find("V1_2__b.sql") != std::string::npos);
  CHECK(problems.find("V2__c.sql") == std::string::npos);
}

TEST_CASE("every malformed name of a directory is reported at once") {
  ScriptsDir dir;
  dir.write("V1_x.sql", "");
  dir.write("R_y.sql", "");
  dir.write("V1__ok.sql", "");
  const std::string problems = problems_of([&] { scan_scripts(dir.path()); });
  CHECK(problems.find(dir.path() + "/V1_x.sql: not a valid script name") != std::string::npos);
  CHECK(problems.find(dir.path() + "/R_y.sql: not a valid script name") != std::string::npos);
  CHECK(problems.find("V1__ok.sql") == std::string::npos);
}

TEST_CASE("a scripts directory that does not exist holds no scripts") {
  ScriptsDir dir;
  CHECK(scan_scripts(dir.path() + "/nowhere").empty());
}

TEST_CASE("the checksum ignores line endings, trailing whitespace and trailing blank lines") {
  const std::string lf = "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n";
  const std::string sum = script_checksum(lf);
  CHECK(sum.size() == 16);
  CHECK(sum.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(script_checksum("CREATE TABLE t (a int);\r\nINSERT INTO t VALUES (1);\r\n") == sum);
  CHECK(script_checksum("CREATE TABLE t (a int);\rINSERT INTO t VALUES (1);") == sum);
  CHECK(script_checksum("CREATE TABLE t (a int);   \t\nINSERT INTO t VALUES (1);") == sum);
  CHECK(script_checksum(lf + "\n\n  \r\n\t\n") == sum);
  CHECK(script_checksum("\xEF\xBB\xBF" + lf) == sum);
}

TEST_CASE("the checksum changes with the content") {
  const std::string sum = script_checksum("SELECT 1;\nSELECT 2;\n");
  CHECK(script_checksum("SELECT 1;\nSELECT 3;\n") != sum);
  CHECK(script_checksum("SELECT 1; SELECT 2;\n") != sum);     // a line break is content
  CHECK(script_checksum("SELECT 1;\n\nSELECT 2;\n") != sum);  // so is a blank line inside
  CHECK(script_checksum("  SELECT 1;\nSELECT 2;\n") != sum);  // and leading whitespace
  CHECK(script_checksum("\nSELECT 1;\nSELECT 2;\n") != sum);  // and a leading blank line
  CHECK(script_checksum("") == script_checksum("\n \n"));
  // FNV-1a 64 of "a": a fixed value, so that a checksum never changes between builds.
  CHECK(script_checksum("a") == "af63dc4c8601ec8c");
}

TEST_CASE("only the first line's directive makes a script run outside a transaction") {
  CHECK(script_transaction("-- pgxform: no-transaction\nCREATE INDEX CONCURRENTLY ...", "f") ==
        Transaction::none);
  CHECK(script_transaction("--pgxform:no-transaction  \r\n", "f") == Transaction::none);
  CHECK(script_transaction("\xEF\xBB\xBF-- pgxform: no-transaction\n", "f") == Transaction::none);
  CHECK(script_transaction("SELECT 1;\n-- pgxform: no-transaction\n", "f") == Transaction::own);
  CHECK(script_transaction("-- the schemas\nSELECT 1;", "f") == Transaction::own);
  CHECK(script_transaction("", "f") == Transaction::own);
  CHECK(problems_of([] {
          script_transaction("-- pgxform: no transaction\n", "sql/V2__x.sql");
        }).find("sql/V2__x.sql: line 1: unknown directive 'no transaction'") == 0);
}

TEST_CASE(
    "a V script whose version was applied under another description is in conflict, not "
    "changed") {
  const std::vector<ScriptFile> files{script("V1__many_new_schema.sql", "c2"),
                                      script("V2__more.sql", "c3")};
  const std::vector<AppliedScript> history{applied("V1__wide_new_schema.sql", "c1"),
                                           applied("V2__more.sql", "c3")};
  const auto states = script_states(files, history);
  REQUIRE(states.size() == 2);  // the other script's row is not listed apart as missing
  CHECK(states[0].script.file == "V1__many_new_schema.sql");
  CHECK(states[0].state == ScriptState::conflict);
  CHECK(std::string(state_name(states[0].state)) == "conflict");
  CHECK(states[0].applied_as == "V1__wide_new_schema.sql");
  CHECK(states[1].state == ScriptState::applied);
  CHECK_FALSE(states[1].applied_as);
}

TEST_CASE("script states come from the files and the history") {
  const std::vector<ScriptFile> files{script("V1__a.sql", "c1"),  script("V1.0.1__b.sql", "c2"),
                                      script("V2__c.sql", "new"), script("V4__d.sql", "c4"),
                                      script("R__f.sql", "rf"),   script("R__g.sql", "rg2"),
                                      script("R__h.sql", "rh")};
  const std::vector<AppliedScript> history{
      applied("V1.0__a.sql", "c1"),  // the same version, written otherwise
      applied("V1.0.1__b.sql", "c2"), applied("V2__c.sql", "old"), applied("V3__gone.sql", "c3"),
      applied("R__f.sql", "rf"),      applied("R__g.sql", "rg1"),  applied("R__old.sql", "ro")};

  const auto states = script_states(files, history);
  std::vector<std::string> got;
  for (const auto& s : states) got.push_back(s.script.file + " " + state_name(s.state));
  CHECK(got ==
        std::vector<std::string>{"V1__a.sql applied", "V1.0.1__b.sql applied", "V2__c.sql changed",
                                 "V3__gone.sql missing", "V4__d.sql pending", "R__f.sql applied",
                                 "R__g.sql outdated", "R__h.sql pending", "R__old.sql missing"});
  CHECK(states[0].applied_at == "2024-05-01 10:00:00+00");
  CHECK(states[0].duration_ms == 12.5);
  CHECK(states[2].applied_checksum == "old");
  CHECK(states[2].script.checksum == "new");
  CHECK_FALSE(states[4].applied_at);
  CHECK(states[3].script.path.empty());
}

TEST_CASE("every script of the fuzz corpus keeps the promises of a script's name and text") {
  const std::filesystem::path corpus =
      std::filesystem::path(PGXFORM_SOURCE_DIR) / "tests/fuzz/corpus/scripts";
  int inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO(entry.path());
    CHECK(pgxform_fuzz::script_input(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                     bytes.size()));
    ++inputs;
  }
  CHECK(inputs >= 4);
}
