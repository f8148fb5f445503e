#!/bin/bash
# The long tail (issue 28): what parallel: auto gives on a small machine, paired and alternated.
#   lists   two independent lists of ROWS and ROWS/10 rows, a CPU-bound transform:
#           --threads 2 over --threads 1, with parallel: 1 and with parallel: auto
#           (aim: auto's ratio <= 0.60 on 2 cores, against ~0.9 with parallel: 1)
#   single  one job of ROWS rows, parallel: auto on --threads 2, over the single set-based
#           INSERT ... SELECT of the same transform: CPU-bound (aim <= 0.75) and light (WAL-bound)
#   ceiling what two workers can gain on this machine at all: the CPU-bound transform's two halves
#           of legacy.big as two INSERT ... SELECT at once, over the same two one after the other
#           (two vCPUs may share one core: then no split gets near 0.5)
#   skew    a key with 90 % of its rows in the top 10 % of its range, ROWS/4 rows, the CPU-bound
#           transform, parallel: auto on --threads 2: the rows on either side of the first split
#           (aim: within 20 % of each other), against those on either side of the key range's
#           middle, and the rows of each slice
# usage: bench/longtail.sh [BINARY [ROWS [ROUNDS]]]   (PG* name the server; prints medians)
# e.g. bench/longtail.sh build/pgxform 4000000 5 on a quiet machine; 20000 1 to check it runs.
set -euo pipefail
BIN=${1:-build/pgxform}
ROWS=${2:-4000000}
ROUNDS=${3:-5}
DB=pgxform_longtail_bench_$$
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"; psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB"' EXIT
export PGOPTIONS="-c client_min_messages=warning"
psql -q -d postgres -c "CREATE DATABASE $DB"
psql -q -d $DB <<SQL
CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;
CREATE TABLE legacy.big (id bigint PRIMARY KEY, a int NOT NULL, t text NOT NULL);
INSERT INTO legacy.big SELECT g, g, md5(g::text) FROM generate_series(1, $ROWS) g;
CREATE TABLE legacy.small (id bigint PRIMARY KEY, a int NOT NULL, t text NOT NULL);
INSERT INTO legacy.small SELECT g, g, md5(g::text) FROM generate_series(1, $ROWS / 10) g;
-- 90 % of the rows in the top 10 % of the key range.
CREATE TABLE legacy.skew (id bigint PRIMARY KEY, a int NOT NULL, t text NOT NULL);
INSERT INTO legacy.skew SELECT g * 90, g, md5(g::text) FROM generate_series(1, $ROWS / 40) g;
INSERT INTO legacy.skew SELECT 90 * ($ROWS / 40) + g, g, md5(g::text)
  FROM generate_series(1, $ROWS * 9 / 40) g;
CREATE TABLE target.big (id bigint, a int, h text);
CREATE TABLE target.small (id bigint, a int, h text);
CREATE TABLE target.skew (id bigint, a int, h text);
-- CPU-bound: a few md5 rounds a row; light: a plain copy.
CREATE FUNCTION xf.cpu_expr(t text) RETURNS text LANGUAGE sql IMMUTABLE AS
  'SELECT md5(md5(md5(md5(t))))';
CREATE FUNCTION xf.big(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS
  'INSERT INTO target.big SELECT id, a, xf.cpu_expr(t) FROM legacy.big WHERE id BETWEEN lo AND hi';
CREATE FUNCTION xf.small(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS
  'INSERT INTO target.small SELECT id, a, xf.cpu_expr(t) FROM legacy.small WHERE id BETWEEN lo AND hi';
CREATE FUNCTION xf.light(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS
  'INSERT INTO target.big SELECT id, a, t FROM legacy.big WHERE id BETWEEN lo AND hi';
CREATE FUNCTION xf.skew(lo bigint, hi bigint) RETURNS void LANGUAGE sql AS
  'INSERT INTO target.skew SELECT id, a, xf.cpu_expr(t) FROM legacy.skew WHERE id BETWEEN lo AND hi';
VACUUM ANALYZE legacy.big, legacy.small, legacy.skew;
SQL
jobs() {  # $1: the lists' jobs file name; $2: parallel of the big jobs (1 or auto)
  case $1 in
    lists) cat <<YAML
version: 1
lists:
  - name: big
    jobs: [{name: big, table: legacy.big, key: id, function: xf.big, parallel: $2}]
  - name: small
    jobs: [{name: small, table: legacy.small, key: id, function: xf.small}]
YAML
      ;;
    cpu | light) cat <<YAML
version: 1
lists:
  - name: big
    jobs: [{name: big, table: legacy.big, key: id, function: xf.$([[ $1 == cpu ]] && echo big || echo light), parallel: $2}]
YAML
      ;;
    skew) cat <<YAML
version: 1
lists:
  - name: skew
    jobs: [{name: skew, table: legacy.skew, key: id, function: xf.skew, parallel: $2}]
YAML
      ;;
  esac
}
fresh() {
  psql -q -d $DB -c "DROP SCHEMA IF EXISTS pgxform CASCADE" \
    -c "TRUNCATE target.big, target.small, target.skew" -c CHECKPOINT
}
seconds() {  # runs "$@"; prints the wall time in seconds
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
  awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.3f", b - a }'
}
halves() {  # $1: serial | parallel: the two halves of the CPU-bound statement
  local half=$(( ROWS / 2 )) q="INSERT INTO target.big SELECT id, a, xf.cpu_expr(t) FROM legacy.big"
  if [[ $1 == serial ]]; then
    psql -q -d $DB -c "SET synchronous_commit = off" -c "$q WHERE id <= $half"
    psql -q -d $DB -c "SET synchronous_commit = off" -c "$q WHERE id > $half"
  else
    psql -q -d $DB -c "SET synchronous_commit = off" -c "$q WHERE id <= $half" &
    psql -q -d $DB -c "SET synchronous_commit = off" -c "$q WHERE id > $half"
    wait
  fi
}
ceiling() {
  fresh
  seconds halves $1
}
run() {  # $1: jobs file kind; $2: parallel; $3: threads
  fresh
  jobs $1 $2 > $DIR/jobs.yaml
  seconds $BIN run -q -f $DIR/jobs.yaml --dsn dbname=$DB --threads $3
}
statement() {  # the single set-based statement of $1 (cpu | light)
  fresh
  local f; f=$([[ $1 == cpu ]] && echo "xf.cpu_expr(t)" || echo t)
  seconds psql -q -d $DB -c "SET synchronous_commit = off" \
    -c "INSERT INTO target.big SELECT id, a, $f FROM legacy.big"
}
echo "rows: $ROWS, rounds: $ROUNDS, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for p in 1 auto; do
    echo "lists-$p-t1 $(run lists $p 1)"
    echo "lists-$p-t2 $(run lists $p 2)"
  done
  echo "ceiling-serial $(ceiling serial)"
  echo "ceiling-parallel $(ceiling parallel)"
  for kind in cpu light; do
    echo "single-$kind-statement $(statement $kind)"
    echo "single-$kind-auto-t2 $(run $kind auto 2)"
  done
done | tee $DIR/raw.txt
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
median() { grep "^$1 " $DIR/raw.txt | awk '{print $2}' | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$(median $1)" -v b="$(median $2)" -v n="$3" 'BEGIN { printf "%-40s %.3f (%s / %s s)\n", n, a / b, a, b }'; }
ratio lists-1-t2 lists-1-t1 "two lists, parallel: 1, threads 2/1:"
ratio lists-auto-t2 lists-auto-t1 "two lists, parallel: auto, threads 2/1:"
ratio ceiling-parallel ceiling-serial "machine: two halves at once/serially:"
ratio single-cpu-auto-t2 single-cpu-statement "one job cpu, auto on 2 / statement:"
ratio single-light-auto-t2 single-light-statement "one job light, auto on 2 / statement:"
# The skewed key: a run of parallel: auto on 2 threads; the rows on either side of the first
# split (slice 1's lo_key, which no later split moves), of the key range's middle, and of each
# slice.
run skew auto 2 >/dev/null
psql -qtA -d $DB <<'SQL'
WITH first AS (SELECT lo_key::bigint AS k FROM pgxform.job_slice WHERE job = 'skew' AND slice = 1),
     middle AS (SELECT (min(id) + max(id)) / 2 AS k FROM legacy.skew),
     sides AS (
       SELECT 'first split' AS at, count(*) FILTER (WHERE s.id <= f.k) AS below,
              count(*) FILTER (WHERE s.id > f.k) AS above FROM legacy.skew s, first f
       HAVING count(*) > 0
       UNION ALL
       SELECT 'key range middle', count(*) FILTER (WHERE s.id <= m.k),
              count(*) FILTER (WHERE s.id > m.k) FROM legacy.skew s, middle m)
SELECT 'skew ' || at || ': ' || below || ' / ' || above || ' rows, max/min ' ||
       round(greatest(below, above)::numeric / greatest(1, least(below, above)), 2) FROM sides
UNION ALL
SELECT 'skew first split: none (the job ended before a worker was idle)'
WHERE NOT EXISTS (SELECT FROM first)
UNION ALL
SELECT 'skew slices: ' || count(*) || ', rows ' || string_agg(rows_done::text, ' ' ORDER BY slice)
FROM pgxform.job_slice WHERE job = 'skew';
SQL
psql -qtA -d $DB -c "SELECT 'skew check: ' || CASE WHEN (SELECT count(*) FROM (SELECT id, a,
  xf.cpu_expr(t) FROM legacy.skew EXCEPT ALL SELECT * FROM target.skew) m) = 0 AND (SELECT
  count(*) FROM target.skew) = (SELECT count(*) FROM legacy.skew) THEN 'every row once'
  ELSE 'ROWS DIFFER' END"
