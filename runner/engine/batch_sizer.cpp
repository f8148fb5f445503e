#include "engine/batch_sizer.h"

#include <algorithm>
#include <cmath>

#include "base/setting_limits.h"
#include "plan/jobs_file.h"

namespace pgxform {

BatchSizing sizing_of(const JobSettings& settings) {
  return {settings.batch_size, settings.min_batch_size, settings.max_batch_size,
          settings.target_batch_ms};
}

BatchSizer::BatchSizer(const BatchSizing& sizing, std::optional<double> ms_per_row)
    : m_sizing(sizing), m_size(sizing.first) {
  m_size = clamp(double(sizing.first));
  if (m_sizing.target_ms <= 0 || !ms_per_row || !(*ms_per_row > 0)) return;
  m_ms_per_row = ms_per_row;
  m_size = clamp(double(m_sizing.target_ms) / *ms_per_row);
}

long BatchSizer::clamp(double size) const {
  // Never past the limit of every batch size (setting_limits.h), whatever a caller passed: a
  // size near LONG_MAX would round to a double that no long holds.
  const double hi =
      double(std::min<long long>(std::max(m_sizing.max, m_sizing.first), k_batch_size.max));
  const double lo = std::min(double(std::min(m_sizing.min, m_sizing.first)), hi);
  if (!(size == size)) return m_size;  // NaN: keep the size
  return long(std::llround(std::clamp(size, lo, hi)));
}

void BatchSizer::set(const BatchSizing& sizing) {
  m_sizing = sizing;
  m_size = clamp(double(m_size));
}

void BatchSizer::batch_done(long long rows, double duration_ms) {
  if (m_sizing.target_ms <= 0 || rows <= 0 || !(duration_ms > 0)) return;
  const double target = double(m_sizing.target_ms);
  const double ms_per_row = duration_ms / double(rows);
  if (!m_ms_per_row || duration_ms > k_cut_over * target) {
    // The probe (nothing was known before it), or far too slow: no averaging with what came
    // before, the size follows this batch now.
    m_ms_per_row = ms_per_row;
    m_size = clamp(target / ms_per_row);
    return;
  }
  m_ms_per_row =
      m_ms_per_row ? k_smoothing * ms_per_row + (1 - k_smoothing) * *m_ms_per_row : ms_per_row;
  const double ideal = std::min(target / *m_ms_per_row, double(m_size) * k_max_growth);
  if (std::fabs(ideal - double(m_size)) > k_dead_band * double(m_size)) m_size = clamp(ideal);
}

}  // namespace pgxform
