#!/usr/bin/env bash
# bench/bench_parallel.sh — wall times of pgxform runs, to compare settings on this machine:
#   overhead   a no-op function vs a copying one, 10k-row batches: the runner's own cost per batch
#   lists      two independent lists of equal cost, --threads 1 vs --threads 2
#   slices     one large job, parallel: 1 vs parallel: 2 (--threads 2)
# Each figure is the median of REPEAT runs (default 3). Prints a Markdown table for
# docs/benchmarks.md. Needs a server: PG* variables (e.g. a throwaway one:
# `pg_virtualenv bench/bench_parallel.sh`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PGXFORM_BIN:-$ROOT/build/pgxform}
ROWS=${ROWS:-400000}
REPEAT=${REPEAT:-3}
DB=pgxform_bench_$$
WORK=$(mktemp -d)
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
createdb "$DB"
export PGDATABASE=$DB

psql -q -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;
CREATE TABLE legacy.a (id bigint PRIMARY KEY, payload text NOT NULL);
CREATE TABLE legacy.b (id bigint PRIMARY KEY, payload text NOT NULL);
INSERT INTO legacy.a SELECT g * 2, md5(g::text) FROM generate_series(1, $ROWS) g;
INSERT INTO legacy.b SELECT g * 2, md5(g::text) FROM generate_series(1, $ROWS) g;
CREATE TABLE target.a (id bigint, digest text);
CREATE TABLE target.b (id bigint, digest text);
-- CPU-bound work per row, like a real transform's joins and expressions.
CREATE FUNCTION xf.a(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql AS \$\$
  WITH i AS (INSERT INTO target.a SELECT id, md5(md5(md5(payload || id))) FROM legacy.a
             WHERE id BETWEEN lo AND hi RETURNING 1) SELECT count(*) FROM i \$\$;
CREATE FUNCTION xf.b(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql AS \$\$
  WITH i AS (INSERT INTO target.b SELECT id, md5(md5(md5(payload || id))) FROM legacy.b
             WHERE id BETWEEN lo AND hi RETURNING 1) SELECT count(*) FROM i \$\$;
CREATE FUNCTION xf.noop(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
ANALYZE legacy.a; ANALYZE legacy.b;
SQL

job() { # name table function parallel
  echo "      - {name: $1, table: $2, key: id, function: $3, parallel: $4}"
}
cat >"$WORK/noop.yaml" <<Y
version: 1
defaults: {batch_size: 10000}
lists:
  - name: l
    jobs:
$(job noop legacy.a xf.noop 1)
Y
cat >"$WORK/copy.yaml" <<Y
version: 1
defaults: {batch_size: 10000}
lists:
  - name: l
    jobs:
$(job copy legacy.a xf.a 1)
Y
cat >"$WORK/lists.yaml" <<Y
version: 1
defaults: {batch_size: 10000}
lists:
  - name: one
    jobs:
$(job a legacy.a xf.a 1)
  - name: two
    jobs:
$(job b legacy.b xf.b 1)
Y
for k in 1 2; do
  cat >"$WORK/slices$k.yaml" <<Y
version: 1
defaults: {batch_size: 10000}
lists:
  - name: l
    jobs:
$(job a legacy.a xf.a $k)
Y
done

reset() {
  psql -q -c "DROP SCHEMA IF EXISTS pgxform CASCADE; TRUNCATE target.a, target.b;" 2>/dev/null
  psql -q -c "CHECKPOINT" -c "VACUUM target.a, target.b" >/dev/null
}
# median_seconds FILE THREADS: the median wall time of REPEAT fresh runs
median_seconds() {
  local times=()
  for _ in $(seq "$REPEAT"); do
    reset
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN" run -q -f "$1" --threads "$2"
    t1=$(date +%s.%N)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p"
}
batches=$(((ROWS + 9999) / 10000))
noop=$(median_seconds "$WORK/noop.yaml" 1)
copy=$(median_seconds "$WORK/copy.yaml" 1)
l1=$(median_seconds "$WORK/lists.yaml" 1)
l2=$(median_seconds "$WORK/lists.yaml" 2)
s1=$(median_seconds "$WORK/slices1.yaml" 2)
s2=$(median_seconds "$WORK/slices2.yaml" 2)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "| measurement | setting | median wall time (s) | ratio |"
echo "|---|---|---|---|"
echo "| runner overhead: no-op function, $batches batches of 10k rows | --threads 1 | $noop | $(awk -v a="$noop" -v b="$batches" 'BEGIN { printf "%.1f", 1000 * a / b }') ms per batch |"
echo "| copying function, $ROWS rows | --threads 1 | $copy | overhead/copy = $(ratio "$noop" "$copy") |"
echo "| two independent lists of $ROWS rows each | --threads 1 | $l1 | |"
echo "| two independent lists of $ROWS rows each | --threads 2 | $l2 | $(ratio "$l2" "$l1") of --threads 1 |"
echo "| one job of $ROWS rows | parallel: 1 | $s1 | |"
echo "| one job of $ROWS rows | parallel: 2 | $s2 | $(ratio "$s2" "$s1") of parallel: 1 |"
