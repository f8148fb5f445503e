// throughput: a job's rows per second over its time at work, as the report's chart draws it.
// Pure: batches in, numbers out; report.cpp only maps them to SVG.
//
// The time axis is working time: seconds since the job's first batch with every pause cut out
// (trend.h: work_stretches, the same pauses that active_seconds leaves out), so that nine idle
// minutes between two runs neither squeeze the batches into the chart's first half-minute nor
// draw a line across a time when no batch ran. The series is one segment per stretch of work,
// never joined to the next; each cut is a Pause at the working time where it happened, with
// its length in wall time.
//
// The rate at a batch's end is the rows of the last `window` batches (1 to 50, a fifteenth of
// the job's) over the time since the end of the batch before them: a moving window, so that a
// batch ending just before or after a boundary makes no saw-tooth. The window starts afresh in
// each stretch: one that reached back across a pause would divide its rows by the idle time
// too, and show a false dip after every resume. A stretch's first points wait until the window
// is full (or the stretch has ended), since one batch alone leaves out the time between
// batches and shows a false peak.
//
// Without start times (a sample without them), batch time stands in for wall time: one
// stretch, no pause.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "analysis/trend.h"

namespace pgxform {

struct ThroughputPoint {
  double at_s;  // working time, seconds since the first batch
  double rows_per_second;
};

struct Pause {
  double at_s;    // working time where the cut is
  double wall_s;  // how long no batch ran
};

struct Throughput {
  std::vector<std::vector<ThroughputPoint>> segments;  // one per stretch of work, in time order
  std::vector<Pause> pauses;                           // between consecutive segments
  double span_s = 0;                                   // working time of the whole job
  double top = 0;                                      // the highest rate
  std::vector<WorkStretch> stretches;                  // in wall time, as the segments
};

// `p95_ms`: the p95 batch duration, which sets the shortest pause (trend.h).
Throughput throughput(const std::vector<BatchSample>& batches, double p95_ms);

// The working time of a wall-clock instant (seconds, on the batches' clock): within a stretch
// of work, its place there; within a pause, the pause's cut. None before the first batch or
// after the last (a retry-failed, long after the runs), and without start times.
std::optional<double> at_work(const Throughput& throughput, double wall_s);

}  // namespace pgxform
