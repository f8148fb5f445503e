#!/bin/bash
# The cost of --metrics-port on a run of many small batches: 2000 batches of 10 rows, one job,
# one thread, without and with --metrics-port (scraped once a second by curl), alternated.
# usage: bench/metrics_overhead.sh [BINARY [ROUNDS]]   (PG* name the server; prints medians)
set -euo pipefail
# The server: the PG* environment (the role must be allowed to create databases).
BIN=${1:-build/pgxform}
ROUNDS=${2:-3}
DB=pgxform_metrics_bench_$$
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"; psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB"' EXIT
export PGOPTIONS="-c client_min_messages=warning"
psql -q -d postgres -c "CREATE DATABASE $DB"
psql -q -d $DB <<SQL
CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;
CREATE TABLE legacy.src (id bigint PRIMARY KEY, a int NOT NULL);
INSERT INTO legacy.src SELECT g, g FROM generate_series(1, 20000) g;
CREATE TABLE target.dst (id bigint, a int);
CREATE FUNCTION xf.copy(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS
  'INSERT INTO target.dst SELECT id, a FROM legacy.src WHERE id BETWEEN lo AND hi';
VACUUM ANALYZE legacy.src;
SQL
cat > $DIR/jobs.yaml <<YAML
version: 1
lists:
  - name: main
    jobs:
      - {name: copy, table: legacy.src, key: id, function: xf.copy, batch_size: 10, target_batch_ms: 0}
YAML
one() {  # one run; $1: off | on
  psql -q -d $DB -c "DROP SCHEMA IF EXISTS pgxform CASCADE" -c "TRUNCATE target.dst" -c CHECKPOINT
  local args=(run -q -f $DIR/jobs.yaml --dsn dbname=$DB --threads 1) scraper=
  if [[ $1 == on ]]; then
    args+=(--metrics-port 19187)
    (while sleep 1; do curl -s -o /dev/null http://127.0.0.1:19187/metrics || true; done) &
    scraper=$!
  fi
  local t0 t1
  t0=$(date +%s.%N); $BIN "${args[@]}"; t1=$(date +%s.%N)
  [[ -n $scraper ]] && kill $scraper
  local n; n=$(psql -qtA -d $DB -c "SELECT batches_done FROM pgxform.job_state")
  awk -v a=$t0 -v b=$t1 -v m=$1 -v n=$n 'BEGIN { printf "%s %.3f %s\n", m, b - a, n }'
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then one off; one on; else one on; one off; fi
done | tee $DIR/raw.txt
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
for m in off on; do
  grep "^$m " $DIR/raw.txt | awk '{print $2}' | sort -n | awk -v m=$m '{ t[NR] = $1 } END { printf "median %s: %.3f s\n", m, t[int((NR + 1) / 2)] }'
done
