#!/bin/sh
# The man page is in step with the binary: every command that `pgxform --help` lists has a
# section (.SS) in docs/pgxform.1, every long option of `pgxform COMMAND --help` is in that
# section or in OPTIONS (the options every command takes), and groff renders the page
# without a warning (-ww).
#
# usage: man_page_test.sh PGXFORM_BINARY MAN_PAGE
set -u
binary=$1
page=$2
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

warnings=$(groff -ww -man -Tutf8 "$page" 2>&1 >/dev/null)
[ -z "$warnings" ] || fail "groff -ww warns on $page: $warnings"

commands=$("$binary" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$commands" ] || fail "pgxform --help lists no commands"

# The roff text of a section: from its .SS line to the next .SS or .SH.
section() {
  awk -v name="$1" '
    /^\.S[SH] / { inside = ($1 == ".SS" && $2 == name) }
    inside' "$page"
}
common=$(awk '/^\.SH OPTIONS/ { inside = 1; next } /^\.SH / { inside = 0 } inside' "$page")

for command in $commands; do
  roff_name=$(printf '%s' "$command" | sed 's/-/\\\\-/g')
  text=$(section "$roff_name")
  if [ -z "$text" ]; then
    fail "the man page has no section for '$command'"
    continue
  fi
  for option in $("$binary" "$command" --help | grep -oE '^ +(-[a-z] \[ )?--[a-z][a-z-]*' |
    grep -oE -- '--[a-z][a-z-]*'); do
    if ! printf '%s\n%s\n' "$text" "$common" | grep -qF -- "$(printf '%s' "$option" | sed 's/-/\\-/g')"; then
      fail "the man page does not describe $command $option"
    fi
  done
done
[ "$failed" = 0 ] && echo "ok: $(echo "$commands" | wc -w) commands and their options are in $page"
exit "$failed"
