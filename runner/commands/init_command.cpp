#include "commands/init_command.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/exit_code.h"
#include "base/text_check.h"
#include "catalog/source_catalog.h"
#include "database/database.h"
#include "plan/script_files.h"

namespace fs = std::filesystem;

namespace pgxform {

namespace {

std::string shown_path(const std::string& dir, const std::string& file) {
  return printable((fs::path(dir) / file).lexically_normal().string());
}

// The files in the way: any of `files`, and a V1 script of another name in DIR/sql.
std::vector<std::string> files_in_the_way(const std::string& dir,
                                          const std::vector<SkeletonFile>& files) {
  std::vector<std::string> problems;
  std::error_code ec;
  for (const auto& f : files)
    if (fs::symlink_status(fs::path(dir) / f.path, ec).type() != fs::file_type::not_found)
      problems.push_back(shown_path(dir, f.path) + " exists already");
  const fs::path scripts = fs::path(dir) / "sql";
  if (!fs::is_directory(scripts, ec)) return problems;
  for (const auto& entry : fs::directory_iterator(scripts, ec)) {
    const std::string name = entry.path().filename().string();
    std::optional<ScriptFile> script;
    try {
      script = parse_script_name(name);
    } catch (const ScriptError&) {
      continue;  // migrate reports it
    }
    const bool ours = std::any_of(files.begin(), files.end(),
                                  [&](const SkeletonFile& f) { return f.path == "sql/" + name; });
    if (script && script->type == 'V' && compare_versions(script->version, "1") == 0 && !ours)
      problems.push_back(shown_path(dir, "sql/" + name) +
                         " exists already, and the V1 script init writes would have its version");
  }
  return problems;
}

// Creates `path`, which must not exist ("x": O_EXCL), holding `text`: 0, or the errno of the
// failure, after which a file it created is removed again.
int write_new_file(const fs::path& path, const std::string& text) {
  std::FILE* file = std::fopen(path.c_str(), "wx");
  if (!file) return errno;
  int error = std::fwrite(text.data(), 1, text.size(), file) == text.size() ? 0 : errno;
  if (std::fclose(file) != 0 && error == 0) error = errno;
  if (error != 0) std::remove(path.c_str());
  return error;
}

}  // namespace

void write_skeleton(const std::string& dir, const std::vector<SkeletonFile>& files) {
  if (dir.empty())
    throw InitError({"--dir may not be empty: name the directory to write into (. for this one)"});
  if (auto problems = files_in_the_way(dir, files); !problems.empty())
    throw InitError(problems, "pgxform init never overwrites a file: choose another --dir");
  // The directories init creates, innermost first: only these are removed again when a file
  // cannot be written, each only while empty. Whatever is there already (a directory, a file,
  // a symbolic link, even one that points nowhere) is not init's to remove.
  std::error_code ec;
  std::vector<fs::path> created;
  for (fs::path p = fs::path(dir) / "sql"; !p.empty(); p = p.parent_path()) {
    const fs::file_status status = fs::symlink_status(p, ec);
    if (status.type() != fs::file_type::not_found) {
      if (fs::is_symlink(status) && !fs::exists(p, ec))
        throw InitError({printable(p.string()) + " is a symbolic link to " +
                         printable(fs::read_symlink(p, ec).string()) +
                         ", which does not exist: remove the link, create what it points to, "
                         "or choose another --dir"});
      break;
    }
    created.push_back(p);
    if (p == p.parent_path()) break;
  }
  std::vector<fs::path> written;
  const auto undo = [&](const std::string& problem) {
    for (const auto& path : written) fs::remove(path, ec);
    for (const auto& path : created) fs::remove(path, ec);  // fails unless empty: kept then
    throw InitError({problem});
  };
  fs::create_directories(fs::path(dir) / "sql", ec);
  if (ec) undo("cannot create " + shown_path(dir, "sql") + ": " + ec.message());
  for (const auto& f : files) {
    const fs::path path = fs::path(dir) / f.path;
    if (const int error = write_new_file(path, f.text); error != 0)
      undo("cannot write " + shown_path(dir, f.path) + ": " + std::strerror(error));
    written.push_back(path);
  }
}

void print_init_summary(std::ostream& out, const Skeleton& s, const std::string& dir) {
  const auto count = [](std::size_t n, const std::string& what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  const std::string source = shown_name(s.source_schema);
  const auto left_out = std::count_if(s.skipped.begin(), s.skipped.end(),
                                      [](const auto& t) { return t.target == Target::left_out; });
  out << "schema " << source << ": " << count(s.tables.size() + std::size_t(left_out), "table")
      << ", " << count(s.jobs.size(), "job") << " in " << count(s.jobs.size(), "list") << ", "
      << count(s.skipped.size(), "table") << " without a job\n";
  std::size_t notes = 0;
  for (const auto& job : s.jobs) {
    std::string after;
    for (const auto& a : job.after) after += (after.empty() ? "" : ", ") + shown_name(a.list);
    const std::optional<double>& rows = job.table.estimated_rows;
    out << "  list " << shown_name(job.list) << (after.empty() ? "" : " (after " + after + ")")
        << ": " << source << "." << shown_name(job.table.name) << " by "
        << shown_name(job.key.column) << " (" << printable(job.key.type) << ", "
        << (job.key.kind == KeyKind::primary_key    ? "primary key"
            : job.key.kind == KeyKind::unique_index ? "unique"
                                                    : "not unique")
        << "), " << (rows ? "~" + std::to_string(std::llround(*rows)) + " rows" : "rows unknown")
        << "\n";
    notes += job.notes.size();
  }
  for (const auto& table : s.skipped)
    out << "  no job for " << shown_name(table.table) << ": " << table.reason << "\n";
  if (notes > 0)
    out << count(notes, "note") << " in jobs.yaml, above their lists: read them before the run\n";
  out << "wrote " << shown_path(dir, "jobs.yaml") << "\n"
      << "wrote " << shown_path(dir, "sql/" + schema_script_name(s.target_schema)) << ": schema "
      << shown_name(s.target_schema) << ", " << count(s.tables.size(), "table") << "\n"
      << "wrote " << shown_path(dir, "sql/R__transforms.sql") << ": "
      << count(s.jobs.size(), "function") << " in schema " << k_function_schema << "\n"
      << "next: reshape the scripts, then pgxform migrate -f " << shown_path(dir, "jobs.yaml")
      << ", and validate, plan, rehearse and run\n";
}

int init_command(const InitOptions& options, std::ostream& out) {
  const std::string target =
      options.target_schema.empty() ? default_target_schema(options.schema) : options.target_schema;
  SourceSchema schema;
  {
    auto conn = connect(options.dsn, Access::read_only);
    pqxx::read_transaction tx(*conn);
    schema = read_source_schema(tx, options.schema, k_function_schema);
  }
  const Skeleton skeleton = plan_skeleton(schema, target);
  write_skeleton(options.dir, skeleton_files(skeleton));
  print_init_summary(out, skeleton, options.dir);
  return k_exit_ok;
}

}  // namespace pgxform
