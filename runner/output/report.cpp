#include "output/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "analysis/throughput.h"

namespace pgxform {

namespace {

// Above this many batches a chart shows medians of consecutive groups: a browser draws a few
// thousand points at ease, not a hundred thousand.
constexpr std::size_t k_max_chart_points = 1500;

std::string num(double value, int precision = 1) {
  if (!std::isfinite(value)) return "?";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", precision, value);
  return text;
}

// A number for people: 12 345 678 as "12.3M", small ones with sensible decimals.
std::string short_number(double value) {
  const double a = std::fabs(value);
  if (a >= 1e9) return num(value / 1e9, 1) + "G";
  if (a >= 1e6) return num(value / 1e6, 1) + "M";
  if (a >= 1e4) return num(value / 1e3, 0) + "k";
  if (a >= 100) return num(value, 0);
  if (a >= 10) return num(value, 1);
  if (a >= 1) return num(value, 2);
  if (a == 0) return "0";
  return num(value, 3);
}

// About `count` round tick values covering [lo, hi], and the decimals their step needs.
struct Ticks {
  std::vector<double> values;
  int decimals = 0;
};

Ticks ticks(double lo, double hi, int count) {
  Ticks out;
  if (!(hi > lo)) {
    out.values.push_back(lo);
    return out;
  }
  const double raw = (hi - lo) / count;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * magnitude) {
      step = m * magnitude;
      break;
    }
  out.decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.values.push_back(t);
  return out;
}

// A tick's label: large values shortened (12k, 1.5M), small ones with the step's decimals.
std::string tick_label(double value, int decimals) {
  if (std::fabs(value) >= 1e4) return short_number(value);
  return num(value, decimals);
}

// One panel of a chart: a plot area in SVG coordinates and the data range it shows.
struct Panel {
  double left, top, width, height;
  double x_min, x_max, y_min, y_max;
  double x(double v) const {
    return left + (x_max > x_min ? (v - x_min) / (x_max - x_min) : 0.5) * width;
  }
  double y(double v) const {
    return top + height - (y_max > y_min ? (v - y_min) / (y_max - y_min) : 0.5) * height;
  }
};

// A set-apart batch's mark: a small diamond centred on (x, y).
std::string diamond(double x, double y) {
  return "M" + num(x) + "," + num(y - 4.5) + " L" + num(x + 4) + "," + num(y) + " L" + num(x) +
         "," + num(y + 4.5) + " L" + num(x - 4) + "," + num(y) + " Z";
}

void axes(std::ostream& svg, const Panel& p, const std::string& title, const std::string& x_label,
          bool x_percent) {
  svg << "<text class=\"panel-title\" x=\"" << num(p.left) << "\" y=\"" << num(p.top - 14) << "\">"
      << html_escape(title) << "</text>\n";
  const Ticks y = ticks(p.y_min, p.y_max, 5);
  for (double t : y.values) {
    svg << "<line class=\"grid\" x1=\"" << num(p.left) << "\" x2=\"" << num(p.left + p.width)
        << "\" y1=\"" << num(p.y(t)) << "\" y2=\"" << num(p.y(t)) << "\"/>"
        << "<text class=\"tick\" text-anchor=\"end\" x=\"" << num(p.left - 6) << "\" y=\""
        << num(p.y(t) + 4) << "\">" << tick_label(t, y.decimals) << "</text>\n";
  }
  const Ticks x = ticks(p.x_min, p.x_max, 6);
  for (double t : x.values) {
    svg << "<line class=\"tick-mark\" x1=\"" << num(p.x(t)) << "\" x2=\"" << num(p.x(t))
        << "\" y1=\"" << num(p.top + p.height) << "\" y2=\"" << num(p.top + p.height + 5)
        << "\"/><text class=\"tick\" text-anchor=\"middle\" x=\"" << num(p.x(t)) << "\" y=\""
        << num(p.top + p.height + 18) << "\">"
        << (x_percent ? num(t * 100, 0) + "%" : tick_label(t, x.decimals)) << "</text>\n";
  }
  svg << "<rect class=\"frame\" x=\"" << num(p.left) << "\" y=\"" << num(p.top) << "\" width=\""
      << num(p.width) << "\" height=\"" << num(p.height) << "\"/>\n"
      << "<text class=\"axis-label\" text-anchor=\"middle\" x=\"" << num(p.left + p.width / 2)
      << "\" y=\"" << num(p.top + p.height + 36) << "\">" << html_escape(x_label) << "</text>\n";
}

// The key to a panel's marks, in a row under its axis label: each item a sample of the mark
// (drawn with the mark's own class) and what it means.
enum class Mark { point, clipped, median, set_apart, throughput, pause };
struct LegendItem {
  Mark mark;
  const char* name;  // data-item, for tests and styles
  std::string text;
};

void legend(std::ostream& svg, const Panel& p, const std::vector<LegendItem>& items) {
  double x = p.left;
  const double y = p.top + p.height + 58;
  svg << "<g class=\"legend\">";
  for (const auto& item : items) {
    svg << "<g class=\"legend-item\" data-item=\"" << item.name << "\">";
    const double cx = x + 6;
    switch (item.mark) {
      case Mark::point:
        svg << "<circle class=\"point\" cx=\"" << num(cx) << "\" cy=\"" << num(y - 4)
            << "\" r=\"3\"/>";
        break;
      case Mark::clipped:
        svg << "<path class=\"point clipped\" d=\"M" << num(cx - 4) << "," << num(y - 1) << " L"
            << num(cx + 4) << "," << num(y - 1) << " L" << num(cx) << "," << num(y - 8) << " Z\"/>";
        break;
      case Mark::set_apart:
        svg << "<path class=\"set-apart\" d=\"" << diamond(cx, y - 4) << "\"/>";
        break;
      case Mark::median:
      case Mark::throughput:
        svg << "<line class=\"" << (item.mark == Mark::median ? "median" : "throughput")
            << "\" x1=\"" << num(x) << "\" x2=\"" << num(x + 12) << "\" y1=\"" << num(y - 4)
            << "\" y2=\"" << num(y - 4) << "\"/>";
        break;
      case Mark::pause:
        svg << "<line class=\"pause\" x1=\"" << num(cx) << "\" x2=\"" << num(cx) << "\" y1=\""
            << num(y - 11) << "\" y2=\"" << num(y + 3) << "\"/>";
        break;
    }
    svg << "<text class=\"legend-text\" x=\"" << num(x + 17) << "\" y=\"" << num(y) << "\">"
        << html_escape(item.text) << "</text></g>";
    // 11 px text: about 6 px a character, and room before the next item.
    x += 17 + 6.0 * double(item.text.size()) + 18;
  }
  svg << "</g>\n";
}

struct ChartPoint {
  double x, y;      // y: ms per 1000 rows
  std::string tip;  // the point's tooltip
};

// Each batch's cost per 1000 rows against its position in the key range (or its commit
// order), with its tooltip; medians of consecutive groups when there are too many to draw.
std::vector<ChartPoint> cost_points(const JobProfile& job) {
  std::vector<ChartPoint> points;
  const auto& b = job.batches;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const double x = job.key_positions ? b[i].position : double(i + 1);
    const double y = b[i].duration_ms / double(std::max(b[i].rows, 1LL)) * 1000;
    std::string tip =
        "batch " +
        std::to_string(i < job.batch_numbers.size() ? job.batch_numbers[i] : (long long)(i + 1)) +
        ": " + std::to_string(b[i].rows) + " rows in " + num(b[i].duration_ms, 1) + " ms, " +
        num(y, 2) + " ms per 1000 rows";
    if (i < job.first_keys.size()) tip += ", first key " + job.first_keys[i];
    if (b[i].blocks)
      tip += ", " + std::to_string(b[i].blocks->touched()) + " blocks (" +
             num(double(b[i].blocks->touched()) / double(std::max(b[i].rows, 1LL)), 1) +
             " per row)";
    points.push_back({x, y, tip});
  }
  if (points.size() <= k_max_chart_points) return points;
  // Medians of consecutive groups, in commit order.
  std::vector<double> xs, ys;
  for (const auto& pt : points) {
    xs.push_back(pt.x);
    ys.push_back(pt.y);
  }
  std::vector<ChartPoint> grouped;
  for (const auto& g : group_medians(xs, ys, k_max_chart_points))
    grouped.push_back({g.x, g.y,
                       "batches " + std::to_string(g.first + 1) + " to " + std::to_string(g.end) +
                           ": median " + num(g.y, 2) + " ms per 1000 rows"});
  return grouped;
}

// The panel's scales: from 0 to the slowest point, or to twice the 90th percentile when a few
// very slow batches would flatten all the others against the axis (those are clipped).
Panel cost_scale(const Panel& frame, const std::vector<ChartPoint>& points, const JobProfile& job) {
  Panel p = frame;
  std::vector<double> ys;
  for (const auto& pt : points) ys.push_back(pt.y);
  const double top = ys.empty() ? 1 : *std::max_element(ys.begin(), ys.end());
  const double robust = percentile(ys, 90) * 2;
  p.y_min = 0;
  p.y_max = std::max(top > robust && points.size() >= 20 ? robust : top, 1e-6) * 1.05;
  p.x_min = 0;
  p.x_max = job.key_positions ? 1 : double(std::max<std::size_t>(job.batches.size(), 1));
  return p;
}

// The points, those above the scale as triangles at its top; true when any was clipped.
bool draw_cost_points(std::ostream& svg, const Panel& p, const std::vector<ChartPoint>& points) {
  bool clipped = false;
  for (const auto& pt : points) {
    if (pt.y > p.y_max) {
      clipped = true;
      const double cx = p.x(pt.x), cy = p.top + 4;
      svg << "<path class=\"point clipped\" d=\"M" << num(cx - 4) << "," << num(cy + 3) << " L"
          << num(cx + 4) << "," << num(cy + 3) << " L" << num(cx) << "," << num(cy - 4)
          << " Z\"><title>" << html_escape(pt.tip + " (above the scale)") << "</title></path>\n";
    } else {
      svg << "<circle class=\"point\" cx=\"" << num(p.x(pt.x)) << "\" cy=\"" << num(p.y(pt.y))
          << "\" r=\"2.6\"><title>" << html_escape(pt.tip) << "</title></circle>\n";
    }
  }
  return clipped;
}

// A running median along x shows the trend without the noise.
void draw_running_median(std::ostream& svg, const Panel& p, std::vector<ChartPoint> sorted) {
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const ChartPoint& a, const ChartPoint& c) { return a.x < c.x; });
  const std::size_t half = std::max<std::size_t>(1, sorted.size() / 24);
  svg << "<polyline class=\"median\" points=\"";
  for (std::size_t i = 0; i < sorted.size(); i += std::max<std::size_t>(1, half / 2)) {
    std::vector<double> window;
    for (std::size_t j = i >= half ? i - half : 0; j < std::min(sorted.size(), i + half + 1); ++j)
      window.push_back(sorted[j].y);
    svg << num(p.x(sorted[i].x)) << "," << num(p.y(std::min(percentile(window, 50), p.y_max)))
        << " ";
  }
  svg << "\"/>\n";
}

// The set-apart batches along the foot of the panel, where they fall in the key range (or
// between which batches they committed): their cost is off any scale of the job's batches.
void draw_set_apart(std::ostream& svg, const Panel& p, const JobProfile& job) {
  const std::size_t stride = std::max<std::size_t>(
      1, (job.set_apart.size() + k_max_chart_points - 1) / k_max_chart_points);
  for (std::size_t i = 0; i < job.set_apart.size(); i += stride) {
    const SetApartBatch& a = job.set_apart[i];
    const double x =
        job.key_positions && !std::isnan(a.position) ? a.position : double(a.after) + 0.5;
    const std::string tip = std::string(a.kind == BatchKind::retry ? "retry-failed" : "bisect") +
                            " range [" + a.first_key + ", " + a.last_key + "], batch " +
                            std::to_string(a.batch_no) + ": " + std::to_string(a.rows) +
                            " rows in " + num(a.duration_ms, 1) + " ms, not in the job's figures";
    svg << "<path class=\"set-apart " << batch_kind_name(a.kind) << "\" d=\""
        << diamond(p.x(std::min(x, p.x_max)), p.top + p.height - 6) << "\"><title>"
        << html_escape(tip) << "</title></path>\n";
  }
}

// The cost of each batch against its position (or order), with a running median.
void cost_panel(std::ostream& svg, const JobProfile& job, const Panel& frame) {
  const std::vector<ChartPoint> points = cost_points(job);
  const Panel p = cost_scale(frame, points, job);
  axes(svg, p, "ms per 1000 rows",
       job.key_positions ? "position in the key range" : "batch (commit order)", job.key_positions);
  if (points.empty())
    svg << "<text class=\"empty\" text-anchor=\"middle\" x=\"" << num(p.left + p.width / 2)
        << "\" y=\"" << num(p.top + p.height / 2) << "\">"
        << (job.set_apart.empty() ? "no batches recorded yet"
                                  : "only bisect and retry-failed ranges recorded")
        << "</text>\n";
  const bool clipped = draw_cost_points(svg, p, points);
  if (!points.empty()) draw_running_median(svg, p, points);
  draw_set_apart(svg, p, job);
  std::vector<LegendItem> items{{Mark::point, "batch", "batch"},
                                {Mark::median, "median", "running median"}};
  if (clipped) items.push_back({Mark::clipped, "clipped", "slower, above the scale"});
  if (!job.set_apart.empty())
    items.push_back({Mark::set_apart, "set-apart", "bisect/retry range, not in the figures"});
  legend(svg, p, items);
}

// Rows per second against working time (throughput.h): one line per stretch of work, and a
// dashed line where each pause was cut out. Of the job's own batches, as its figures: the few
// rows of a bisect's ranges, counted in a window of batches, would make a deep dip out of a
// tenth of a second. Where bisect ran, diamonds along the foot say why the line sags there.
void throughput_panel(std::ostream& svg, const JobProfile& job, const Panel& frame) {
  Panel p = frame;
  const Throughput t = throughput(job.batches, job.figures.p95_ms);
  const bool minutes = t.span_s >= 180;
  const double unit = minutes ? 60 : 1;
  p.x_min = 0;
  p.x_max = t.segments.empty() ? 1 : t.span_s / unit;
  p.y_min = 0;
  p.y_max = std::max(t.top, 1.0) * 1.1;
  const std::string since =
      t.pauses.empty() ? " since the first batch" : " at work, pauses cut out";
  axes(svg, p, "throughput, rows per second", (minutes ? "minutes" : "seconds") + since, false);
  std::vector<LegendItem> items{{Mark::throughput, "throughput", "rows per second"}};
  if (!t.pauses.empty()) items.push_back({Mark::pause, "pause", "pause, no batch ran: cut out"});
  bool bisect = false;
  const std::size_t stride = std::max<std::size_t>(
      1, (job.set_apart.size() + k_max_chart_points - 1) / k_max_chart_points);
  for (std::size_t i = 0; i < job.set_apart.size(); i += stride) {
    const SetApartBatch& a = job.set_apart[i];
    const auto at = a.kind == BatchKind::bisect ? at_work(t, a.started_s) : std::nullopt;
    if (!at) continue;
    bisect = true;
    svg << "<path class=\"set-apart bisect\" d=\"" << diamond(p.x(*at / unit), p.top + p.height - 6)
        << "\"><title>"
        << html_escape("bisect range [" + a.first_key + ", " + a.last_key +
                       "]: " + std::to_string(a.rows) + " rows in " + num(a.duration_ms, 1) + " ms")
        << "</title></path>\n";
  }
  if (bisect) items.push_back({Mark::set_apart, "bisect", "bisect ran"});
  legend(svg, p, items);
  double last_label = -1e9;
  for (const Pause& pause : t.pauses) {
    const double x = p.x(pause.at_s / unit);
    svg << "<line class=\"pause\" x1=\"" << num(x) << "\" x2=\"" << num(x) << "\" y1=\""
        << num(p.top) << "\" y2=\"" << num(p.top + p.height) << "\"><title>"
        << html_escape("paused " + human_duration(pause.wall_s) +
                       ": no batch of the job ran (stopped, killed, between runs, or waiting for"
                       " another job); cut out of the time axis")
        << "</title></line>\n";
    // Labels that would overlap are left to the tooltips.
    if (x - last_label < 44) continue;
    last_label = x;
    svg << "<text class=\"pause-label\" x=\"" << num(x + 3) << "\" y=\"" << num(p.top + 12) << "\">"
        << html_escape(human_duration(pause.wall_s)) << "</text>\n";
  }
  // A few hundred points draw the line as well as a hundred thousand.
  std::size_t total = 0;
  for (const auto& segment : t.segments) total += segment.size();
  const std::size_t step = std::max<std::size_t>(1, total / 400);
  for (const auto& segment : t.segments) {
    if (segment.size() == 1) {
      svg << "<circle class=\"throughput-dot\" cx=\"" << num(p.x(segment[0].at_s / unit))
          << "\" cy=\"" << num(p.y(segment[0].rows_per_second)) << "\" r=\"2.2\"/>\n";
      continue;
    }
    svg << "<polyline class=\"throughput\" points=\"";
    for (std::size_t i = 0; i < segment.size(); i += step)
      svg << num(p.x(segment[i].at_s / unit)) << "," << num(p.y(segment[i].rows_per_second)) << " ";
    if ((segment.size() - 1) % step != 0)
      svg << num(p.x(segment.back().at_s / unit)) << "," << num(p.y(segment.back().rows_per_second))
          << " ";
    svg << "\"/>\n";
  }
}

void chart(std::ostream& out, const JobProfile& job, std::size_t index) {
  out << "<svg class=\"chart\" data-job=\"" << html_escape(job.job) << "\" data-index=\"" << index
      << "\" viewBox=\"0 0 1100 344\" role=\"img\" aria-label=\""
      << html_escape("batches of " + job.job) << "\" xmlns=\"http://www.w3.org/2000/svg\">\n";
  cost_panel(out, job, {70, 40, 440, 230, 0, 1, 0, 1});
  throughput_panel(out, job, {640, 40, 440, 230, 0, 1, 0, 1});
  out << "</svg>\n";
}

// The summary's cells for the database's counters: "-" for a job without them.
std::string block_cells(const JobFigures& f) {
  const auto cell = [](const std::optional<double>& value, const std::string& text) {
    return "<td data-sort=\"" + (value ? num(*value, 3) : std::string("-1")) + "\">" +
           (value ? text : "-") + "</td>";
  };
  std::optional<double> hit, temp;
  if (f.blocks) {
    const BlockCounters& b = *f.blocks;
    const double shared = double(b.shared_hit + b.shared_read);
    if (shared > 0) hit = 100 * double(b.shared_hit) / shared;
    temp = double(b.temp_read + b.temp_written);
  }
  return cell(f.blocks_per_row, num(f.blocks_per_row.value_or(0))) +
         cell(f.blocks_growth, num(f.blocks_growth.value_or(0)) + "x") +
         cell(hit, num(hit.value_or(0)) + "%") + cell(temp, short_number(temp.value_or(0)));
}

// The set-apart batches, after the job's own in the summary's Batches cell: "+11", its tooltip
// saying what they are; nothing for a job without.
std::string set_apart_mark(const JobProfile& job) {
  if (job.set_apart.empty()) return "";
  std::string what;
  if (job.bisected.batches) what = std::to_string(job.bisected.batches) + " bisect";
  if (job.retried.batches)
    what += (what.empty() ? "" : " and ") + std::to_string(job.retried.batches) + " retry-failed";
  return " <span class=\"apart\" title=\"" + what +
         (job.set_apart.size() == 1 ? " batch" : " batches") +
         ", set apart from the job's figures\">+" + std::to_string(job.set_apart.size()) +
         "</span>";
}

// Under a job's chart: its set-apart batches, summed up by kind and listed (the first ones).
constexpr std::size_t k_max_listed = 30;

void set_apart_section(std::ostream& out, const JobProfile& job) {
  if (job.set_apart.empty()) return;
  out << "<div class=\"set-apart-list\"><h3>Set apart from the figures above</h3>\n"
      << "<p class=\"meta\">";
  const auto sum = [&](const SetApartFigures& f, const char* what) {
    out << f.batches << " " << what << (f.batches == 1 ? "" : "es") << ": " << f.rows << " row"
        << (f.rows == 1 ? "" : "s") << ", p50 " << num(f.p50_ms) << " ms, max " << num(f.max_ms)
        << " ms";
  };
  if (job.bisected.batches) sum(job.bisected, "bisect batch");
  if (job.bisected.batches && job.retried.batches) out << " &middot; ";
  if (job.retried.batches) sum(job.retried, "retry-failed batch");
  out << ". Ranges that bisect narrowed down around a failing key, or that retry-failed redid: "
         "mostly of a row or a few, their cost is their overhead, so the job's percentiles, "
         "rows per second, trend and ETA leave them out.</p>\n"
      << "<table class=\"set-apart\"><thead><tr><th>Batch</th><th>Kind</th><th>First key</th>"
         "<th>Last key</th><th>Rows</th><th>ms</th></tr></thead>\n<tbody>\n";
  for (std::size_t i = 0; i < std::min(job.set_apart.size(), k_max_listed); ++i) {
    const SetApartBatch& a = job.set_apart[i];
    out << "<tr><td>" << a.batch_no << "</td><td>" << batch_kind_name(a.kind) << "</td><td>"
        << html_escape(a.first_key) << "</td><td>" << html_escape(a.last_key) << "</td><td>"
        << a.rows << "</td><td>" << num(a.duration_ms) << "</td></tr>\n";
  }
  if (job.set_apart.size() > k_max_listed)
    out << "<tr><td colspan=\"6\">and " << job.set_apart.size() - k_max_listed
        << " more</td></tr>\n";
  out << "</tbody></table></div>\n";
}

std::string eta_text(const JobProfile& job) {
  if (job.status == "done") return "done";
  if (job.eta_seconds) return human_duration(*job.eta_seconds);
  return "?";
}

const char* const k_style = R"css(
:root { --ink: #1d2733; --muted: #5b6b7c; --line: #d8dee6; --accent: #2563a8; --bad: #b42318; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0; background: #f4f6f9; }
header { background: #1d2733; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c5d0dc; }
main { padding: 20px 32px 40px; max-width: 1240px; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 8px;
               padding: 16px 20px; margin: 0 0 18px; }
h2 { font-size: 17px; margin: 0 0 10px; }
.warning { border-left: 4px solid var(--bad); background: #fff4f2; padding: 10px 14px;
           margin: 8px 0; border-radius: 4px; }
.ok { color: #246b38; }
.table-wrap { overflow-x: auto; }
table.summary { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums;
                font-size: 13px; }
table.summary th, table.summary td { padding: 6px 5px; border-bottom: 1px solid var(--line);
                                     text-align: right; white-space: nowrap; }
table.summary th { cursor: pointer; user-select: none; background: #eef2f6; }
table.summary th:first-child, table.summary td:first-child,
table.summary th:nth-child(2), table.summary td:nth-child(2) { text-align: left; }
.apart { color: #8a5cc2; font-size: 12px; cursor: help; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; background: #e7edf3; color: var(--muted); }
.badge.growing { background: #fde4e1; color: var(--bad); }
.badge.flat { background: #e3f4e8; color: #246b38; }
.meta { color: var(--muted); margin: 0 0 6px; }
svg.chart { width: 100%; height: auto; display: block; }
svg .frame { fill: none; stroke: #9aa8b6; }
svg .grid { stroke: #edf0f4; }
svg .tick-mark { stroke: #9aa8b6; }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .axis-label { font-size: 12px; fill: var(--muted); }
svg .panel-title { font-size: 13px; font-weight: 600; fill: var(--ink); }
svg .point { fill: var(--accent); fill-opacity: .55; }
svg .point:hover { fill-opacity: 1; r: 5; }
svg .clipped { fill: var(--bad); fill-opacity: .9; }
svg .median { fill: none; stroke: #e08a00; stroke-width: 2.2; }
svg .throughput { fill: none; stroke: #2f8f57; stroke-width: 2; }
svg .throughput-dot { fill: #2f8f57; }
svg .pause { stroke: #8a5cc2; stroke-width: 1.4; stroke-dasharray: 4 3; }
svg .pause-label { font-size: 11px; fill: #8a5cc2; }
svg .set-apart { fill: #8a5cc2; fill-opacity: .8; }
svg .set-apart.retry { fill: #c2410c; }
svg .legend-text { font-size: 11px; fill: var(--muted); }
svg .empty { font-size: 14px; fill: var(--muted); }
h3 { font-size: 14px; margin: 14px 0 6px; }
table.set-apart { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
table.set-apart th, table.set-apart td { padding: 3px 10px 3px 0; text-align: right;
                                         border-bottom: 1px solid var(--line); }
table.set-apart th:nth-child(2), table.set-apart td:nth-child(2) { text-align: left; }
table.targets { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.targets th, table.targets td { padding: 6px 5px; text-align: right;
                                     border-bottom: 1px solid var(--line); }
table.targets th:first-child, table.targets td:first-child,
table.targets th:last-child, table.targets td:last-child { text-align: left; }
.info { min-height: 1.4em; color: var(--muted); font-size: 12px; margin: 4px 0 0; }
#report-error { background: var(--bad); color: #fff; padding: 10px 32px; }
)css";

// Marks script errors in the page itself, so that a headless browser's DOM shows them.
const char* const k_error_script = R"js(
window.addEventListener('error', function (e) {
  var box = document.getElementById('report-error');
  if (!box) {
    box = document.createElement('div');
    box.id = 'report-error';
    document.body.insertBefore(box, document.body.firstChild);
  }
  box.textContent = 'report script error: ' + (e.message || e);
});
)js";

const char* const k_script = R"js(
(function () {
  var charts = document.querySelectorAll('svg.chart');
  // The batch under the pointer, spelled out under its chart.
  charts.forEach(function (svg) {
    var info = document.getElementById('info-' + svg.getAttribute('data-index'));
    svg.addEventListener('mouseover', function (e) {
      var title = e.target.querySelector ? e.target.querySelector('title') : null;
      if (title && info) info.textContent = title.textContent;
    });
  });
  // The summary table sorts by the column clicked, numbers as numbers.
  var table = document.querySelector('table.summary');
  if (table) {
    table.querySelectorAll('th').forEach(function (th, column) {
      var ascending = true;
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column].getAttribute('data-sort'), y = b.cells[column].getAttribute('data-sort');
          var nx = parseFloat(x), ny = parseFloat(y);
          var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        ascending = !ascending;
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  var drawn = 0;
  charts.forEach(function (svg) {
    if (svg.querySelector('.frame') && svg.getBBox().width > 0) drawn++;
  });
  document.documentElement.setAttribute('data-rendered', String(drawn));
})();
)js";

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// Per job: its heading and figures, its chart, and its set-apart batches.
void job_cards(std::ostream& out, const std::vector<JobProfile>& jobs) {
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const JobProfile& job = jobs[i];
    const JobFigures& f = job.figures;
    const std::string trend = trend_name(f.trend);
    out << "<section class=\"card job\" id=\"job-" << html_escape(job.job) << "\"><h2>"
        << html_escape(job.job) << " <span class=\"badge " << trend << "\">" << trend
        << "</span></h2>\n<p class=\"meta\">list " << html_escape(job.list) << " &middot; "
        << html_escape(job.status) << " &middot; " << f.batches << " batches, " << f.rows
        << " rows, " << short_number(f.rows_per_second) << " rows/s &middot; batch p50 "
        << num(f.p50_ms) << " ms, p95 " << num(f.p95_ms) << " ms, max " << num(f.max_ms) << " ms"
        << (f.growth ? " &middot; growth " + num(*f.growth) + "x" : "");
    if (f.blocks)
      out << " &middot; " << short_number(double(f.blocks->touched())) << " blocks touched, "
          << short_number(double(f.blocks->shared_read + f.blocks->local_read))
          << " read from outside the buffers, " << short_number(double(f.blocks->temp_written))
          << " temp blocks written";
    if (job.status != "done") out << " &middot; ETA " << eta_text(job);
    if (!job.set_apart.empty())
      out << " &middot; " << job.set_apart.size() << " bisect or retry-failed batch"
          << (job.set_apart.size() == 1 ? "" : "es") << " set apart, listed below";
    out << "</p>\n";
    chart(out, job, i);
    out << "<p class=\"info\" id=\"info-" << i << "\"></p>\n";
    set_apart_section(out, job);
    out << "</section>\n";
  }
}

}  // namespace

void write_report(std::ostream& out, const ReportHeading& heading,
                  const std::vector<JobProfile>& jobs, const std::string& preface) {
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>" << html_escape(heading.title) << "</title>\n<style>" << k_style
      << "</style>\n<script>" << k_error_script << "</script>\n</head>\n<body>\n<header><h1>"
      << html_escape(heading.title) << "</h1><p>" << html_escape(heading.source) << " &middot; "
      << jobs.size() << " job" << (jobs.size() == 1 ? "" : "s") << " &middot; "
      << html_escape(heading.generated_at) << "</p></header>\n<main>\n"
      << preface;

  out << "<section class=\"card\" id=\"warnings\"><h2>Warnings</h2>\n";
  std::size_t warnings = 0;
  for (const auto& job : jobs)
    if (const auto w = trend_warning(job)) {
      out << "<div class=\"warning\" data-job=\"" << html_escape(job.job) << "\">"
          << html_escape(*w) << "</div>\n";
      ++warnings;
    }
  if (warnings == 0) out << "<p class=\"ok\">No job's cost per row grows with its progress.</p>\n";
  out << "</section>\n";

  out << "<section class=\"card\"><h2>Summary</h2>\n<div class=\"table-wrap\">"
      << "<table class=\"summary\">\n<thead><tr>"
      << "<th>Job</th><th>Status</th><th>Batches</th><th>Rows</th><th>Rows/s</th>"
      << "<th>p50 ms</th><th>p95 ms</th><th>max ms</th><th>Trend</th><th>Growth</th>"
      << "<th title=\"8 kB blocks the batches touched per row (median of the last quarter)\">"
      << "Blk/row</th><th title=\"blocks per row, last quarter over first\">Blk growth</th>"
      << "<th title=\"blocks found in shared buffers, of all shared blocks touched\">Hit %</th>"
      << "<th title=\"temporary-file blocks read and written: sorts and hashes past work_mem\">"
      << "Temp blk</th>"
      << "<th>ETA</th></tr></thead>\n<tbody>\n";
  for (const auto& job : jobs) {
    const JobFigures& f = job.figures;
    const std::string trend = trend_name(f.trend);
    out << "<tr><td data-sort=\"" << html_escape(job.job) << "\"><a href=\"#job-"
        << html_escape(job.job) << "\">" << html_escape(job.job) << "</a></td><td data-sort=\""
        << html_escape(job.status) << "\">" << html_escape(job.status) << "</td><td data-sort=\""
        << f.batches << "\">" << f.batches << set_apart_mark(job) << "</td><td data-sort=\""
        << f.rows << "\">" << f.rows << "</td><td data-sort=\"" << num(f.rows_per_second) << "\">"
        << short_number(f.rows_per_second) << "</td><td data-sort=\"" << num(f.p50_ms, 3) << "\">"
        << num(f.p50_ms) << "</td><td data-sort=\"" << num(f.p95_ms, 3) << "\">" << num(f.p95_ms)
        << "</td><td data-sort=\"" << num(f.max_ms, 3) << "\">" << num(f.max_ms)
        << "</td><td data-sort=\"" << trend << "\"><span class=\"badge " << trend << "\">" << trend
        << "</span></td><td data-sort=\"" << (f.growth ? num(*f.growth, 3) : "0") << "\">"
        << (f.growth ? num(*f.growth) + "x" : "-") << "</td>" << block_cells(f)
        << "<td data-sort=\"" << (job.eta_seconds ? num(*job.eta_seconds) : "0") << "\">"
        << eta_text(job) << "</td></tr>\n";
  }
  out << "</tbody>\n</table></div>\n</section>\n";

  job_cards(out, jobs);
  out << "</main>\n<script>" << k_script << "</script>\n</body>\n</html>\n";
}

}  // namespace pgxform
