// status --watch's frames (status_watch.h), without a database: redrawn in place on a terminal,
// appended after a blank line elsewhere, one JSON line each with --json.
#include "commands/status_watch.h"

#include <catch2/catch.hpp>

#include "support/test_json.h"

namespace {

pgxform::StatusReport one_row() {
  pgxform::StatusRow row;
  row.state.job = "items";
  row.state.list = "main";
  row.state.status = "running";
  row.state.rows_done = 1200;
  row.rows_per_s = 40;
  return {{row}, {}};
}

pgxform::StatusOptions watch_options(pgxform::StatusFormat format) {
  pgxform::StatusOptions o;
  o.format = format;
  o.watch_seconds = 2;
  return o;
}

}  // namespace

TEST_CASE("a watch frame on a terminal starts at the top left and clears the screen below") {
  const std::string frame =
      pgxform::watch_frame(watch_options(pgxform::StatusFormat::table), one_row(), "16:20:01",
                           pgxform::WatchScreen::redraw);
  CHECK(frame.rfind("\x1b[H\x1b[J", 0) == 0);
  CHECK_THAT(frame, Catch::Contains("every 2 s, at 16:20:01 (Ctrl-C to stop)\n\nLIST"));
  CHECK_THAT(frame, Catch::Contains("items"));
}

TEST_CASE("a watch frame off a terminal has no escapes and ends with a blank line") {
  const std::string frame =
      pgxform::watch_frame(watch_options(pgxform::StatusFormat::table), one_row(), "16:20:01",
                           pgxform::WatchScreen::append);
  CHECK(frame.find('\x1b') == std::string::npos);
  CHECK(frame.size() > 2);
  CHECK(frame.substr(frame.size() - 2) == "\n\n");
}

TEST_CASE("a watch frame with --json is one JSON document on one line") {
  const std::string frame =
      pgxform::watch_frame(watch_options(pgxform::StatusFormat::json), one_row(), "16:20:01",
                           pgxform::WatchScreen::redraw);
  CHECK(frame.find('\n') == frame.size() - 1);
  CHECK(frame.find('\x1b') == std::string::npos);
  const auto doc = pgxform_test::parse_json(frame);
  CHECK(doc.at("jobs").at(0).at("rows_per_s") == 40.0);
}
