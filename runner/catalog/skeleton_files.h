// skeleton_files: the text of the files `pgxform init` writes, from a Skeleton (skeleton.h).
// Pure.
//
//   jobs.yaml                    version 1; one list per job, in the skeleton's order, with its
//                                `after:`; comments with each table's row estimate, its key and
//                                the notes; the tables without a job as commented-out jobs
//                                saying why.
//   sql/V1__<target>_schema.sql  CREATE SCHEMA for the target and (IF NOT EXISTS) the function
//                                schema; one CREATE TABLE per copied table: its columns, types,
//                                NOT NULL and primary key; the legacy foreign keys, commented
//                                out. <target> is the target schema's name with every byte but
//                                [A-Za-z0-9_] written as '_'.
//   sql/R__transforms.sql        per job, CREATE OR REPLACE FUNCTION xf.<job>(first_key K,
//                                last_key K) RETURNS bigint, K the key's type: a LANGUAGE sql
//                                INSERT ... SELECT of every column of the range's rows,
//                                returning their count — valid as written, so that the skeleton
//                                runs and copies the schema.
//
// In SQL every identifier is quoted (quote_ident). In jobs.yaml a value is plain only when YAML
// and pgxform read it as it is, else single-quoted; a table or function part that is not a
// lower-case SQL name is double-quoted inside, as jobs-file.md describes. Names in comments
// are printable. The text holds no date, version or host: the same schema gives the same files.
#pragma once

#include <string>
#include <vector>

#include "catalog/skeleton.h"

namespace pgxform {

struct SkeletonFile {
  std::string path;  // relative to the directory: "jobs.yaml", "sql/R__transforms.sql"
  std::string text;
};

// jobs.yaml, the V1 script and the R script, in that order.
std::vector<SkeletonFile> skeleton_files(const Skeleton& skeleton);

std::string jobs_yaml(const Skeleton& skeleton);
std::string schema_script(const Skeleton& skeleton);
std::string transforms_script(const Skeleton& skeleton);
// "V1__legacy_new_schema.sql"
std::string schema_script_name(const std::string& target_schema);

// A name as the comments and init's summary show it, on one line: plain when it is a lower-case
// SQL name, else double-quoted as SQL quotes it ("Order Items").
std::string shown_name(const std::string& name);

// A YAML scalar that reads back as `text` (which holds no control character).
std::string yaml_scalar(const std::string& text);
// schema.name as the jobs file reads it, as a YAML scalar: legacy.customers,
// '"Legacy"."Order Items"'.
std::string yaml_name(const std::string& schema, const std::string& name);

}  // namespace pgxform
