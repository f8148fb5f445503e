// setting_limits: the one definition of what each setting of a job or a runner may be, wherever
// the value comes from — the jobs file (jobs_file.h), the command line (`--threads`, `pgxform
// set KEY=VALUE`, control_command.h) or a row of the control table written by any SQL session
// (job_control.h). A value out of its range is refused where a user typed it (exit 2, nothing
// written) and ignored, with one warning, where a runner reads it from the control table: a
// runner never sizes a batch, sleeps or starts workers on a value no user could have given.
//
// What the limits are for: more slices or threads than k_threads.max only queue on the server's
// connections and locks; a batch larger than k_batch_size.max holds its locks for minutes; an
// hour is the longest a batch may aim at or a job may sleep between two batches. Pure.
#pragma once

#include <optional>
#include <string>

namespace pgxform {

struct SettingLimit {
  const char* name;  // as the jobs file, `pgxform set` and the control table's column say it
  long long min;
  long long max;
  bool contains(long long value) const { return value >= min && value <= max; }
};

inline constexpr SettingLimit k_batch_size{"batch_size", 1, 1000000000};
inline constexpr SettingLimit k_target_batch_ms{"target_batch_ms", 0, 3600000};
inline constexpr SettingLimit k_pause_ms{"pause_ms", 0, 3600000};
inline constexpr SettingLimit k_threads{"threads", 1, 1024};
inline constexpr SettingLimit k_parallel{"parallel", 1, 1024};
// --reserve-connections: the connections a runner leaves free for everyone else
// (worker_pool.h); 5 unless given.
inline constexpr SettingLimit k_reserve_connections{"reserve_connections", 0, 100000};
inline constexpr int k_default_reserve_connections = 5;

// What is wrong with `value`, as status and the log say it: "batch_size 9223372036854775807 >
// 1000000000", "pause_ms -1 < 0"; none when it is within the limit.
std::optional<std::string> out_of_range(const SettingLimit& limit, long long value);

}  // namespace pgxform
