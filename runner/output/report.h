// report: a job profile as a self-contained HTML page, for `pgxform profile --html FILE`.
//
// The page holds everything it shows: inline CSS, inline SVG drawn here, and a small inline
// script (sorting the summary table, showing the batch under the pointer). It fetches nothing,
// so that it opens from a mail attachment or an air-gapped jump host just as well.
//
// Per job it draws ONE <svg class="chart" data-job="NAME"> with two panels, each with its
// legend (<g class="legend">, one <g class="legend-item" data-item="..."> per kind of mark):
//   - the cost of each batch (ms per 1000 rows) against its position in the key range (against
//     batch order when the key is not numeric), with a running median; a batch far above the
//     others is a triangle at the top (class "clipped"), so that it does not flatten the rest;
//   - the throughput (throughput.h) against working time: one <polyline class="throughput">
//     per stretch of work, never joined across a pause, and a dashed <line class="pause"> where
//     each pause was cut out of the time axis.
// The job's figures and both series are of the job's own batches (job_profile.h). Its bisect
// and retry-failed ranges are set apart: diamonds along the foot of the cost panel (class
// "set-apart"), a "Set apart" column in the summary, and a list under the chart.
// Above the charts: the warnings (growing jobs and their projected duration) and the summary
// table. The script marks the page when it ran: <html data-rendered="N"> (N charts found); a
// script error shows as an element with id "report-error" instead, which is what the browser
// test looks for.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "analysis/job_profile.h"

namespace pgxform {

struct ReportHeading {
  std::string title = "pgxform profile";
  std::string source;        // the jobs file
  std::string generated_at;  // as text, e.g. UTC ISO 8601
};

// `preface`: HTML (escaped already) put first in the page's main part, before the warnings: a
// fleet's comparison of its targets (fleet_report.h).
void write_report(std::ostream& out, const ReportHeading& heading,
                  const std::vector<JobProfile>& jobs, const std::string& preface = "");

// Text for HTML element content and attribute values.
std::string html_escape(const std::string& text);

}  // namespace pgxform
