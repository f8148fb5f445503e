// trend: what a job's batches say about its speed. Pure arithmetic: no database, no clock.
//
// Input: the job's batches in commit order (batch_log ordered by started_at, batch_no), each
// with its rows and duration, and where known its position in the key range (0..1) and its
// start time. Output: batches, rows, rows per second, p50/p95/max batch duration, the trend,
// the growth, and a model of the cost per row that gives an ETA for the rows still to do.
//
// The trend is about the cost per row (duration_ms / rows) against progress (rows done so far,
// in commit order), because that is what an O(N²) job gives away: a sub-select against a table
// that the job itself fills makes every batch cost more than the one before. It is decided by
// three tests that must all agree, so that a noisy machine or a single slow batch (a
// checkpoint, a lock wait, a cold cache) never makes a flat job `growing`:
//   1. Mann–Kendall: over all pairs of batches, later ones are more expensive far more often
//      than chance allows (z >= k_trend_z; a single outlier moves at most n-1 of n(n-1)/2 pairs);
//   2. growth: the median cost per row of the last quarter of the batches is at least
//      k_growth_ratio times that of the first quarter (medians: one slow batch does not count);
//   3. Theil–Sen: the median of the pairwise slopes, over the job's progress so far, adds at
//      least half of the median cost per row.
// Fewer than k_min_batches batches cannot tell: the trend is then `insufficient` (never `flat`,
// which would be a promise). The last batch of a range, which got fewer rows than it asked for,
// and, where the size asked for is not known, any batch far smaller than the typical one (a
// bisected range) carry mostly fixed overhead per row and are left out of the trend. So are the
// batches of a ramp-up — the time sizer (batch_sizer.h) doubling its batches towards their target
// at the start of every run, so after every resume: the next batch asks for at least 1.5 times
// as many keys — which, small and mostly overhead, cost more per row than any steady batch and
// would hide a rising cost behind a saw-tooth. Other batches of varying sizes all count: a
// batch's duration is almost all its rows' cost when it lasts about its target, so its cost per
// row does not depend on its size.
//
// Time at work (active_seconds, and the rows per second over it): the wall time of the batches
// with the pauses between them left out (work_stretches below), so that a run stopped overnight
// does not halve the job's speed.
//
// Blocks: the counters of the batches, summed, and blocks touched per row compared between the
// first and the last quarter as for the growth of the cost (the same typical batches).
//
// ETA: the cost per row is modelled as a straight line over rows done, c(r) = c_end + b (r - D)
// with D the rows done so far (b = 0 unless the trend is growing), and integrated over the
// remaining rows R: R c_end + b R² / 2 milliseconds of batch time. Batch time becomes wall time
// through the job's own ratio of wall time to batch time so far (round trips and commits
// between batches; several slices at once make it < 1).
#pragma once

#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "analysis/block_counters.h"

namespace pgxform {

struct BatchSample {
  long long rows = 0;
  // The keys the batch asked for (batches are sized by time); none for an explicit range and
  // for batches logged before sizes were. A batch with fewer rows is the last of its range.
  std::optional<long long> asked;
  double duration_ms = 0;
  double position = std::nan("");       // 0..1 in the key range; NaN when unknown
  double started_s = std::nan("");      // start, in seconds on any one clock; NaN when unknown
  std::optional<BlockCounters> blocks;  // none for batches logged without counters
};

enum class Trend { insufficient, flat, growing };
// "insufficient", "flat", "growing": the words of profile's table and --json.
const char* trend_name(Trend trend);

constexpr std::size_t k_min_batches = 12;
constexpr double k_trend_z = 3.0;
constexpr double k_growth_ratio = 1.5;

// Whether `batches` batches are enough to tell a trend (for early warnings during a run).
bool enough_batches(std::size_t batches);

struct JobFigures {
  std::size_t batches = 0;
  long long rows = 0;
  double batch_seconds = 0;   // the sum of the batches' durations
  double active_seconds = 0;  // wall time spent on the job, pauses between runs left out
  double rows_per_second = 0;
  double p50_ms = 0, p95_ms = 0, max_ms = 0;
  Trend trend = Trend::insufficient;
  // Median cost per row of the last quarter over that of the first; none below 4 batches.
  std::optional<double> growth;
  double trend_z = 0;  // the Mann–Kendall statistic
  // The cost model (see above): ms per row at the end, and its rise per row done.
  double cost_per_row_ms = 0;
  double cost_slope = 0;
  // The counters summed over the batches that have them; none when no batch has.
  std::optional<BlockCounters> blocks;
  // Blocks touched per row: the median of the last quarter of the batches with counters, and
  // its ratio to the first quarter's (none below 4 such batches). Unlike time, a count is not
  // disturbed by a noisy machine: a job that touches ever more blocks per row reads a growing
  // table (the O(N²) signature), whatever its timings say.
  std::optional<double> blocks_per_row;
  std::optional<double> blocks_growth;
};

JobFigures analyze_batches(const std::vector<BatchSample>& batches);

// Wall seconds for `remaining_rows` more rows, the trend accounted for; none without batches.
std::optional<double> eta_seconds(const JobFigures& figures, long long remaining_rows);

// The stretches of wall time the job was at work: its batches' spans joined across the short
// gaps between them (round trips, commits), split at each pause — a gap longer than
// k_pause_seconds and than ten p95 batches, when no batch of the job ran (the run was stopped
// or killed, or waited for another job, or the next run had not started yet). In time order;
// active_seconds is the sum of their lengths. Empty when a batch has no start time.
constexpr double k_pause_seconds = 5.0;
struct WorkStretch {
  double begin, end;  // seconds, on the batches' clock
};
std::vector<WorkStretch> work_stretches(const std::vector<BatchSample>& batches, double p95_ms);

// "850 ms", "42 s", "12 min", "3 h 20 min", "4 d 2 h".
std::string human_duration(double seconds);

// Percentile p (0..100) of `values`, linearly interpolated; 0 for no values.
double percentile(std::vector<double> values, double p);

// Points (xs[i], ys[i]) in consecutive groups, as few points per group as keep the groups at
// most `max_groups`: each group's mean x, median y, and the points [first, end) it stands for.
// A trend over a hundred thousand batches, or a chart of them, needs no more.
struct PointGroup {
  double x, y;
  std::size_t first, end;
};
std::vector<PointGroup> group_medians(const std::vector<double>& xs, const std::vector<double>& ys,
                                      std::size_t max_groups);

}  // namespace pgxform
