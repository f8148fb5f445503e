#!/bin/bash
# The live display of `pgxform run` on a terminal, and `pgxform status --watch`, under tmux
# (a private server: -L) against the PostgreSQL of the PG* environment, with script(1) for the
# raw bytes the terminal got:
#   1. a run that ends: mid-run, a progress line per running job (rows, percent, rate, ETA)
#      with a log line above it; after the exit, no progress line left, the cursor visible
#      (tmux's cursor_flag) and the raw stream's last cursor escape the one that shows it;
#   2. the same run stopped by Ctrl-C: exit 3, "stopped by a signal", no block, cursor visible;
#   3. status --watch 0.5 beside a run: redrawn in place (one header on the screen), the rows
#      moving between two captures, and Ctrl-C ends it with exit 0;
#   4. status --targets --watch 0.5 beside a run, over a fleet of that database and one that
#      does not exist: the fleet's totals line, the running target among the busiest, the other
#      among the failed, redrawn in place, and Ctrl-C ends it with exit 0.
# Fails (never skips) when tmux, script or psql is missing.
# usage: live_display_test.sh PGXFORM_BINARY
set -euo pipefail

BIN=$(readlink -f "$1")
for tool in tmux script psql createdb dropdb python3; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed"; exit 1; }
done

DB=pgxform_live_display_$$
WORK=$(mktemp -d)
SOCKET=pgxform-live-display-$$
BG_PID=
t() { tmux -L "$SOCKET" "$@"; }
cleanup() {
    t kill-server 2>/dev/null || true
    if [[ -n $BG_PID ]]; then kill -INT "$BG_PID" 2>/dev/null || true; wait "$BG_PID" 2>/dev/null || true; fi
    dropdb --if-exists "$DB" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    [[ -f $WORK/pane.txt ]] && { echo "--- the pane:"; cat "$WORK/pane.txt"; }
    exit 1
}
pass() { echo "ok: $*"; }

# The pane of session $1 into pane.txt.
pane() { t capture-pane -p -t "$1" > "$WORK/pane.txt"; }
# Waits up to 60 s until the pane of session $1 has a line matching $2 (ERE).
wait_for() {
    for _ in $(seq 300); do
        pane "$1"
        grep -Eq "$2" "$WORK/pane.txt" && return 0
        sleep 0.2
    done
    fail "no line matching '$2' in session $1"
}
# Waits up to 60 s for the file $1 (a command's exit code), and prints it.
wait_file() {
    for _ in $(seq 300); do
        [[ -s $1 ]] && { cat "$1"; return 0; }
        sleep 0.2
    done
    fail "$1 never written"
}
# The raw stream $1 hid the cursor, and its last cursor escape shows it again; no progress
# line is drawn after that.
check_raw() {
    python3 - "$1" <<'PY' || fail "raw stream $1: the cursor is left hidden, or a block after the end"
import re, sys
data = open(sys.argv[1], 'rb').read()
hide, show = data.rfind(b'\x1b[?25l'), data.rfind(b'\x1b[?25h')
assert hide >= 0 and show > hide, (hide, show)
assert not re.search(rb'\n(items|other) +[0-9]+ rows', data[show:]), data[show:]
PY
}
reset_state() {
    psql -q -v ON_ERROR_STOP=1 -d "$DB" -c "DROP SCHEMA IF EXISTS pgxform CASCADE" \
        -c "TRUNCATE target.items, target.other" 2>/dev/null
}

createdb "$DB"
psql -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
CREATE SCHEMA legacy; CREATE SCHEMA target; CREATE SCHEMA xf;
CREATE TABLE legacy.items (id bigint PRIMARY KEY, v int NOT NULL);
INSERT INTO legacy.items SELECT g * 3, g FROM generate_series(1, 4000) g;
CREATE TABLE legacy.other (id bigint PRIMARY KEY, v int NOT NULL);
INSERT INTO legacy.other SELECT g, g FROM generate_series(1, 300) g;
CREATE TABLE target.items (id bigint NOT NULL, v int NOT NULL);
CREATE TABLE target.other (id bigint NOT NULL, v int NOT NULL);
CREATE FUNCTION xf.items(first_key bigint, last_key bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint; BEGIN
  PERFORM pg_sleep(0.1);
  INSERT INTO target.items SELECT id, v FROM legacy.items WHERE id BETWEEN first_key AND last_key;
  GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$;
CREATE FUNCTION xf.other(first_key bigint, last_key bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint; BEGIN
  PERFORM pg_sleep(0.1);
  INSERT INTO target.other SELECT id, v FROM legacy.other WHERE id BETWEEN first_key AND last_key;
  GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$;
ANALYZE legacy.items; ANALYZE legacy.other;
SQL
cat > "$WORK/jobs.yaml" <<'YAML'
version: 1
lists:
  - name: main
    jobs:
      - {name: items, table: legacy.items, key: id, function: xf.items, batch_size: 100, target_batch_ms: 0}
  - name: later
    after: [main]
    jobs:
      - {name: other, table: legacy.other, key: id, function: xf.other, batch_size: 50, target_batch_ms: 0}
YAML
RUN="$BIN run -f jobs.yaml --dsn dbname=$DB"
PROGRESS='^items +[0-9]+ rows +[0-9.]+ % +[0-9.]+[kM]?/s +ETA '
LEFTOVER='^(items|other) +[0-9]+ rows '

# 1. A run that ends.
t new-session -d -s run -x 150 -y 40 \
    "cd $WORK && script -q -e -c '$RUN' $WORK/raw1.txt; echo \$? > $WORK/exit1; sleep 600"
wait_for run "$PROGRESS"
log_at=$(grep -n 'info running 2 jobs of 2 lists' "$WORK/pane.txt" | head -1 | cut -d: -f1)
bar_at=$(grep -En "$PROGRESS" "$WORK/pane.txt" | head -1 | cut -d: -f1)
[[ -n $log_at && $log_at -lt $bar_at ]] || fail "the log line is not above the progress line"
[[ $(grep -Ec "$PROGRESS" "$WORK/pane.txt") == 1 ]] || fail "more than one progress line for items"
pass "mid-run: one progress line for items, the log line above it"
code=$(wait_file "$WORK/exit1")
pane run
[[ $code == 0 ]] || fail "the run exited with $code"
grep -q 'info all 2 jobs done' "$WORK/pane.txt" || fail "no final log line"
grep -q 'info other: done, 300 rows' "$WORK/pane.txt" || fail "no done line for other"
! grep -Eq "$LEFTOVER" "$WORK/pane.txt" || fail "a progress line is left after the exit"
[[ $(t display -p -t run '#{cursor_flag}') == 1 ]] || fail "the cursor is hidden after the exit"
check_raw "$WORK/raw1.txt"
pass "after the exit: no progress block left, the cursor visible"

# 2. The same run, stopped by Ctrl-C.
reset_state
t new-session -d -s stop -x 150 -y 40 \
    "cd $WORK && script -q -e -c '$RUN' $WORK/raw2.txt; echo \$? > $WORK/exit2; sleep 600"
wait_for stop "$PROGRESS"
t send-keys -t stop C-c
code=$(wait_file "$WORK/exit2")
pane stop
[[ $code == 3 ]] || fail "Ctrl-C: exit $code, not 3"
grep -q 'stopped by a signal' "$WORK/pane.txt" || fail "Ctrl-C: no stop line"
! grep -Eq "$LEFTOVER" "$WORK/pane.txt" || fail "Ctrl-C: a progress line is left"
[[ $(t display -p -t stop '#{cursor_flag}') == 1 ]] || fail "Ctrl-C: the cursor is hidden"
check_raw "$WORK/raw2.txt"
pass "Ctrl-C: exit 3, no progress block left, the cursor visible"

# 3. status --watch beside a run (on a pipe: plain lines).
reset_state
(cd "$WORK" && exec $RUN > "$WORK/bg.log" 2>&1) &
BG_PID=$!
t new-session -d -s watch -x 150 -y 40 \
    "cd $WORK && $BIN status --watch 0.5 -f jobs.yaml --dsn dbname=$DB; echo \$? > $WORK/exit3; sleep 600"
ROWS_RE='^main +items +running +[0-9]+'
wait_for watch "$ROWS_RE"
first=$(grep -E "$ROWS_RE" "$WORK/pane.txt" | awk '{print $4}')
for _ in $(seq 300); do
    pane watch
    now=$(grep -E "$ROWS_RE" "$WORK/pane.txt" | awk '{print $4}' || true)
    [[ -n $now && $now != "$first" ]] && break
    sleep 0.2
done
[[ -n $now && $now != "$first" ]] || fail "status --watch: the rows never moved from $first"
[[ $(grep -c 'every 0.5 s, at ' "$WORK/pane.txt") == 1 ]] || fail "status --watch: not redrawn in place"
pass "status --watch: rows $first, then $now, redrawn in place"
t send-keys -t watch C-c
code=$(wait_file "$WORK/exit3")
[[ $code == 0 ]] || fail "status --watch: Ctrl-C gave exit $code, not 0"
pass "status --watch: Ctrl-C ends it with exit 0"
wait "$BG_PID" || true
BG_PID=

# 4. status --targets --watch beside a run: the fleet block.
reset_state
cat > "$WORK/targets.yaml" <<YAML
targets:
  - {name: t1, dsn: "dbname=$DB"}
  - {name: t2, dsn: "dbname=${DB}_none"}
YAML
(cd "$WORK" && exec $RUN > "$WORK/bg.log" 2>&1) &
BG_PID=$!
t new-session -d -s fleet -x 150 -y 40 \
    "cd $WORK && $BIN status --watch 0.5 -f jobs.yaml --targets targets.yaml; echo \$? > $WORK/exit4; sleep 600"
wait_for fleet '^fleet: 2 targets: 0 done, 1 running, 1 failed, 0 waiting; [0-9]+ rows'
wait_for fleet '^t1 +2 +0 +1 +0 +[0-9]+'
grep -q '^busiest targets (most rows left first):' "$WORK/pane.txt" || fail "status --targets --watch: no busiest targets"
grep -Eq '^t2 .*unreachable: ' "$WORK/pane.txt" || fail "status --targets --watch: t2 is not among the failed"
[[ $(grep -c 'every 0.5 s, at ' "$WORK/pane.txt") == 1 ]] || fail "status --targets --watch: not redrawn in place"
pass "status --targets --watch: the fleet's totals, t1 the busiest, t2 failed, redrawn in place"
t send-keys -t fleet C-c
code=$(wait_file "$WORK/exit4")
[[ $code == 0 ]] || fail "status --targets --watch: Ctrl-C gave exit $code, not 0"
pass "status --targets --watch: Ctrl-C ends it with exit 0"
wait "$BG_PID" || true
BG_PID=
echo "all live display checks passed"
