#!/bin/sh
# The Debian package: `cmake --build BUILD --target deb` writes pgxform_<version>_<arch>.deb;
# lintian finds no error in it; `dpkg -x` gives the binary, the man page, the bash completion,
# the docs and the sample; the extracted binary prints the project's version and runs a
# command against the server of the PG* environment; `man -l` renders the extracted page with
# no warning.
#
# usage: package_test.sh BUILD_DIR
set -u
build=$1
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

cmake --build "$build" --target deb >"$build/package.log" 2>&1 ||
  { cat "$build/package.log"; fail "cmake --build $build --target deb failed"; exit 1; }
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
deb=$(ls "$build"/pgxform_"$version"_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { fail "no pgxform_${version}_*.deb in $build"; exit 1; }
echo "package: $deb"

# lintian: no error. Its notes (-I) are listed in docs/packaging.md.
if lintian -I --fail-on error "$deb" >"$build/lintian.log" 2>&1; then
  grep -v "running with root privileges" "$build/lintian.log"
else
  cat "$build/lintian.log"
  fail "lintian found errors in $deb"
fi

# The metrics endpoint's libraries come from the binary's NEEDED entries (dpkg-shlibdeps).
depends=$(dpkg-deb -f "$deb" Depends)
case $depends in
  *libprometheus-cpp-pull*) ;;
  *) fail "the package does not depend on libprometheus-cpp-pull: $depends" ;;
esac

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg -x "$deb" "$root" || fail "dpkg -x $deb failed"
for f in usr/bin/pgxform usr/share/man/man1/pgxform.1.gz \
  usr/share/bash-completion/completions/pgxform usr/share/doc/pgxform/README.md \
  usr/share/doc/pgxform/copyright usr/share/doc/pgxform/docs/cli.md \
  usr/share/doc/pgxform/docs/grafana-dashboard.json \
  usr/share/doc/pgxform/examples/jobs.yaml usr/share/doc/pgxform/examples/sql/R__transforms.sql; do
  [ -e "$root/$f" ] || fail "the package has no /$f"
done

got=$("$root/usr/bin/pgxform" --version 2>&1)
case $got in
  *"$version"*) echo "installed binary: $got" ;;
  *) fail "the installed binary's --version says '$got', not $version" ;;
esac
# One command against the server: status of the sample's jobs reads the catalog and the state
# and writes nothing (the sample's tables are missing here: warnings, exit 0).
(cd "$root/usr/share/doc/pgxform/examples" && "$root/usr/bin/pgxform" status -f jobs.yaml) \
  >"$build/package-status.log" 2>&1 ||
  { cat "$build/package-status.log"; fail "the installed binary's status failed"; }
grep -q "^LIST " "$build/package-status.log" || fail "the installed binary's status printed no table"

warnings=$(MANWIDTH=80 man --warnings -l "$root/usr/share/man/man1/pgxform.1.gz" 2>&1 >/dev/null)
[ -z "$warnings" ] || fail "man -l warns: $warnings"
MANWIDTH=80 man -l "$root/usr/share/man/man1/pgxform.1.gz" 2>/dev/null | grep -q "retry-failed" ||
  fail "man -l renders no page"

[ "$failed" = 0 ] && echo "ok: $deb builds, passes lintian, installs and runs"
exit "$failed"
