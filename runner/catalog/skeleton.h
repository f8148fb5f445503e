// skeleton: what `pgxform init` makes of a legacy schema, decided before a line is written.
// Pure: from the schema's description (source_schema.h) to the jobs, their keys, their lists
// and the tables left without a job; skeleton_files.h writes the files from it.
//
// Every table is copied into the target schema. A table gets a job, named after it, when it has
// a usable key: a column that leads a valid btree index without a predicate (the batches' two
// probes walk that index). Among several, the best comes first, ties going to the column that
// comes first in the table:
//   1. NOT NULL before nullable: rows whose key is NULL are in no batch;
//   2. unique on its own (a single-column primary key or unique index) before not: a batch of
//      N keys is then N rows;
//   3. the leading column of the primary key before that of another index.
// A table without one is left without a job, with the reason.
//
// Lists: one per job, named after the table with the suffix `_list` ("orders_list"; again
// `_list` while that is a job's name or an earlier list's), so that no list shares its name
// with a job and `pause`, `set` and `--only` never mean two things. A table's list is `after:`
// the lists of the
// tables it references (its foreign keys to tables of the schema that have a job), so that the
// target may keep those foreign keys; lists that wait for nothing run side by side. Lists come
// dependencies first, otherwise by name. A reference cannot order:
//   * a table that references itself: its rows are copied in key order;
//   * a cycle (a -> b -> a): its tables come in turn, each as soon as every table of the cycle
//     it references is placed, else (every one waits for another) the first by name, whose
//     references to the tables of the cycle not yet placed are dropped;
// each such reference is named in a note, as are references to tables without a job or in
// other schemas.
//
// Tables and columns whose names hold a control character cannot be written into jobs.yaml:
// such a table is left out altogether. Every name that goes into a comment or a message goes
// through printable() (text_check.h), so that none breaks a line.
//
// Refused, as InitError (exit 2, nothing written): a schema that does not exist or holds no
// table; a target schema that exists, is the legacy schema, is PostgreSQL's (pg_*) or is longer
// than 63 bytes; a function of a job's name already in the function schema (R__transforms.sql
// would replace it).
#pragma once

#include <string>
#include <vector>

#include "base/errors.h"
#include "catalog/source_schema.h"

namespace pgxform {

// What `pgxform init` refuses: its problems, then "nothing was written" and what to do.
class InitError : public InputError {
 public:
  explicit InitError(std::vector<std::string> problems, const std::string& advice = "")
      : InputError(std::move(problems),
                   "nothing was written" + (advice.empty() ? "" : "; " + advice)) {}
};

// Where the skeleton's functions go, a schema of their own that V1 creates unless it exists.
inline const std::string k_function_schema = "xf";

// The target schema when --target-schema is not given: "legacy" -> "legacy_new".
std::string default_target_schema(const std::string& schema);

enum class KeyKind { primary_key, unique_index, leading_column };

struct JobKey {
  std::string column;
  std::string type;      // the column's type, with modifiers
  std::string arg_type;  // the functions' arguments: the type without modifiers
  KeyKind kind = KeyKind::primary_key;
  std::string index;  // the primary key or index that makes it a key (printable)
  bool not_null = true;
};

// The lists a job waits for, and the foreign keys (printable) that make it wait.
struct After {
  std::string list;
  std::vector<std::string> foreign_keys;
};

struct SkeletonJob {
  SourceTable table;  // the job and its function are named after it
  std::string list;   // its list's name: the table's, with a suffix (see above)
  JobKey key;
  std::vector<After> after;        // by list name
  std::vector<std::string> notes;  // what the comments say beyond the key: one sentence each
};

enum class Target { copied, left_out };

struct SkippedTable {
  std::string table;  // printable
  std::string reason;
  Target target = Target::copied;
  // For the commented-out job: the first NOT NULL column, else the first; empty for none.
  std::string suggested_key;
};

struct Skeleton {
  std::string source_schema;
  std::string target_schema;
  std::vector<SourceTable> tables;    // copied into the target, by name
  std::vector<SkeletonJob> jobs;      // in list order
  std::vector<SkippedTable> skipped;  // tables without a job, by name
};

// Throws InitError listing every problem.
Skeleton plan_skeleton(const SourceSchema& schema, const std::string& target_schema);

}  // namespace pgxform
