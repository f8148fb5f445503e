#include "analysis/throughput.h"

#include <algorithm>
#include <cmath>

namespace pgxform {

namespace {

struct BatchEnd {
  double end;
  double rows;
  std::size_t stretch;
};

}  // namespace

Throughput throughput(const std::vector<BatchSample>& batches, double p95_ms) {
  Throughput out;
  if (batches.empty()) return out;
  std::vector<BatchSample> timed = batches;
  double clock = 0;
  for (auto& b : timed) {
    if (std::isnan(b.started_s)) b.started_s = clock;
    clock += b.duration_ms / 1000;
  }
  const std::vector<WorkStretch> stretches = work_stretches(timed, p95_ms);
  // Made-up start times place nothing.
  if (!std::isnan(batches.front().started_s)) out.stretches = stretches;

  // Each stretch's start in working time; the cuts between them.
  std::vector<double> offsets;
  for (std::size_t k = 0; k < stretches.size(); ++k) {
    offsets.push_back(out.span_s);
    if (k > 0) out.pauses.push_back({out.span_s, stretches[k].begin - stretches[k - 1].end});
    out.span_s += stretches[k].end - stretches[k].begin;
  }
  out.span_s = std::max(out.span_s, 1e-3);

  std::vector<BatchEnd> ends;
  for (const auto& b : timed) {
    // The stretch that holds the batch's start: the last one beginning at or before it.
    const auto after =
        std::upper_bound(stretches.begin(), stretches.end(), b.started_s,
                         [](double start, const WorkStretch& s) { return start < s.begin; });
    const std::size_t k = std::size_t(std::max<std::ptrdiff_t>(0, after - stretches.begin() - 1));
    ends.push_back({b.started_s + b.duration_ms / 1000, double(b.rows), k});
  }
  // A batch ends within its stretch, and stretches do not overlap: by their ends, the batches
  // come stretch by stretch.
  std::sort(ends.begin(), ends.end(), [](const BatchEnd& a, const BatchEnd& b) {
    return a.stretch != b.stretch ? a.stretch < b.stretch : a.end < b.end;
  });

  const std::size_t window = std::clamp<std::size_t>(batches.size() / 15, 1, 50);
  for (std::size_t first = 0; first < ends.size();) {
    const std::size_t k = ends[first].stretch;
    std::size_t last = first;
    while (last < ends.size() && ends[last].stretch == k) ++last;
    const std::size_t full = std::min(window, last - first);
    std::vector<ThroughputPoint> segment;
    double rows = 0;
    for (std::size_t i = first; i < last; ++i) {
      rows += ends[i].rows;
      if (i >= first + window) rows -= ends[i - window].rows;
      if (i + 1 < first + full) continue;
      const double since = i >= first + window ? ends[i - window].end : stretches[k].begin;
      const double rate = rows / std::max(ends[i].end - since, 1e-6);
      segment.push_back({offsets[k] + ends[i].end - stretches[k].begin, rate});
      out.top = std::max(out.top, rate);
    }
    out.segments.push_back(std::move(segment));
    first = last;
  }
  return out;
}

std::optional<double> at_work(const Throughput& throughput, double wall_s) {
  double offset = 0;
  for (std::size_t k = 0; k < throughput.stretches.size(); ++k) {
    const WorkStretch& s = throughput.stretches[k];
    if (wall_s < s.begin) return k == 0 ? std::nullopt : std::optional<double>(offset);
    if (wall_s <= s.end) return offset + wall_s - s.begin;
    offset += s.end - s.begin;
  }
  return std::nullopt;
}

}  // namespace pgxform
