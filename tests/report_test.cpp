// The HTML report, from synthetic profiles: one chart per job, the warnings, nothing external.
// The hidden test "[.report-sample]" writes a sample report to $PGXFORM_REPORT_OUT for the
// browser test (tests/report_browser_test.sh).
#include "report.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

using pgxform::JobProfile;

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

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
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

TEST_CASE("a sample report for the browser test", "[.report-sample]") {
  const char* path = std::getenv("PGXFORM_REPORT_OUT");
  REQUIRE(path);
  std::ofstream out(path);
  pgxform::write_report(out, {"pgxform profile", "jobs.yaml", "2026-01-01 00:00:00 UTC"},
                        sample_jobs());
  REQUIRE(out.good());
}
