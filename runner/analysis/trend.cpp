#include "analysis/trend.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <utility>

namespace pgxform {

namespace {

// Above this many batches, the trend tests run on medians of consecutive groups: Theil–Sen and
// Mann–Kendall look at every pair, and a job of a billion rows has a hundred thousand batches.
constexpr std::size_t k_max_points = 400;

double median(std::vector<double> values) {
  return percentile(std::move(values), 50);
}

struct Point {
  double x;  // rows done before the middle of the batch (or group)
  double y;  // cost per row, ms
};

// The Mann–Kendall z of y against the point order (ties count as neither).
double mann_kendall_z(const std::vector<Point>& points) {
  const double n = double(points.size());
  if (points.size() < 3) return 0;
  long long s = 0;
  for (std::size_t i = 0; i < points.size(); ++i)
    for (std::size_t j = i + 1; j < points.size(); ++j)
      s += (points[j].y > points[i].y) - (points[j].y < points[i].y);
  const double variance = n * (n - 1) * (2 * n + 5) / 18;
  if (s == 0) return 0;
  // The continuity correction of the test: S moves in steps of 2.
  return (double(s) - (s > 0 ? 1 : -1)) / std::sqrt(variance);
}

// Theil–Sen: the median slope over all pairs, and the median intercept for it.
std::pair<double, double> theil_sen(const std::vector<Point>& points) {
  std::vector<double> slopes;
  slopes.reserve(points.size() * points.size() / 2);
  for (std::size_t i = 0; i < points.size(); ++i)
    for (std::size_t j = i + 1; j < points.size(); ++j)
      if (points[j].x != points[i].x)
        slopes.push_back((points[j].y - points[i].y) / (points[j].x - points[i].x));
  const double slope = slopes.empty() ? 0 : median(std::move(slopes));
  std::vector<double> intercepts;
  for (const auto& p : points) intercepts.push_back(p.y - slope * p.x);
  return {slope, median(std::move(intercepts))};
}

// The medians of the first and the last quarter of `values` (at least one value each).
std::pair<double, double> quarter_medians(const std::vector<double>& values) {
  const std::size_t quarter = std::max<std::size_t>(1, values.size() / 4);
  std::vector<double> first(values.begin(), values.begin() + std::ptrdiff_t(quarter));
  std::vector<double> last(values.end() - std::ptrdiff_t(quarter), values.end());
  return {median(std::move(first)), median(std::move(last))};
}

// A batch of a ramp-up: the time sizer (batch_sizer.h) still growing its batches towards their
// target, at the start of each run (and so after each resume). Small and mostly fixed overhead,
// such a batch costs more per row than the steady ones around it, and a job resumed a few times
// would show a saw-tooth of them that hides a rising cost (issue 26: an O(N^2) job read `flat`).
// Told by the next batch asking for at least k_ramp_up_growth times its size.
constexpr double k_ramp_up_growth = 1.5;
bool ramp_up(const std::vector<BatchSample>& batches, std::size_t i) {
  if (i + 1 >= batches.size() || !batches[i].asked || !batches[i + 1].asked) return false;
  return double(*batches[i + 1].asked) >= k_ramp_up_growth * double(*batches[i].asked);
}

}  // namespace

const char* trend_name(Trend trend) {
  switch (trend) {
    case Trend::flat:
      return "flat";
    case Trend::growing:
      return "growing";
    case Trend::insufficient:
      break;
  }
  return "insufficient";
}

bool enough_batches(std::size_t batches) {
  return batches >= k_min_batches;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100 * double(values.size() - 1);
  const std::size_t low = std::size_t(rank);
  const std::size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (rank - double(low)) * (values[high] - values[low]);
}

JobFigures analyze_batches(const std::vector<BatchSample>& batches) {
  JobFigures f;
  f.batches = batches.size();
  if (batches.empty()) return f;
  std::vector<double> durations;
  std::vector<double> rows;
  for (const auto& b : batches) {
    f.rows += b.rows;
    f.batch_seconds += b.duration_ms / 1000;
    durations.push_back(b.duration_ms);
    rows.push_back(double(b.rows));
  }
  f.p50_ms = percentile(durations, 50);
  f.p95_ms = percentile(durations, 95);
  f.max_ms = *std::max_element(durations.begin(), durations.end());
  const auto stretches = work_stretches(batches, f.p95_ms);
  if (stretches.empty()) f.active_seconds = f.batch_seconds;  // no start times: batch time
  for (const auto& s : stretches) f.active_seconds += s.end - s.begin;
  if (f.active_seconds > 0) f.rows_per_second = double(f.rows) / f.active_seconds;

  // The batches that speak for the trend, as (rows done at their middle, cost per row); and
  // of those with counters, the blocks they touched per row.
  const double typical_rows = median(rows);
  std::vector<Point> points;
  std::vector<double> blocks_per_row;
  double done = 0;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const BatchSample& b = batches[i];
    const double n = double(std::max(b.rows, 1LL));
    if (b.blocks) {
      if (!f.blocks) f.blocks = BlockCounters{};
      *f.blocks += *b.blocks;
    }
    const bool full = b.asked ? b.rows >= *b.asked : n >= typical_rows / 4;
    if (full && !ramp_up(batches, i)) {
      points.push_back({done + n / 2, b.duration_ms / n});
      if (b.blocks) blocks_per_row.push_back(double(b.blocks->touched()) / n);
    }
    done += double(b.rows);
  }
  if (!blocks_per_row.empty()) {
    const auto [first, last] = quarter_medians(blocks_per_row);
    f.blocks_per_row = last;
    if (blocks_per_row.size() >= 4) f.blocks_growth = last / std::max(first, 1e-9);
  }
  if (points.empty()) return f;

  std::vector<double> costs;
  for (const auto& p : points) costs.push_back(p.y);
  const auto [first_median, last_median] = quarter_medians(costs);
  f.cost_per_row_ms = last_median;
  if (points.size() >= 4) f.growth = last_median / std::max(first_median, 1e-9);
  if (!enough_batches(points.size())) return f;

  std::vector<double> done_at;
  for (const auto& p : points) done_at.push_back(p.x);
  std::vector<Point> grouped;
  for (const auto& g : group_medians(done_at, costs, k_max_points)) grouped.push_back({g.x, g.y});
  f.trend_z = mann_kendall_z(grouped);
  const auto [slope, intercept] = theil_sen(grouped);
  std::vector<double> ys;
  for (const auto& p : grouped) ys.push_back(p.y);
  const double rise = slope * (grouped.back().x - grouped.front().x);
  const bool growing =
      f.trend_z >= k_trend_z && f.growth && *f.growth >= k_growth_ratio && rise >= 0.5 * median(ys);
  f.trend = growing ? Trend::growing : Trend::flat;
  if (growing) {
    // The line's value at the rows done so far; never below what the last quarter showed.
    f.cost_per_row_ms = std::max(intercept + slope * done, last_median);
    f.cost_slope = slope;
  }
  return f;
}

std::vector<WorkStretch> work_stretches(const std::vector<BatchSample>& batches, double p95_ms) {
  std::vector<std::pair<double, double>> spans;
  for (const auto& b : batches) {
    if (std::isnan(b.started_s)) return {};
    spans.emplace_back(b.started_s, b.started_s + b.duration_ms / 1000);
  }
  std::sort(spans.begin(), spans.end());
  // Shorter gaps are the job's own overhead, and count as time at work.
  const double pause = std::max(k_pause_seconds, 10 * p95_ms / 1000);
  std::vector<WorkStretch> stretches;
  for (const auto& [start, end] : spans) {
    if (stretches.empty() || start - stretches.back().end > pause)
      stretches.push_back({start, end});
    stretches.back().end = std::max(stretches.back().end, end);
  }
  return stretches;
}

std::vector<PointGroup> group_medians(const std::vector<double>& xs, const std::vector<double>& ys,
                                      std::size_t max_groups) {
  std::vector<PointGroup> groups;
  const std::size_t n = std::min(xs.size(), ys.size());
  const std::size_t size = (n + max_groups - 1) / std::max<std::size_t>(max_groups, 1);
  for (std::size_t i = 0; i < n; i += size) {
    const std::size_t end = std::min(n, i + size);
    double x = 0;
    for (std::size_t j = i; j < end; ++j) x += xs[j];
    groups.push_back({x / double(end - i),
                      median(std::vector<double>(ys.begin() + std::ptrdiff_t(i),
                                                 ys.begin() + std::ptrdiff_t(end))),
                      i, end});
  }
  return groups;
}

std::optional<double> eta_seconds(const JobFigures& figures, long long remaining_rows) {
  if (figures.batches == 0 || figures.batch_seconds <= 0) return std::nullopt;
  const double r = double(std::max(remaining_rows, 0LL));
  const double batch_ms = r * figures.cost_per_row_ms + figures.cost_slope * r * r / 2;
  return batch_ms / 1000 * (figures.active_seconds / figures.batch_seconds);
}

std::string human_duration(double seconds) {
  char text[64];
  if (!(seconds >= 0)) return "?";
  if (seconds < 1) {
    std::snprintf(text, sizeof text, "%.0f ms", seconds * 1000);
  } else if (seconds < 60) {
    std::snprintf(text, sizeof text, "%.1f s", seconds);
  } else if (seconds < 3600) {
    std::snprintf(text, sizeof text, "%.0f min", seconds / 60);
  } else if (seconds < 86400) {
    const long long m = (long long)(seconds / 60 + 0.5);
    std::snprintf(text, sizeof text, "%lld h %lld min", m / 60, m % 60);
  } else if (seconds < 1e12) {
    const long long h = (long long)(seconds / 3600 + 0.5);
    std::snprintf(text, sizeof text, "%lld d %lld h", h / 24, h % 24);
  } else {
    return "forever";
  }
  return text;
}

}  // namespace pgxform
