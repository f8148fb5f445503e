#include "catalog/skeleton_files.h"

#include <cmath>
#include <regex>

#include "base/sql_text.h"
#include "base/text_check.h"

namespace pgxform {

namespace {

constexpr std::size_t k_text_width = 96;
// Where the comment of a jobs.yaml line starts, unless the line is longer.
constexpr std::size_t k_comment_column = 44;

// Comment lines of `width` at most, each starting with `prefix` ("  # ", "-- "), the words of
// `text` wrapped; a word longer than a line gets a line of its own.
std::string comment(const std::string& prefix, const std::string& text,
                    std::size_t width = k_text_width) {
  std::string out, line;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    start = end + 1;
    if (word.empty()) continue;
    if (!line.empty() && prefix.size() + line.size() + 1 + word.size() > width) {
      out += prefix + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + prefix + line + "\n";
}

// A line of jobs.yaml with its comment at k_comment_column.
std::string with_comment(const std::string& line, const std::string& note) {
  const std::size_t pad = line.size() < k_comment_column ? k_comment_column - line.size() : 2;
  return line + std::string(pad, ' ') + "# " + note + "\n";
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// `items` joined by ", " after `head`, then `tail`, wrapped at k_text_width with continuation
// lines indented under the first item.
std::string wrapped_list(const std::string& head, const std::vector<std::string>& items,
                         const std::string& tail) {
  std::string out, line = head;
  bool line_empty = true;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string item = items[i] + (i + 1 < items.size() ? "," : tail);
    if (!line_empty && line.size() + 1 + item.size() > k_text_width) {
      out += line + "\n";
      line = std::string(head.size(), ' ');
      line_empty = true;
    }
    line += (line_empty ? "" : " ") + item;
    line_empty = false;
  }
  return out + line + "\n";
}

std::string rows_note(const SourceTable& table) {
  if (!table.estimated_rows) return "rows unknown (not analyzed yet)";
  return "~" + std::to_string(std::llround(*table.estimated_rows)) + " rows";
}

// A lower-case SQL name, which reads the same quoted or not.
bool plain_sql_name(const std::string& name) {
  static const std::regex k_plain("[a-z_][a-z0-9_]*");
  return std::regex_match(name, k_plain);
}

// "schema.table" in a comment.
std::string shown_table(const std::string& schema, const std::string& name) {
  return shown_name(schema) + "." + shown_name(name);
}

std::string sql_name(const std::string& schema, const std::string& name) {
  return quote_ident(schema) + "." + quote_ident(name);
}

std::string key_note(const JobKey& key) {
  // The type as the catalog writes it: a domain's name may hold a line break, which would end
  // the comment and start a line of YAML.
  const std::string type = printable(key.type);
  switch (key.kind) {
    case KeyKind::primary_key:
      return type + ", the primary key";
    case KeyKind::unique_index:
      return type + ", unique index " + key.index;
    case KeyKind::leading_column:
      break;
  }
  return type + ", not unique: leads index " + key.index;
}

std::string yaml_job(const Skeleton& s, const SkeletonJob& job) {
  const std::string& name = job.table.name;
  std::string out;
  for (const auto& note : job.notes) out += comment("  # ", note);
  out += "  - name: " + yaml_scalar(job.list) + "\n";
  if (!job.after.empty()) {
    std::vector<std::string> lists, keys;
    for (const auto& a : job.after) {
      lists.push_back(yaml_scalar(a.list));
      keys.insert(keys.end(), a.foreign_keys.begin(), a.foreign_keys.end());
    }
    out += with_comment("    after: [" + join(lists, ", ") + "]",
                        (keys.size() == 1 ? "foreign key " : "foreign keys ") + join(keys, ", "));
  }
  out += "    jobs:\n";
  out += "      - name: " + yaml_scalar(name) + "\n";
  out += with_comment("        table: " + yaml_name(s.source_schema, name), rows_note(job.table));
  out += with_comment("        key: " + yaml_scalar(job.key.column), key_note(job.key));
  out += "        function: " + yaml_name(k_function_schema, name) + "\n";
  // What the function writes: validate warns of foreign keys between capturing jobs' targets.
  out += "        writes: [" + yaml_name(s.target_schema, name) + "]\n";
  // A copy of a range depends on no order: split among idle workers (the key leads an index).
  out += with_comment("        parallel: auto", "split while workers are idle");
  return out;
}

std::string yaml_skipped(const Skeleton& s, const SkippedTable& table) {
  std::string out = "\n" + comment("  # ", table.table + ": " + table.reason + ".");
  if (table.target == Target::left_out || table.suggested_key.empty()) return out;
  return out + "  # - name: " + yaml_scalar(table.table) + "\n" +
         "  #   jobs:\n"
         "  #     - name: " +
         yaml_scalar(table.table) + "\n" +
         "  #       table: " + yaml_name(s.source_schema, table.table) + "\n" +
         "  #       key: " + yaml_scalar(table.suggested_key) + "\n" +
         "  #       function: " + yaml_name(k_function_schema, table.table) + "\n";
}

// The dollar quote that the body does not hold: $$, else $body$, $body1$, ...
std::string dollar_quote(const std::string& body) {
  std::string tag = "$$";
  for (int n = 0; body.find(tag) != std::string::npos; ++n)
    tag = "$body" + (n == 0 ? std::string() : std::to_string(n)) + "$";
  return tag;
}

std::string transform(const Skeleton& s, const SkeletonJob& job) {
  const SourceTable& table = job.table;
  std::vector<std::string> targets, values;
  bool shadows = false;  // a column named like a parameter would be read instead of it
  for (const auto& c : table.columns) {
    targets.push_back(quote_ident(c.name));
    values.push_back("s." + quote_ident(c.name));
    shadows = shadows || c.name == "first_key" || c.name == "last_key";
  }
  std::string body = "\nWITH ins AS (\n";
  body +=
      wrapped_list("    INSERT INTO " + sql_name(s.target_schema, table.name) + " (", targets, ")");
  for (std::size_t i = 0; i < values.size(); ++i)
    body += (i == 0 ? "    SELECT " : "           ") + values[i] +
            (i + 1 < values.size() ? ",\n" : "\n");
  body += "    FROM " + sql_name(s.source_schema, table.name) + " AS s\n";
  body += "    WHERE s." + quote_ident(job.key.column) + " BETWEEN " +
          (shadows ? "$1 AND $2" : "first_key AND last_key") + "\n";
  body += "    RETURNING 1\n)\nSELECT count(*) FROM ins\n";
  const std::string quote = dollar_quote(body);
  // In the signature the type is SQL as format_type wrote it, its names quoted; in the comment
  // it is printable, so that no line break in a name ends the comment.
  const std::string& type = job.key.arg_type;
  return "\n-- Job " + shown_name(table.name) + ": " + shown_table(s.source_schema, table.name) +
         " by " + shown_name(job.key.column) + " (" + printable(type) + "), into " +
         shown_table(s.target_schema, table.name) + "\n" + "CREATE OR REPLACE FUNCTION " +
         sql_name(k_function_schema, table.name) + "(first_key " + type + ", last_key " + type +
         ")\nRETURNS bigint LANGUAGE sql AS " + quote + body + quote + ";\n";
}

std::string create_table(const Skeleton& s, const SourceTable& table) {
  std::vector<std::string> lines;
  for (const auto& c : table.columns)
    lines.push_back("    " + quote_ident(c.name) + " " + c.type + (c.not_null ? " NOT NULL" : ""));
  for (const auto& index : table.indexes)
    if (index.primary) {
      std::vector<std::string> columns;
      for (const auto& c : index.columns) columns.push_back(quote_ident(c));
      lines.push_back("    PRIMARY KEY (" + join(columns, ", ") + ")");
    }
  return "\n-- " + shown_table(s.source_schema, table.name) + ": " + rows_note(table) + "\n" +
         "CREATE TABLE " + sql_name(s.target_schema, table.name) + " (\n" + join(lines, ",\n") +
         (lines.empty() ? "" : "\n") + ");\n";
}

// The legacy foreign keys, as commented-out statements on the target.
std::string foreign_keys(const Skeleton& s) {
  std::string out;
  for (const auto& table : s.tables)
    for (const auto& key : table.foreign_keys) {
      std::vector<std::string> columns, referenced;
      for (const auto& c : key.columns) columns.push_back(quote_ident(printable(c)));
      for (const auto& c : key.referenced_columns) referenced.push_back(quote_ident(printable(c)));
      const std::string to_schema =
          key.referenced_schema == s.source_schema ? s.target_schema : key.referenced_schema;
      out += "--\n-- ALTER TABLE " + sql_name(s.target_schema, table.name) + " ADD CONSTRAINT " +
             quote_ident(printable(key.name)) + "\n--     FOREIGN KEY (" + join(columns, ", ") +
             ") REFERENCES " + sql_name(printable(to_schema), printable(key.referenced_table)) +
             " (" + join(referenced, ", ") + ");\n";
    }
  if (out.empty()) return out;
  return "\n" +
         comment("-- ",
                 "The foreign keys of the legacy tables, left out. Add them after the run, in "
                 "a V2 script of the migration window: with the source live during the "
                 "migration (changes: trigger and catch-up), only after the final catch-up, "
                 "for a row written to the source meanwhile (a new order of a customer the "
                 "target does not hold yet) would fail its batch (SQLSTATE 23503) "
                 "(docs/catch-up.md). Without catch-up they may go here, since jobs.yaml runs "
                 "the job of each table after those of the tables it references, except those "
                 "its comments name (a table that references itself, a cycle):") +
         out;
}

}  // namespace

std::string shown_name(const std::string& name) {
  return plain_sql_name(name) ? name : quote_ident(printable(name));
}

std::string yaml_scalar(const std::string& text) {
  static const std::regex k_plain("[A-Za-z_][A-Za-z0-9_.]*");
  static const std::regex k_special("y|n|yes|no|true|false|on|off|null",
                                    std::regex::icase | std::regex::optimize);
  if (std::regex_match(text, k_plain) && !std::regex_match(text, k_special)) return text;
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string yaml_name(const std::string& schema, const std::string& name) {
  const auto part = [](const std::string& p) { return plain_sql_name(p) ? p : quote_ident(p); };
  return yaml_scalar(part(schema) + "." + part(name));
}

std::string schema_script_name(const std::string& target_schema) {
  std::string name = target_schema;
  for (auto& c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) c = '_';
  return "V1__" + name + "_schema.sql";
}

std::string jobs_yaml(const Skeleton& s) {
  const std::string source = shown_name(s.source_schema), target = shown_name(s.target_schema);
  std::string out =
      comment("# ",
              "jobs.yaml -- a starting migration, written by pgxform init. "
              "It copies the tables of schema " +
                  source + " that have a usable key into schema " + target + ", as they are.");
  out += "#\n";
  out += "#   sql/" + schema_script_name(s.target_schema) + "\n";
  out += comment("#       ",
                 "the target tables, copies of the legacy ones: reshape them into the new "
                 "schema.");
  out += "#   sql/R__transforms.sql\n";
  out += comment("#       ",
                 "one function per job, copying a key range column for column: rewrite each "
                 "into the transform the new schema needs.");
  out += "#\n";
  out += comment("# ",
                 "Then: pgxform migrate (applies the scripts), validate, plan, rehearse and run. "
                 "See docs/getting-started.md; the fields are described in docs/jobs-file.md.");
  out += "#\n";
  out += comment("# ",
                 "One list per table, named after it with _list so that no list shares a job's "
                 "name. A table's list runs after the lists of the tables it "
                 "references (its foreign keys), so that the target may keep those foreign keys; "
                 "lists that wait for nothing run side by side, up to `threads` at a time.");
  out += "\nversion: 1\ndefaults: {batch_size: 10000, threads: 4}\nstate_schema: pgxform\n";
  out += "\nlists:\n";
  for (std::size_t i = 0; i < s.jobs.size(); ++i) out += (i ? "\n" : "") + yaml_job(s, s.jobs[i]);
  if (!s.skipped.empty()) {
    out += "\n";
    out += comment("  # ",
                   "Tables without a job. Give such a table a primary key or a btree index, write "
                   "its function in sql/R__transforms.sql, and uncomment its job.");
    for (const auto& table : s.skipped) out += yaml_skipped(s, table);
  }
  return out;
}

std::string schema_script(const Skeleton& s) {
  std::string out = "-- " + schema_script_name(s.target_schema) + "\n--\n";
  out += comment(
      "-- ", "Written by pgxform init: the target schema " + shown_name(s.target_schema) +
                 ", its tables as copies of those of schema " + shown_name(s.source_schema) +
                 " (columns, types, NOT NULL, primary keys), and the schema " + k_function_schema +
                 " of the transform functions (R__transforms.sql).");
  out += "--\n";
  out += comment("-- ",
                 "A versioned script: pgxform migrate (or run) applies it once, and refuses to "
                 "go on when it changes afterwards. Reshape the tables before you apply it: "
                 "rename, split, retype, add the constraints and indexes the new schema needs.");
  out += "\nCREATE SCHEMA " + quote_ident(s.target_schema) + ";\n";
  out += "CREATE SCHEMA IF NOT EXISTS " + quote_ident(k_function_schema) + ";\n";
  for (const auto& table : s.tables) out += create_table(s, table);
  return out + foreign_keys(s);
}

std::string transforms_script(const Skeleton& s) {
  std::string out = "-- R__transforms.sql\n--\n";
  out += comment("-- ",
                 "Written by pgxform init: one function per job of jobs.yaml, each copying the "
                 "rows of one key range of its legacy table into its target table (" +
                     schema_script_name(s.target_schema) + "), column for column.");
  out += "--\n";
  out += comment("-- ",
                 "The contract (docs/function-contract.md): pgxform calls " + k_function_schema +
                     ".<job>(first_key, last_key) once per batch, in the batch's transaction, "
                     "with the batch's first and last key, both inclusive, in the key column's "
                     "type. The function handles exactly the rows of that range and returns how "
                     "many rows it wrote. Rewrite each SELECT into the transform you need, and "
                     "keep its WHERE.");
  out += "--\n";
  out += comment("-- ",
                 "A repeatable script: pgxform migrate (or run) applies it again whenever it "
                 "changes, so it only uses CREATE OR REPLACE. A job whose function changes after "
                 "it started stops until the change is accepted (run --accept-changed JOB).");
  for (const auto& job : s.jobs) out += transform(s, job);
  return out;
}

std::vector<SkeletonFile> skeleton_files(const Skeleton& skeleton) {
  return {{"jobs.yaml", jobs_yaml(skeleton)},
          {"sql/" + schema_script_name(skeleton.target_schema), schema_script(skeleton)},
          {"sql/R__transforms.sql", transforms_script(skeleton)}};
}

}  // namespace pgxform
