// batch_sizer: how many keys a task's next batch takes, so that a batch lasts about
// `target_batch_ms` whatever its transform costs — large batches for a cheap transform, where
// the fixed cost of a batch (its round trips, its state writes, its COMMIT) would otherwise
// dominate; small ones for a dear transform, so that no batch holds its locks for long. Pure:
// no clock, no database.
//
// The first size comes from what is known: the cost per row of the job's recent batches (its
// last run's, of the same function version: batch_log.h, recent_ms_per_row), which sizes the
// first batch for the target at once; without such a history, batch_size, whose batch is a
// probe: its cost per row alone sizes the second batch, however far from the first.
//
// After each later batch, its cost per row (duration / rows) is smoothed into a running
// estimate (exponentially weighted, the newest batch weighing k_smoothing), and the next size
// is target / estimate, except that it
//   - grows at most k_max_growth times per batch after the probe (a transform may be cheap at
//     first and dear later: the estimate needs a few batches to follow);
//   - is cut at once, to what that batch's own cost per row gives, after a batch that took
//     more than k_cut_over times the target (a lock wait, a table that got slow), and the
//     estimate restarts from that batch;
//   - changes only when the ideal size is more than k_dead_band away from the current one,
//     so that a transform of steady cost keeps a steady size rather than wobbling with noise;
//   - stays within [min, max], widened to hold the first size, and never above the limit of
//     every batch size (setting_limits.h: k_batch_size).
// A target of 0 keeps every batch at the first size, as before time sizing.
#pragma once

#include <optional>

namespace pgxform {

struct JobSettings;

struct BatchSizing {
  long first = 10000;  // the first batch's size (batch_size:)
  long min = 100;
  long max = 1000000;
  long target_ms = 500;  // 0: fixed size
};

// A job's settings as the sizing of its batches (a run's, and verify's).
BatchSizing sizing_of(const JobSettings& settings);

constexpr double k_smoothing = 0.3;
constexpr double k_max_growth = 2.0;
constexpr double k_cut_over = 2.0;
constexpr double k_dead_band = 0.2;

class BatchSizer {
 public:
  // `ms_per_row`: what the job's history says a row costs (none: the first batch is a probe).
  // Not used with a target of 0.
  explicit BatchSizer(const BatchSizing& sizing, std::optional<double> ms_per_row = std::nullopt);

  // The size the next batch asks for.
  long size() const { return m_size; }
  // The duration batches aim at now (0: fixed size).
  long target_ms() const { return m_sizing.target_ms; }
  // The smoothed cost per row; none before the first batch of a job without history.
  std::optional<double> ms_per_row() const { return m_ms_per_row; }
  // What a batch did: its rows (which may differ from the size asked for) and its duration.
  void batch_done(long long rows, double duration_ms);
  // New settings while the task runs; the size stays unless it is out of the new range.
  void set(const BatchSizing& sizing);

 private:
  long clamp(double size) const;

  BatchSizing m_sizing;
  long m_size;
  std::optional<double> m_ms_per_row;  // the smoothed estimate
};

}  // namespace pgxform
