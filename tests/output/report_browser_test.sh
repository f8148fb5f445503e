#!/bin/sh
# The HTML report in a real browser: headless Chromium loads three sample reports, written by
# the hidden unit tests "[.report-sample...]": six jobs (report.html), a job stopped twice
# (report-stops.html: its throughput in three lines, the 9 and 40 idle minutes cut out) and a
# job with bisect and retry-failed batches (report-bisect.html: those set apart). Each must run
# its scripts, show one chart per job and no script error; its screenshot must be a real
# picture. Chromium missing is a failure, not a skip: scripts/test installs it (Debian packages
# chromium, chromium-driver).
#
# usage: report_browser_test.sh UNIT_TESTS_BINARY OUTPUT_DIR
# OUTPUT_DIR keeps, for each sample NAME (report, report-stops, report-bisect), NAME.html,
# NAME.dom.html (the DOM after the scripts ran) and NAME.png; report-full.png is the whole
# six-job page; chromium.log. Look at the screenshots when the test fails, or when the charts
# changed: they are what an operator sees.
set -u

unit_tests=$1
out=$2

fail() {
  echo "FAIL: $*"
  exit 1
}

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || fail "chromium is not installed (Debian: apt-get install chromium chromium-driver)"

mkdir -p "$out" || fail "cannot create $out"
rm -f "$out"/report*.html "$out"/report*.png

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --disable-background-networking --disable-component-update --disable-sync --no-first-run \
    --user-data-dir="$profile" "$@" 2>>"$out/chromium.log"
}
: >"$out/chromium.log"

# sample NAME TAG JOBS: writes NAME.html with the unit test TAG, loads it, checks that its
# JOBS charts rendered without a script error; leaves its DOM in $dom.
sample() {
  name=$1
  report=$out/$1.html
  dom=$out/$1.dom.html
  PGXFORM_REPORT_OUT=$report "$unit_tests" "$2" >"$out/unit_tests.log" 2>&1 ||
    fail "the sample report $1 could not be written (see $out/unit_tests.log)"
  [ -s "$report" ] || fail "no report at $report"
  chromium --dump-dom "file://$report" >"$dom" || fail "chromium --dump-dom failed on $1 (see $out/chromium.log)"
  charts=$(grep -o '<svg class="chart"' "$dom" | wc -l)
  [ "$charts" -eq "$3" ] || fail "$1: $charts charts in the DOM, expected $3 (one per job)"
  grep -q "data-rendered=\"$3\"" "$dom" || fail "$1: the report's script did not finish: no data-rendered=\"$3\""
  if grep -q 'id="report-error"' "$dom"; then
    fail "$1: the report shows a script error: $(grep -o 'report script error[^<]*' "$dom")"
  fi
  # Each panel has its legend.
  legends=$(grep -o '<g class="legend">' "$dom" | wc -l)
  [ "$legends" -eq $(($3 * 2)) ] || fail "$1: $legends legends, expected $(($3 * 2)) (two per chart)"
}

# screenshot NAME WIDTH,HEIGHT [PNG]: a screenshot of NAME.html, a real picture.
screenshot() {
  png=$out/${3:-$1}.png
  chromium --screenshot="$png" --window-size="$2" --hide-scrollbars "file://$out/$1.html" >/dev/null ||
    fail "chromium --screenshot of $1 failed (see $out/chromium.log)"
  [ -f "$png" ] || fail "no screenshot $png"
  size=$(wc -c <"$png")
  [ "$size" -gt 30000 ] || fail "the screenshot $png has $size bytes: a blank page?"
  [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$png is no PNG"
}

sample report "[.report-sample]" 6
for job in orders 'events &lt;quadratic&gt;' customers order_lines stopped_twice bisected; do
  grep -q "<svg class=\"chart\" data-job=\"$job\"" "$dom" || fail "no chart for job $job"
done
grep -q 'class="warning" data-job="events &lt;quadratic&gt;"' "$dom" || fail "no warning for the growing job"
grep -q 'data-item="clipped"' "$dom" || fail "no legend for the batches above the scale"
screenshot report 1200,900
screenshot report 1200,4600 report-full

# Three runs, two pauses: three lines, two cuts, named in the legend.
sample report-stops "[.report-sample-stops]" 1
lines=$(grep -o '<polyline class="throughput"' "$dom" | wc -l)
[ "$lines" -eq 3 ] || fail "report-stops: $lines throughput lines, expected 3 (one per run)"
cuts=$(grep -o '<title>paused ' "$dom" | wc -l)
[ "$cuts" -eq 2 ] || fail "report-stops: $cuts pauses marked, expected 2"
grep -q 'data-item="pause"' "$dom" || fail "report-stops: no legend for the pauses"
screenshot report-stops 1200,1000

# Bisect and retry-failed batches: diamonds on the chart, and listed under it.
sample report-bisect "[.report-sample-bisect]" 1
grep -q '<path class="set-apart bisect"' "$dom" || fail "report-bisect: no bisect batch on the chart"
grep -q '<path class="set-apart retry"' "$dom" || fail "report-bisect: no retry-failed batch on the chart"
grep -q 'Set apart from the figures above' "$dom" || fail "report-bisect: the set-apart batches are not listed"
screenshot report-bisect 1200,1300

echo "the reports render in $($browser --version 2>/dev/null): screenshots in $out:" $(cd "$out" && ls ./*.png)
