# shellcheck shell=bash
# scripts/lib.sh -- helpers shared by scripts/demo and scripts/test.
# Source it; don't run it.  Every helper says what it is doing on stderr,
# prefixed with "==>".
#
#   ensure_packages [extra-pkg...]   install missing Debian packages (apt-get)
#   build DIR [cmake args...]        configure and compile into DIR
#   with_postgres CMD [ARGS...]      run CMD with a PostgreSQL server at hand
#   with_second_postgres CMD [ARGS...]  run CMD with a second throw-away cluster too
#                                    (PGXFORM_TEST_SERVER2, for the fleet tests)
#   pg_psql [psql args...]           psql for the current server, stop on error
#
# Environment:
#   PGXFORM_DSN        libpq connection string of an existing server/database;
#                      with_postgres uses it instead of a throw-away cluster
#   PGHOST, PGDATABASE, PGSERVICE (and the other libpq variables)
#                      likewise: if one of them is set, that server is used
#   PGXFORM_TEST_SERVER2  conninfo of a second server (the fleet tests' second cluster);
#                      with_second_postgres uses it instead of starting one
#   PGXFORM_BUILD_JOBS parallel compile jobs (default 2)
#   PGXFORM_BUILD_TARGET  build only this CMake target (default: all)
#   PGXFORM_BUILD_TARGETS the same for several, space-separated
#   CCACHE_DIR         where ccache keeps compiled objects (default ~/.cache/ccache); builds
#                      go through ccache when it is installed, so a machine that keeps that
#                      folder between runs rebuilds only what changed.  PGXFORM_CCACHE=0
#                      turns it off.

if [[ -n ${PGXFORM_LIB_SH_LOADED:-} ]]; then
    return 0
fi
PGXFORM_LIB_SH_LOADED=1

# The repository root, whatever the caller's working directory.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT

# Packages needed to build, test and demo pgxform on Debian 12.
PGXFORM_PACKAGES=(
    build-essential cmake pkg-config
    libpqxx-dev libboost-program-options-dev libyaml-cpp-dev libspdlog-dev catch2
    nlohmann-json3-dev prometheus-cpp-dev
    postgresql postgresql-contrib postgresql-common
    clang-format ccache ninja-build
)

# The major version of the installed PostgreSQL server (15 on Debian 12).
pg_major_version() {
    local v
    v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
    echo "${v:-15}"
}

log() {
    printf '==> %s\n' "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

# now: seconds since the epoch with milliseconds, for step timings.
now() {
    date +%s.%3N
}

# since START: "12.3 s" elapsed since START (a value of now).
since() {
    awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'
}

# as_root CMD...: run CMD as root, through sudo when we are not root.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "ERROR: need root for: $* (and sudo is not installed)"
        return 1
    fi
}

# package_installed PKG: true if dpkg knows PKG as installed (not merely
# known, or removed with its configuration files left behind).
package_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

# ensure_packages [PKG...]: install whichever of PGXFORM_PACKAGES (and the
# extra PKGs) is missing.  Runs 'apt-get update' only when something is.
# shellcheck disable=SC2120 # the extra packages are optional
ensure_packages() {
    local pkg missing=()
    if ! command -v dpkg >/dev/null 2>&1; then
        log "packages: no dpkg here (not Debian?); install these yourself: ${PGXFORM_PACKAGES[*]} $*"
        return 0
    fi
    for pkg in "${PGXFORM_PACKAGES[@]}" "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        log "packages: all $((${#PGXFORM_PACKAGES[@]} + $#)) needed packages are installed"
        return 0
    fi
    log "packages: installing ${missing[*]}"
    as_root apt-get update -q || return
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" || return
    log "packages: installed ${missing[*]}"
}

# build DIR [CMAKE_ARGS...]: configure (RelWithDebInfo) and compile the
# project into DIR (relative paths are taken from the repository root).
# PGXFORM_BUILD_TARGET=T compiles only target T (and what it needs).
build() {
    local dir=$1 name start target_args=()
    shift
    [[ $dir == /* ]] || dir=$ROOT/$dir
    name=${dir#"$ROOT"/}
    if [[ -n ${PGXFORM_BUILD_TARGET:-} ]]; then
        target_args=(--target "$PGXFORM_BUILD_TARGET")
    fi
    if [[ -n ${PGXFORM_BUILD_TARGETS:-} ]]; then
        # shellcheck disable=SC2206 # the names are space-separated on purpose
        target_args=(--target ${PGXFORM_BUILD_TARGETS})
    fi
    local launcher=()
    if [[ ${PGXFORM_CCACHE:-1} != 0 ]] && command -v ccache >/dev/null 2>&1; then
        # Paths below the repository are hashed relative to it, so clones in other folders
        # (CI's fresh checkouts) share the cache.
        export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=true
        launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
        ccache --zero-stats >/dev/null 2>&1 || true
    fi
    # Ninja where the folder is new: it compiles a layer's sources while the layers below it
    # still compile, where Make waits for each library before starting the next (runner/ is a
    # chain of eleven, so Make kept one of the two cores idle much of the build). A folder
    # configured before keeps its generator (CMake refuses to switch).
    local generator=()
    if [[ ! -f $dir/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then
        generator=(-G Ninja)
    fi
    start=$(now)
    log "build: configuring $name${*:+ ($*)}"
    cmake -S "$ROOT" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "${launcher[@]}" "$@" || return
    log "build: compiling $name${PGXFORM_BUILD_TARGET:+ (target $PGXFORM_BUILD_TARGET)} with -j${PGXFORM_BUILD_JOBS:-2}"
    cmake --build "$dir" -j "${PGXFORM_BUILD_JOBS:-2}" "${target_args[@]}" || return
    log "build: $name done in $(since "$start")${launcher[*]:+ ($(ccache_summary))}"
}

# ccache_summary: "ccache: H hits, M misses" since build zeroed the statistics.
ccache_summary() {
    ccache --print-stats 2>/dev/null | awk -F'\t' '
        $1 == "direct_cache_hit" || $1 == "preprocessed_cache_hit" { hits += $2 }
        $1 == "cache_miss" { misses += $2 }
        END { printf "ccache: %d hits, %d misses", hits, misses }'
}

# pg_describe: one line saying which server the libpq variables point at.
pg_describe() {
    if [[ -n ${PGXFORM_DSN:-} ]]; then
        log "postgres: PGXFORM_DSN is set (connection string not shown)"
    else
        log "postgres: host=${PGHOST:-(default)} port=${PGPORT:-(default)}" \
            "dbname=${PGDATABASE:-(default)} user=${PGUSER:-(default)}${PGSERVICE:+ service=$PGSERVICE}"
    fi
}

# pg_psql [ARGS...]: psql against the current server (PGXFORM_DSN if set,
# else the libpq variables), ignoring ~/.psqlrc, stopping at the first error.
pg_psql() {
    if [[ -n ${PGXFORM_DSN:-} ]]; then
        psql -X -v ON_ERROR_STOP=1 -d "$PGXFORM_DSN" "$@"
    else
        psql -X -v ON_ERROR_STOP=1 "$@"
    fi
}

# with_postgres CMD [ARGS...]: run CMD (a program or a shell function) with a
# PostgreSQL server reachable through the libpq environment variables.
#   * If PGXFORM_DSN, PGHOST, PGDATABASE or PGSERVICE is set, that server is
#     used as it is and CMD runs right here.
#   * Otherwise pg_virtualenv (postgresql-common) creates a throw-away
#     cluster of the newest installed PostgreSQL in a temporary directory,
#     exports PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, runs CMD in a child
#     bash (with set -euo pipefail, and the shell functions defined so far),
#     and drops the cluster when CMD exits.  PGXFORM_THROWAWAY_PG=1 tells CMD
#     the server is its own to wreck.
# Returns CMD's exit status.
with_postgres() {
    if [[ -n ${PGXFORM_DSN:-}${PGHOST:-}${PGDATABASE:-}${PGSERVICE:-} ]]; then
        log "postgres: using the server given by the environment"
        pg_describe
        "$@"
        return
    fi
    if ! command -v pg_virtualenv >/dev/null 2>&1; then
        log "ERROR: no server given (PGXFORM_DSN/PGHOST/PGDATABASE/PGSERVICE) and no pg_virtualenv (package postgresql-common)"
        return 1
    fi
    log "postgres: starting a throw-away cluster with pg_virtualenv"
    local start rc=0
    start=$(now)
    # The child bash only sees exported functions and variables.
    # shellcheck disable=SC2046
    export -f $(compgen -A function)
    export PGXFORM_THROWAWAY_PG=1
    # -t: cluster files in a temporary directory even as root, so nothing is
    # left in /etc/postgresql and parallel runs don't collide.  fsync is
    # already off in pg_virtualenv clusters; a larger max_wal_size avoids
    # checkpoints during bulk loads; wal_level=logical lets a test read a
    # logical replication slot (read-only commands must send it nothing);
    # max_connections=200: ctest-asan runs four tests at once, each with its
    # runners' pools, and the default 100 is what a pool's budget test counts.
    pg_virtualenv -t -o max_wal_size=2GB -o wal_level=logical -o max_connections=200 \
        bash -c 'set -euo pipefail; pg_describe; "$@"' with_postgres "$@" || rc=$?
    unset PGXFORM_THROWAWAY_PG
    log "postgres: throw-away cluster dropped after $(since "$start") (exit status $rc)"
    return "$rc"
}

# --- the second cluster (fleet tests) ---------------------------------------------------------
# with_second_postgres CMD [ARGS...]: run CMD with PGXFORM_TEST_SERVER2 naming a second
# PostgreSQL cluster, another server than the libpq environment's, for the fleet tests (a fleet
# run over two servers). Where PGXFORM_TEST_SERVER2 is set already, that server is used as it is.
# Otherwise a throw-away cluster of the same binaries as pg_virtualenv's (initdb, pg_ctl) starts
# in a private temporary folder (mode 0700, owned by the server's user): it listens on no TCP
# port, only on a unix socket in that folder, with trust authentication — so no password exists
# for it, none is written anywhere, and only its owner (and root) can connect. Its user is
# PGUSER's, so the fleet tests connect to both servers as the same user; a PGPASSWORD of the
# first server is never asked for by the second. Start-up only: about a second. The cluster is
# stopped and its folder removed when CMD ends, whatever happens (a trap on EXIT, INT and TERM
# in a subshell). Returns CMD's exit status; 1 when the cluster could not start (CMD still runs,
# without PGXFORM_TEST_SERVER2: the tests that need it then fail and say so).
with_second_postgres() {
    if [[ -n ${PGXFORM_TEST_SERVER2:-} ]]; then
        log "postgres: the second server is PGXFORM_TEST_SERVER2's (given by the environment)"
        "$@"
        return
    fi
    (
        local bin dir user as=() start rc=0 started=0
        bin=/usr/lib/postgresql/$(pg_major_version)/bin
        user=${PGUSER:-$(id -un)}
        [[ $user == root ]] && user=postgres
        dir=$(mktemp -d -t pgxform-pg2.XXXXXX) || exit 1
        if [[ $(id -u) -eq 0 ]]; then
            # initdb refuses to run as root: the cluster is the postgres user's.
            chown postgres: "$dir" && as=(runuser -u postgres --)
        fi
        # shellcheck disable=SC2317 # called by the trap below
        stop_second() {
            "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
            rm -rf "$dir"
        }
        trap stop_second EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        start=$(now)
        # Port 5432 in a private socket folder: no TCP listener, so no port to collide with.
        if "${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U "$user" --no-sync \
            >"$dir/initdb.log" 2>&1 &&
            "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -s start \
                -o "-p 5432 -k $dir -c listen_addresses='' -c fsync=off -c wal_level=logical -c max_wal_size=2GB -c max_connections=200"; then
            started=1
            export PGXFORM_TEST_SERVER2="host=$dir port=5432 user=$user"
            log "postgres: a second throw-away cluster ($PGXFORM_TEST_SERVER2) started in $(since "$start")"
        else
            log "ERROR: the second cluster did not start; its logs:"
            cat "$dir/initdb.log" "$dir/log" >&2 2>/dev/null || true
        fi
        "$@" || rc=$?
        ((started == 1)) || rc=1
        log "postgres: dropping the second throw-away cluster (exit status $rc)"
        exit "$rc"
    )
}
