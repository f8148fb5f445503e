// init_command: `pgxform init --schema SCHEMA [--target-schema NAME] [--dir DIR]` — a starting
// migration from a legacy schema. It reads the schema's catalog in a read-only session
// (source_catalog.h), decides the jobs, their keys and their lists (skeleton.h), renders the
// files (skeleton_files.h), and only then writes them into DIR: jobs.yaml,
// sql/V1__<target>_schema.sql and sql/R__transforms.sql. A summary goes to stdout.
//
// Nothing is written unless everything was decided and none of the three files exists, nor
// another V1 script in DIR/sql (two scripts of one version stop migrate). Each file is created
// exclusively, so that a file that appeared meanwhile is not overwritten either; when one cannot
// be written, the files already written and the directories init created are removed. Every
// refusal is an InitError: exit 2, nothing written.
//
// fetch (read_source_schema) -> compute (plan_skeleton, skeleton_files: pure) -> write
// (write_skeleton) -> render (print_init_summary).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "catalog/skeleton.h"
#include "catalog/skeleton_files.h"

namespace pgxform {

// Not a CommandOptions: init reads no jobs file, it writes one (DIR/jobs.yaml).
struct InitOptions {
  std::string dsn;            // --dsn; empty: the PG* environment
  std::string schema;         // --schema: the legacy schema
  std::string target_schema;  // --target-schema; empty: default_target_schema(schema)
  std::string dir = ".";      // --dir
};

int init_command(const InitOptions& options, std::ostream& out);

// Writes `files` under `dir` (see above); throws InitError naming every file that is in the way.
void write_skeleton(const std::string& dir, const std::vector<SkeletonFile>& files);

// What was made of the schema: tables, jobs, lists (in order, with what each is after), the
// tables without a job and why, the files written into `dir`, and what to run next.
void print_init_summary(std::ostream& out, const Skeleton& skeleton, const std::string& dir);

}  // namespace pgxform
