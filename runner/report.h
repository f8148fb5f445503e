// report: a job profile as a self-contained HTML page, for `pgxform profile --html FILE`.
//
// The page holds everything it shows: inline CSS, inline SVG drawn here, and a small inline
// script (sorting the summary table, showing the batch under the pointer). It fetches nothing,
// so that it opens from a mail attachment or an air-gapped jump host just as well.
//
// Per job it draws ONE <svg class="chart" data-job="NAME"> with two panels: the cost of each
// batch (ms per 1000 rows) against its position in the key range (against batch order when the
// key is not numeric), and the throughput over time. Above the charts: the warnings (growing
// jobs and their projected duration) and the summary table. The script marks the page when it
// ran: <html data-rendered="N"> (N charts found); a script error shows as an element with id
// "report-error" instead, which is what the browser test looks for.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "job_profile.h"

namespace pgxform {

struct ReportHeading {
  std::string title = "pgxform profile";
  std::string source;        // the jobs file
  std::string generated_at;  // as text, e.g. UTC ISO 8601
};

void write_report(std::ostream& out, const ReportHeading& heading,
                  const std::vector<JobProfile>& jobs);

// Text for HTML element content and attribute values.
std::string html_escape(const std::string& text);

}  // namespace pgxform
