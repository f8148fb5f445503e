// script_history: <state schema>.script_history (state schema version 3), one row per applied
// script of scripts_dir (script_migrator.h): script (file name, primary key), type 'V' or 'R',
// version (as written; NULL for R, unique), description, checksum, applied_at, applied_by
// (current_user), runner (host:pid), duration_ms. A V script's row is written once, in the
// transaction that applied it (after it, for a no-transaction script); an R script's row is
// replaced each time it is applied again. A script that failed has no row.
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "plan/script_files.h"
#include "state/state_schema.h"

namespace pgxform {

// Every row; none when the table does not exist yet (reads only: info creates nothing).
std::vector<AppliedScript> read_script_history(pqxx::transaction_base& tx,
                                               const StateSchema& schema);
// Records `script` as applied now (applied_at and applied_by are the server's), replacing the
// row of an R script applied before.
void record_script(pqxx::transaction_base& tx, const StateSchema& schema,
                   const AppliedScript& script);
// Accepts `checksum` as the applied content of `script` (repair).
void update_script_checksum(pqxx::transaction_base& tx, const StateSchema& schema,
                            const std::string& script, const std::string& checksum);

}  // namespace pgxform
