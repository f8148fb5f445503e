#include "analysis/job_profile.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "base/output_format.h"

namespace pgxform {

namespace {

// A key's text as a number, when it is one (integer, numeric and float keys).
std::optional<double> key_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// Each batch's middle in the key range (0..1), when every key is a number and the span is
// known; else the batches keep no position and the report uses their order. Set-apart batches
// are placed alike.
bool place_batches(const ProfileInputs& in, JobProfile& p) {
  if (!in.span || in.batches.empty()) return false;
  std::vector<double> middles;
  for (const auto& b : in.batches) {
    const auto first = key_number(b.first_key), last = key_number(b.last_key);
    if (!first || !last) return false;
    middles.push_back((*first + *last) / 2);
  }
  const double width = in.span->last - in.span->first;
  const auto place = [&](double middle) {
    return width > 0 ? std::clamp((middle - in.span->first) / width, 0.0, 1.0) : 0.5;
  };
  std::size_t own = 0, apart = 0;
  for (std::size_t i = 0; i < in.batches.size(); ++i)
    if (in.batches[i].kind == BatchKind::batch)
      p.batches[own++].position = place(middles[i]);
    else
      p.set_apart[apart++].position = place(middles[i]);
  return true;
}

SetApartFigures sum_up(const std::vector<SetApartBatch>& batches, BatchKind kind) {
  SetApartFigures f;
  std::vector<double> durations;
  for (const auto& b : batches)
    if (b.kind == kind) {
      ++f.batches;
      f.rows += b.rows;
      durations.push_back(b.duration_ms);
      f.max_ms = std::max(f.max_ms, b.duration_ms);
    }
  f.p50_ms = percentile(durations, 50);
  return f;
}

}  // namespace

JobProfile compute_profile(const ProfileInputs& in) {
  JobProfile p;
  p.job = in.job;
  p.list = in.list;
  p.status = in.status;
  for (const auto& b : in.batches) {
    if (b.kind != BatchKind::batch) {
      p.set_apart.push_back({b.kind, b.batch_no, b.first_key, b.last_key, b.rows, b.duration_ms,
                             b.started_s, std::nan(""), p.batches.size()});
      continue;
    }
    BatchSample s;
    s.rows = b.rows;
    s.asked = b.asked;
    s.duration_ms = b.duration_ms;
    s.started_s = b.started_s;
    s.blocks = b.blocks;
    p.batches.push_back(s);
    p.batch_numbers.push_back(b.batch_no);
    p.first_keys.push_back(b.first_key);
  }
  p.key_positions = place_batches(in, p);
  p.figures = analyze_batches(p.batches);
  p.bisected = sum_up(p.set_apart, BatchKind::bisect);
  p.retried = sum_up(p.set_apart, BatchKind::retry);
  if (p.status != "done" && in.estimated_rows) {
    p.remaining_rows = std::max(0LL, (long long)(*in.estimated_rows) - in.rows_done);
    p.eta_seconds = eta_seconds(p.figures, *p.remaining_rows);
  }
  return p;
}

std::optional<std::string> set_apart_note(const JobProfile& job) {
  const auto count = [](const SetApartFigures& f, const std::string& what) {
    return std::to_string(f.batches) + " " + what + (f.batches == 1 ? "" : "es") + " (" +
           std::to_string(f.rows) + " row" + (f.rows == 1 ? "" : "s") + ", p50 " +
           fixed(f.p50_ms, 1) + " ms)";
  };
  std::vector<std::string> parts;
  if (job.bisected.batches) parts.push_back(count(job.bisected, "bisect batch"));
  if (job.retried.batches) parts.push_back(count(job.retried, "retry-failed batch"));
  if (parts.empty()) return std::nullopt;
  return job.job + ": its figures leave out " + parts.front() +
         (parts.size() > 1 ? " and " + parts.back() : "") +
         ": ranges that bisect narrowed down or retry-failed redid, mostly of a row or a few,"
         " whose cost is their overhead.";
}

std::optional<std::string> trend_warning(const JobProfile& job) {
  const JobFigures& f = job.figures;
  if (f.trend != Trend::growing) return std::nullopt;
  std::string text = job.job + " is growing: its cost per row rose " +
                     fixed(f.growth.value_or(0), 1) + "x from the first quarter of its " +
                     std::to_string(f.batches) +
                     " batches to the last, the signature of an O(N\xC2\xB2) job (each batch "
                     "reads what the ones before it wrote).";
  if (job.status == "done") {
    text += " It took " + human_duration(f.active_seconds) +
            "; on a table twice as large it would take about four times as long.";
  } else if (job.eta_seconds && job.remaining_rows) {
    text += " At this rate its remaining " + std::to_string(*job.remaining_rows) + " rows take " +
            human_duration(*job.eta_seconds) + " more: projected total " +
            human_duration(f.active_seconds + *job.eta_seconds) + ".";
  }
  if (f.blocks_growth && *f.blocks_growth >= k_growth_ratio)
    text += " The database agrees: the blocks it touches per row rose " +
            fixed(*f.blocks_growth, 1) + "x (to " + fixed(f.blocks_per_row.value_or(0), 1) +
            " per row), so it reads more of a growing table every batch.";
  text += " Run `pgxform explain " + job.job + "` to see which statement scans more every batch.";
  return text;
}

}  // namespace pgxform
