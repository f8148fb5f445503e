#!/bin/sh
# The HTML report in a real browser: headless Chromium loads a sample report (4 jobs, written by
# the hidden unit test "[.report-sample]"), runs its scripts, and must show one chart per job and
# no script error; then a screenshot of it must be a real picture. Chromium missing is a
# failure, not a skip: scripts/test installs it (Debian packages chromium, chromium-driver).
#
# usage: report_browser_test.sh UNIT_TESTS_BINARY OUTPUT_DIR
# OUTPUT_DIR keeps report.html, report.dom.html (the DOM after the scripts ran), report.png and
# chromium.log, to look at when the test fails (or when it passes).
set -u

unit_tests=$1
out=$2
jobs=4

fail() {
  echo "FAIL: $*"
  exit 1
}

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || fail "chromium is not installed (Debian: apt-get install chromium chromium-driver)"

mkdir -p "$out" || fail "cannot create $out"
rm -f "$out/report.html" "$out/report.dom.html" "$out/report.png"
report=$out/report.html
PGXFORM_REPORT_OUT=$report "$unit_tests" "[.report-sample]" >"$out/unit_tests.log" 2>&1 ||
  fail "the sample report could not be written (see $out/unit_tests.log)"
[ -s "$report" ] || fail "no report at $report"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --disable-background-networking --disable-component-update --disable-sync --no-first-run \
    --user-data-dir="$profile" "$@" 2>>"$out/chromium.log"
}
: >"$out/chromium.log"

chromium --dump-dom "file://$report" >"$out/report.dom.html" || fail "chromium --dump-dom failed (see $out/chromium.log)"
dom=$out/report.dom.html
charts=$(grep -o '<svg class="chart"' "$dom" | wc -l)
[ "$charts" -eq "$jobs" ] || fail "$charts charts in the DOM, expected $jobs (one per job)"
grep -q "data-rendered=\"$jobs\"" "$dom" || fail "the report's script did not finish: no data-rendered=\"$jobs\""
if grep -q 'id="report-error"' "$dom"; then
  fail "the report shows a script error: $(grep -o 'report script error[^<]*' "$dom")"
fi
for job in orders 'events &lt;quadratic&gt;' customers order_lines; do
  grep -q "<svg class=\"chart\" data-job=\"$job\"" "$dom" || fail "no chart for job $job"
done
grep -q 'class="warning" data-job="events &lt;quadratic&gt;"' "$dom" || fail "no warning for the growing job"

chromium --screenshot="$out/report.png" --window-size=1200,900 --hide-scrollbars "file://$report" >/dev/null ||
  fail "chromium --screenshot failed (see $out/chromium.log)"
[ -f "$out/report.png" ] || fail "no screenshot"
size=$(wc -c <"$out/report.png")
[ "$size" -gt 30000 ] || fail "the screenshot has $size bytes: a blank page?"
[ "$(head -c 8 "$out/report.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "the screenshot is no PNG"

echo "report renders in $($browser --version 2>/dev/null): $charts charts, screenshot $size bytes at $out/report.png"
