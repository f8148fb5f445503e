#include "job_profile.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "output_format.h"

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
// known; else the batches keep no position and the report uses their order.
bool place_batches(const ProfileInputs& in, std::vector<BatchSample>& samples) {
  if (!in.span || in.batches.empty()) return false;
  std::vector<double> middles;
  for (const auto& b : in.batches) {
    const auto first = key_number(b.first_key), last = key_number(b.last_key);
    if (!first || !last) return false;
    middles.push_back((*first + *last) / 2);
  }
  const double width = in.span->last - in.span->first;
  for (std::size_t i = 0; i < samples.size(); ++i)
    samples[i].position =
        width > 0 ? std::clamp((middles[i] - in.span->first) / width, 0.0, 1.0) : 0.5;
  return true;
}

}  // namespace

JobProfile compute_profile(const ProfileInputs& in) {
  JobProfile p;
  p.job = in.job;
  p.list = in.list;
  p.status = in.status;
  for (const auto& b : in.batches) {
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
  p.key_positions = place_batches(in, p.batches);
  p.figures = analyze_batches(p.batches);
  if (p.status != "done" && in.estimated_rows) {
    p.remaining_rows = std::max(0LL, (long long)(*in.estimated_rows) - in.rows_done);
    p.eta_seconds = eta_seconds(p.figures, *p.remaining_rows);
  }
  return p;
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
