// block_counters: the database's own count of the 8 kB blocks one batch touched — in shared
// buffers, in the local buffers of temporary tables, and in temporary files of sorts and hashes
// that spilled past work_mem — as pg_stat_statements names them, but per batch.
//
// They come from the batch statement's EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) (batch_sql.h):
// the top plan node's counters cover everything that ran under it, the function's nested
// statements included. The client reads them from the plan's JSON (nlohmann-json: the "Plan"
// object of the plan's one element, not its children's "Plans" nor the "Planning" section)
// and binds them to the log statement as plain numbers, so that the server parses no JSON per
// batch.
#pragma once

#include <optional>
#include <string_view>

namespace pgxform {

struct BlockCounters {
  long long shared_hit = 0, shared_read = 0, shared_dirtied = 0, shared_written = 0;
  long long local_hit = 0, local_read = 0;    // temporary tables
  long long temp_read = 0, temp_written = 0;  // sorts and hashes that spilled past work_mem
  // The blocks the batch looked at, wherever they were found.
  long long touched() const { return shared_hit + shared_read + local_hit + local_read; }
  BlockCounters& operator+=(const BlockCounters& other);
};

// One counter: its batch_log column (and profile --json key), EXPLAIN's name for it, and its
// field.
struct CounterField {
  const char* column;
  const char* explain_name;
  long long BlockCounters::*member;
};

inline constexpr CounterField k_counter_fields[] = {
    {"shared_blks_hit", "Shared Hit Blocks", &BlockCounters::shared_hit},
    {"shared_blks_read", "Shared Read Blocks", &BlockCounters::shared_read},
    {"shared_blks_dirtied", "Shared Dirtied Blocks", &BlockCounters::shared_dirtied},
    {"shared_blks_written", "Shared Written Blocks", &BlockCounters::shared_written},
    {"local_blks_hit", "Local Hit Blocks", &BlockCounters::local_hit},
    {"local_blks_read", "Local Read Blocks", &BlockCounters::local_read},
    {"temp_blks_read", "Temp Read Blocks", &BlockCounters::temp_read},
    {"temp_blks_written", "Temp Written Blocks", &BlockCounters::temp_written},
};

// The counters of the top plan node of EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) output; none
// unless every one of them is there (EXPLAIN without BUFFERS, or not JSON).
std::optional<BlockCounters> top_node_counters(std::string_view explain_json);

}  // namespace pgxform
