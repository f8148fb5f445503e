// The HTML report, from synthetic profiles: one chart per job, the warnings, nothing external;
// the throughput broken at pauses, the legends, bisect and retry-failed batches set apart.
// The hidden tests "[.report-sample]" (six jobs), "[.report-sample-stops]" and
// "[.report-sample-bisect]" (one job each) write a sample report to $PGXFORM_REPORT_OUT for
// the browser test (tests/report_browser_test.sh).
#include "output/report.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "analysis/job_profile.h"
#include "support/test_text.h"

using pgxform::JobProfile;

using pgxform_test::occurrences;

namespace {

// A job of `n` batches of 1000 rows whose cost per row is cost(i) ms, with 20% noise.
template <typename Cost>
JobProfile job(const std::string& name, std::size_t n, Cost cost, const std::string& status) {
  JobProfile p;
  p.job = name;
  p.list = "main";
  p.status = status;
  p.key_positions = true;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> noise(0.8, 1.2);
  double t = 1.7e9;
  for (std::size_t i = 0; i < n; ++i) {
    pgxform::BatchSample b;
    b.rows = 1000;
    b.duration_ms = cost(i) * 1000 * noise(rng);
    b.position = (double(i) + 0.5) / double(n);
    b.started_s = t;
    t += b.duration_ms / 1000 + 0.003;
    p.batches.push_back(b);
    p.batch_numbers.push_back((long long)i + 1);
    p.first_keys.push_back(std::to_string(i * 3000 + 3));
  }
  p.figures = pgxform::analyze_batches(p.batches);
  if (status != "done") {
    p.remaining_rows = 250000;
    p.eta_seconds = pgxform::eta_seconds(p.figures, *p.remaining_rows);
  }
  return p;
}

// Gives each batch of `p` the counters `blocks(i)` and analyzes it again.
template <typename Blocks>
void with_counters(JobProfile& p, Blocks blocks) {
  for (std::size_t i = 0; i < p.batches.size(); ++i) p.batches[i].blocks = blocks(i);
  p.figures = pgxform::analyze_batches(p.batches);
}

std::vector<JobProfile> sample_jobs() {
  std::vector<JobProfile> jobs;
  jobs.push_back(job(
      "orders", 120, [](std::size_t) { return 0.004; }, "done"));
  // 2 blocks per row, 3 in 4 found in shared buffers, a sort spilling 40 blocks per batch.
  with_counters(jobs.back(),
                [](std::size_t) { return pgxform::BlockCounters{1500, 500, 20, 0, 0, 0, 40, 40}; });
  jobs.push_back(job(
      "events <quadratic>", 90, [](std::size_t i) { return 0.004 * (1 + 0.08 * double(i)); },
      "running"));
  // Each batch scans what the ones before it wrote: 30 more blocks every batch.
  with_counters(jobs.back(), [](std::size_t i) {
    return pgxform::BlockCounters{1000 + 30 * (long long)i, 0, 10, 0, 0, 0, 0, 0};
  });
  auto slow = job(
      "customers", 40, [](std::size_t) { return 0.01; }, "done");
  slow.batches[17].duration_ms *= 30;  // one slow batch: a checkpoint
  slow.figures = pgxform::analyze_batches(slow.batches);
  slow.key_positions = false;
  jobs.push_back(slow);
  JobProfile empty;
  empty.job = "order_lines";
  empty.list = "orders";
  empty.status = "pending";
  jobs.push_back(empty);
  return jobs;
}

// A job stopped twice: `runs` runs of `per_run` batches of 5000 rows (about 600 ms each, 5 ms
// apart), the second started 9 minutes after the first was stopped, the third 40 minutes
// after the second was killed.
JobProfile stopped_job(std::size_t per_run = 400) {
  JobProfile p;
  p.job = "stopped_twice";
  p.list = "main";
  p.status = "running";
  p.key_positions = true;
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> noise(0.85, 1.15);
  const double idle[] = {0, 540, 2400};
  double t = 1.7e9;
  const std::size_t n = 3 * per_run;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % per_run == 0) t += idle[i / per_run];
    pgxform::BatchSample b;
    b.rows = 5000;
    b.asked = 5000;
    b.duration_ms = 600 * noise(rng);
    b.position = (double(i) + 0.5) / double(n + per_run);
    b.started_s = t;
    t += b.duration_ms / 1000 + 0.005;
    p.batches.push_back(b);
    p.batch_numbers.push_back((long long)i + 1);
    p.first_keys.push_back(std::to_string(i * 5000 + 1));
  }
  p.figures = pgxform::analyze_batches(p.batches);
  p.remaining_rows = (long long)per_run * 5000;
  p.eta_seconds = pgxform::eta_seconds(p.figures, *p.remaining_rows);
  return p;
}

// A job whose batch of keys [36001, 37000] failed on key 36873: bisect narrowed it down (each
// range that went through is logged, the key itself set aside), and retry-failed redid the key
// an hour later. Its own 100 batches of 1000 rows take about 86 ms, a bisect range 5 ms and
// 0.08 ms per row.
pgxform::ProfileInputs bisected_inputs() {
  pgxform::ProfileInputs in;
  in.job = "bisected";
  in.list = "main";
  in.status = "done";
  in.span = pgxform::KeySpan{1, 100000, std::nullopt};
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  long long batch_no = 0;
  double t = 1.7e9;
  const auto log = [&](pgxform::BatchKind kind, long long lo, long long hi, double ms) {
    pgxform::LoggedBatch b;
    b.kind = kind;
    b.batch_no = ++batch_no;
    b.first_key = std::to_string(lo);
    b.last_key = std::to_string(hi);
    b.rows = hi - lo + 1;
    if (kind == pgxform::BatchKind::batch) b.asked = 1000;
    b.duration_ms = ms * noise(rng);
    b.started_s = t;
    t += b.duration_ms / 1000 + 0.004;
    in.batches.push_back(b);
    in.rows_done += b.rows;
  };
  const long long poison = 36873;
  for (long long lo = 1; lo <= 100000; lo += 1000) {
    if (lo != 36001) {
      log(pgxform::BatchKind::batch, lo, lo + 999, 86);
      continue;
    }
    // The halves without the poisoned key go through; the one with it is halved again.
    for (long long first = lo, last = lo + 999; first < last;) {
      const long long mid = (first + last) / 2;
      const bool left = poison <= mid;
      const long long ok_lo = left ? mid + 1 : first, ok_hi = left ? last : mid;
      log(pgxform::BatchKind::bisect, ok_lo, ok_hi, 5 + 0.08 * double(ok_hi - ok_lo + 1));
      if (left)
        last = mid;
      else
        first = mid + 1;
    }
  }
  t += 3600;
  log(pgxform::BatchKind::retry, poison, poison, 6);
  return in;
}

// The sample of the browser test: sample_jobs(), a job stopped twice, and one with bisect.
std::vector<JobProfile> browser_sample() {
  std::vector<JobProfile> jobs = sample_jobs();
  jobs.push_back(stopped_job());
  jobs.push_back(pgxform::compute_profile(bisected_inputs()));
  return jobs;
}

// The sample reports of the browser test (tests/report_browser_test.sh), written to
// $PGXFORM_REPORT_OUT.
void write_sample(const std::vector<JobProfile>& jobs) {
  const char* path = std::getenv("PGXFORM_REPORT_OUT");
  REQUIRE(path);
  std::ofstream out(path);
  pgxform::write_report(out, {"pgxform profile", "jobs.yaml", "2026-01-01 00:00:00 UTC"}, jobs);
  REQUIRE(out.good());
}

// The SVG of the chart of `job` in `html`.
std::string chart_of(const std::string& html, const std::string& job) {
  const auto at = html.find("<svg class=\"chart\" data-job=\"" + job + "\"");
  REQUIRE(at != std::string::npos);
  return html.substr(at, html.find("</svg>", at) - at);
}

// The x coordinates of each <polyline class="throughput"> in `svg`, one list per polyline.
std::vector<std::vector<double>> throughput_lines(const std::string& svg) {
  std::vector<std::vector<double>> lines;
  const std::regex polyline("<polyline class=\"throughput\" points=\"([^\"]*)\"");
  for (auto m = std::sregex_iterator(svg.begin(), svg.end(), polyline); m != std::sregex_iterator();
       ++m) {
    std::vector<double> xs;
    std::istringstream points((*m)[1].str());
    std::string point;
    while (points >> point) xs.push_back(std::stod(point.substr(0, point.find(','))));
    lines.push_back(xs);
  }
  return lines;
}

}  // namespace

TEST_CASE("the report has one chart per job, the warnings and the summary") {
  std::ostringstream out;
  pgxform::write_report(out, {"pgxform profile", "jobs.yaml", "2026-01-01 00:00:00 UTC"},
                        sample_jobs());
  const std::string html = out.str();
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(occurrences(html, "<svg class=\"chart\"") == 4);
  CHECK(html.find("data-job=\"orders\"") != std::string::npos);
  CHECK(html.find("data-job=\"events &lt;quadratic&gt;\"") != std::string::npos);
  CHECK(html.find("<quadratic>") == std::string::npos);  // every name escaped
  CHECK(occurrences(html, "class=\"warning\"") == 1);
  CHECK(html.find("events &lt;quadratic&gt; is growing") != std::string::npos);
  CHECK(html.find("projected total") != std::string::npos);
  CHECK(html.find("no batches recorded yet") != std::string::npos);
  CHECK(html.find("batch (commit order)") != std::string::npos);       // customers
  CHECK(html.find("position in the key range") != std::string::npos);  // orders
  CHECK(html.find("point clipped") != std::string::npos);  // customers' slow batch, on top
  CHECK(occurrences(html, "<tr><td") == 4);
}

TEST_CASE("the summary shows the database's counters per job, and '-' for a job without") {
  std::ostringstream out;
  pgxform::write_report(out, {"pgxform profile", "jobs.yaml", "2026-01-01 00:00:00 UTC"},
                        sample_jobs());
  const std::string html = out.str();
  CHECK(html.find(">Blk/row</th>") != std::string::npos);
  CHECK(html.find(">Temp blk</th>") != std::string::npos);
  // orders: 2 blocks per row, flat; 75% hits; 120 batches of 80 temp blocks.
  CHECK(html.find("<td data-sort=\"2.000\">2.0</td><td data-sort=\"1.000\">1.0x</td>"
                  "<td data-sort=\"75.000\">75.0%</td><td data-sort=\"9600.000\">9600</td>") !=
        std::string::npos);
  // customers and order_lines have no counters.
  CHECK(occurrences(html, "<td data-sort=\"-1\">-</td>") == 8);
  // The growing job's warning cites the counters, which grew from about 1.3 to 3.4 per row.
  CHECK(html.find("The database agrees: the blocks it touches per row rose") != std::string::npos);
  // Each point's tooltip has its blocks.
  CHECK(html.find("1000 blocks (1.0 per row)") != std::string::npos);
}

TEST_CASE("the report fetches nothing: no external resource of any kind") {
  std::ostringstream out;
  pgxform::write_report(out, {}, sample_jobs());
  const std::string html = out.str();
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  // The one URL is SVG's namespace name, which no browser fetches.
  CHECK(occurrences(html, "http") == occurrences(html, "xmlns=\"http://www.w3.org/2000/svg\""));
}

TEST_CASE("a report of many thousand batches stays small") {
  std::vector<JobProfile> jobs{job(
      "big", 50000, [](std::size_t) { return 0.002; }, "done")};
  std::ostringstream out;
  pgxform::write_report(out, {}, jobs);
  CHECK(occurrences(out.str(), "<circle class=\"point\"") <= 1500);
  CHECK(out.str().size() < 1000000);
}

TEST_CASE("the throughput line breaks at an idle gap, and the idle time squeezes nothing") {
  std::ostringstream out;
  pgxform::write_report(out, {}, {stopped_job()});
  const std::string svg = chart_of(out.str(), "stopped_twice");
  // Three runs: three separate lines, never one across the 9 and 40 idle minutes.
  const auto lines = throughput_lines(svg);
  REQUIRE(lines.size() == 3);
  CHECK(occurrences(svg, "<title>paused ") == 2);
  CHECK(svg.find(">9 min</text>") != std::string::npos);
  CHECK(svg.find(">40 min</text>") != std::string::npos);
  // The panel spans x 640 to 1080; the three runs are of about equal working time, so each
  // takes about a third of it. On wall time, the first two would share the first 8%.
  const auto first_x = [](const std::vector<double>& xs) {
    return *std::min_element(xs.begin(), xs.end());
  };
  const auto last_x = [](const std::vector<double>& xs) {
    return *std::max_element(xs.begin(), xs.end());
  };
  // Each line starts once its moving window of 50 batches (30 s) is full.
  CHECK(first_x(lines[0]) == Approx(640 + 440.0 * 30 / 750).margin(10));
  CHECK(last_x(lines[0]) == Approx(640 + 440.0 / 3).margin(10));
  CHECK(first_x(lines[1]) >= last_x(lines[0]));
  CHECK(last_x(lines[1]) == Approx(640 + 2 * 440.0 / 3).margin(10));
  CHECK(first_x(lines[2]) >= last_x(lines[1]));
  // Each cut is marked where it is, between the lines.
  const std::regex pause("<line class=\"pause\" x1=\"([0-9.]+)\"[^>]*><title>paused");
  std::vector<double> cuts;
  for (auto m = std::sregex_iterator(svg.begin(), svg.end(), pause); m != std::sregex_iterator();
       ++m)
    cuts.push_back(std::stod((*m)[1].str()));
  REQUIRE(cuts.size() == 2);
  CHECK(cuts[0] == Approx(last_x(lines[0])).margin(0.2));
  CHECK(cuts[0] < first_x(lines[1]));
  CHECK(cuts[1] == Approx(last_x(lines[1])).margin(0.2));
  CHECK(cuts[1] < first_x(lines[2]));
  CHECK(last_x(lines[2]) == Approx(1080).margin(1));
  CHECK(svg.find("minutes at work, pauses cut out") != std::string::npos);
}

TEST_CASE("each chart's panels have a legend, which names the triangles above the scale") {
  std::ostringstream out;
  pgxform::write_report(out, {}, sample_jobs());
  const std::string html = out.str();
  CHECK(occurrences(html, "<g class=\"legend\">") == 2 * 4);
  // customers has a batch above the scale, orders none.
  const std::string customers = chart_of(html, "customers");
  CHECK(customers.find("point clipped") != std::string::npos);
  CHECK(customers.find("data-item=\"clipped\"") != std::string::npos);
  CHECK(customers.find(">slower, above the scale</text>") != std::string::npos);
  CHECK(chart_of(html, "orders").find("data-item=\"clipped\"") == std::string::npos);
  for (const char* item : {"batch", "median", "throughput"})
    CHECK(customers.find("data-item=\"" + std::string(item) + "\"") != std::string::npos);
  // A pause shows in the legend of the chart that has one.
  std::ostringstream stopped;
  pgxform::write_report(stopped, {}, {stopped_job(40)});
  CHECK(stopped.str().find("data-item=\"pause\"") != std::string::npos);
  CHECK(customers.find("data-item=\"pause\"") == std::string::npos);
}

TEST_CASE("bisect and retry-failed batches are set apart from the job's figures, and shown") {
  const JobProfile job = pgxform::compute_profile(bisected_inputs());
  // 99 batches of its own at about 86 ms; 10 bisect ranges and 1 retried key beside them.
  CHECK(job.figures.batches == 99);
  CHECK(job.figures.rows == 99000);
  CHECK(job.figures.p50_ms == Approx(86).epsilon(0.1));
  CHECK(job.bisected.batches == 10);
  CHECK(job.bisected.rows == 999);
  CHECK(job.retried.batches == 1);
  CHECK(job.retried.rows == 1);
  CHECK(job.figures.rows + job.bisected.rows + job.retried.rows == 100000);
  std::ostringstream out;
  pgxform::write_report(out, {}, {job});
  const std::string html = out.str();
  const std::string svg = chart_of(html, "bisected");
  // 99 points for the job's batches, 11 diamonds for the others along the foot of the cost
  // panel, and the 10 bisect ranges again along that of the throughput, where they ran. One
  // line of throughput: the retry an hour later adds neither a point nor a segment.
  CHECK(occurrences(svg, "<title>batch ") == 99);
  CHECK(occurrences(svg, "<path class=\"set-apart bisect\"") == 2 * 10);
  CHECK(occurrences(svg, "<title>bisect range [") == 2 * 10);
  CHECK(occurrences(svg, "<path class=\"set-apart retry\"") == 1);
  CHECK(svg.find("<title>retry-failed range [36873, 36873]") != std::string::npos);
  CHECK(svg.find("data-item=\"bisect\"") != std::string::npos);
  CHECK(throughput_lines(svg).size() == 1);
  CHECK(svg.find("data-item=\"set-apart\"") != std::string::npos);
  // The summary: p50 of the job's batches, and the set-apart batches counted.
  CHECK(html.find("<td data-sort=\"99\">99 <span class=\"apart\" title=\"10 bisect and 1"
                  " retry-failed batches, set apart from the job's figures\">+11</span></td>") !=
        std::string::npos);
  CHECK(html.find("Set apart from the figures above") != std::string::npos);
  CHECK(html.find("10 bisect batches: 999 rows") != std::string::npos);
  CHECK(html.find("1 retry-failed batch: 1 row") != std::string::npos);
  CHECK(occurrences(html, "<tr><td>") == 11);
}

TEST_CASE("a sample report for the browser test", "[.report-sample]") {
  write_sample(browser_sample());
}

TEST_CASE("a sample report of a job stopped twice, for the browser test",
          "[.report-sample-stops]") {
  write_sample({stopped_job()});
}

TEST_CASE("a sample report of a job with bisect, for the browser test", "[.report-sample-bisect]") {
  write_sample({pgxform::compute_profile(bisected_inputs())});
}
