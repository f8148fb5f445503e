#!/bin/bash
# A fleet run against the sum of its single runs (docs/fleet.md, issue 27): 8 databases of ROWS
# rows on the first server and 2 on a second, two lists of one job each per database:
#   - 10 single runs, one after the other, each `run --threads 2` against one database;
#   - one fleet run over the 10, `run --targets --threads 2`;
# and the fleet's wall time over the sum of the singles (the aim: <= 0.6, no idle worker while
# any target has work). Then the runner's peak RSS on fleets of 10 and of SMALL small targets.
# usage: bench/fleet_bench.sh [BINARY [ROWS [SMALL]]]
#   PG* name the first server, PGXFORM_BENCH_SERVER2 the second ("host=/tmp port=5449");
#   defaults: build/pgxform, 500000 rows, 200 small targets. Check it on small sizes with
#   bench/fleet_bench.sh build/pgxform 5000 20.
set -euo pipefail
BIN=$(realpath "${1:-build/pgxform}")
ROWS=${2:-500000}
SMALL=${3:-200}
SERVER2=${PGXFORM_BENCH_SERVER2:-}
DIR=$(mktemp -d)
export PGOPTIONS="-c client_min_messages=warning"
DBS=()
cleanup() {
  for entry in "${DBS[@]}"; do
    psql -q "${entry%%|*} dbname=postgres" -c "DROP DATABASE IF EXISTS ${entry##*|} WITH (FORCE)" || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT

# make_db SERVER NAME ROWS: a database with legacy.a/legacy.b (ROWS and ROWS/2 rows), their
# empty targets and the copying functions; SERVER a conninfo prefix ("" for PG*).
make_db() {
  psql -q "$1 dbname=postgres" -c "CREATE DATABASE $2"
  DBS+=("$1|$2")
  psql -q "$1 dbname=$2" <<SQL
CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;
CREATE TABLE legacy.a (id bigint PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
INSERT INTO legacy.a SELECT g, g, repeat('x', 60) FROM generate_series(1, $3) g;
CREATE TABLE legacy.b (id bigint PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
INSERT INTO legacy.b SELECT g, g, repeat('y', 60) FROM generate_series(1, $3 / 2) g;
CREATE TABLE target.a (id bigint, v int, pad text);
CREATE TABLE target.b (id bigint, v int, pad text);
CREATE FUNCTION xf.a(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS
  'INSERT INTO target.a SELECT id, v * 2, pad FROM legacy.a WHERE id BETWEEN lo AND hi';
CREATE FUNCTION xf.b(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS
  'INSERT INTO target.b SELECT id, v * 2, pad FROM legacy.b WHERE id BETWEEN lo AND hi';
VACUUM ANALYZE legacy.a, legacy.b;
SQL
}

# from_scratch SERVER NAME: empty targets, no state.
from_scratch() {
  psql -q "$1 dbname=$2" -c "TRUNCATE target.a, target.b; DROP SCHEMA IF EXISTS pgxform CASCADE"
}

cat > "$DIR/jobs.yaml" <<YAML
version: 1
lists:
  - name: a
    jobs: [{name: a, table: legacy.a, key: id, function: xf.a, batch_size: 5000}]
  - name: b
    jobs: [{name: b, table: legacy.b, key: id, function: xf.b, batch_size: 5000}]
YAML

now() { date +%s.%N; }

# peak_rss COMMAND...: runs it, prints its peak resident set (VmHWM) in MB.
peak_rss() {
  "$@" >/dev/null 2>"$DIR/rss.log" &
  local pid=$! peak=0 kb
  while kill -0 $pid 2>/dev/null; do
    kb=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status 2>/dev/null || echo 0)
    [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
    sleep 0.1
  done
  wait $pid || { echo "failed:"; tail -5 "$DIR/rss.log"; }
  echo "$((peak / 1024))"
}

echo "creating 10 databases of $ROWS rows (+ $((ROWS / 2)))..."
printf 'targets:\n' > "$DIR/targets.yaml"
for i in $(seq 1 10); do
  server=""
  [ "$i" -gt 8 ] && [ -n "$SERVER2" ] && server=$SERVER2
  make_db "$server" "pgxform_fleet_bench_$$_$i" "$ROWS"
  printf '  - {name: t%d, dsn: "%s dbname=%s"}\n' "$i" "$server" "pgxform_fleet_bench_$$_$i" >> "$DIR/targets.yaml"
done
[ -n "$SERVER2" ] || echo "(no PGXFORM_BENCH_SERVER2: all 10 on the first server)"

singles=0
for entry in "${DBS[@]}"; do
  start=$(now)
  "$BIN" run -q -f "$DIR/jobs.yaml" --dsn "${entry%%|*} dbname=${entry##*|}" --threads 2
  singles=$(echo "$singles + $(now) - $start" | bc)
done
for entry in "${DBS[@]}"; do from_scratch "${entry%%|*}" "${entry##*|}"; done
start=$(now)
"$BIN" run -q -f "$DIR/jobs.yaml" --targets "$DIR/targets.yaml" --threads 2
fleet=$(echo "$(now) - $start" | bc)
printf 'sum of 10 single runs: %.1f s\nfleet run:             %.1f s\nratio:                 %.2f (aim <= 0.6)\n' \
  "$singles" "$fleet" "$(echo "$fleet / $singles" | bc -l)"

for entry in "${DBS[@]}"; do from_scratch "${entry%%|*}" "${entry##*|}"; done
echo "peak RSS, fleet of 10 targets: $(peak_rss "$BIN" run -q -f "$DIR/jobs.yaml" --targets "$DIR/targets.yaml" --threads 2) MB"

echo "creating $SMALL small databases (100 rows)..."
printf 'targets:\n' > "$DIR/small.yaml"
for i in $(seq 1 "$SMALL"); do
  make_db "" "pgxform_fleet_small_$$_$i" 100
  printf '  - {name: s%d, dsn: "dbname=%s"}\n' "$i" "pgxform_fleet_small_$$_$i" >> "$DIR/small.yaml"
done
echo "peak RSS, fleet of $SMALL small targets: $(peak_rss "$BIN" run -q -f "$DIR/jobs.yaml" --targets "$DIR/small.yaml" --threads 2) MB"
start=$(now)
"$BIN" status -f "$DIR/jobs.yaml" --targets "$DIR/small.yaml" >/dev/null
printf 'status --targets over %d targets: %.1f s\n' "$SMALL" "$(echo "$(now) - $start" | bc)"
