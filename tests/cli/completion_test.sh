#!/usr/bin/env bash
# Bash completion (scripts/completion/pgxform), in a non-interactive bash: it registers itself
# for pgxform, completes commands and options, completes job and list names from the jobs file
# given with -f (and from ./jobs.yaml), and knows every command and option the binary's --help
# lists, no more and no fewer.
#
# usage: completion_test.sh PGXFORM_BINARY COMPLETION_SCRIPT
set -u
binary=$1
script=$2
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# shellcheck source=/dev/null
source "$script" || fail "sourcing $script failed"
[[ $(complete -p pgxform 2>/dev/null) == "complete -F _pgxform pgxform" ]] ||
  fail "complete -p pgxform: '$(complete -p pgxform 2>&1)'"

# complete WORD...: what the completion offers for the last word of the command line.
complete_line() {
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _pgxform pgxform "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
expect() {
  local want=$1
  shift
  local got
  got=$(complete_line "$@")
  [[ $got == "$want" ]] || fail "completing '$*': got '$got', want '$want'"
}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/migration.yaml" <<'YAML'
version: 1
lists:
  - name: shop
    jobs:
      - name: customers
        table: legacy.customers
        key: id
        function: xf.customers
      - {name: orders, table: legacy.orders, key: id, function: xf.orders}
  - name: "finish"
    after: [shop]
    jobs:
      - name: analyze_all
        sql: ANALYZE
YAML
cp "$dir/migration.yaml" "$dir/jobs.yaml"

expect "status " pgxform sta
expect "rehearse repair reset resume retry-failed run " pgxform r
expect "--only " pgxform run --on
expect "analyze_all customers finish orders shop " pgxform reset -f "$dir/migration.yaml" ""
expect "customers " pgxform -f "$dir/migration.yaml" explain cu
expect "shop " pgxform run --file "$dir/migration.yaml" --only s
# Without -f: ./jobs.yaml.
(cd "$dir" && expect "orders " pgxform verify or) || failed=1
expect "--repair --reserve-connections " pgxform verify --r
expect "--repair " pgxform verify --rep
expect "batch_size= " pgxform set orders batch
expect "shop " pgxform pause -f "$dir/migration.yaml" sh

# In step with the binary: its commands, and each command's own options.
commands=$("$binary" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
for command in $commands; do
  [[ " ${_pgxform_commands//$'\n'/ } " == *" $command "* ]] ||
    fail "the completion does not know the command '$command'"
  want=$("$binary" "$command" --help | grep -oE '^ +(-[a-z] \[ )?--[a-z][a-z-]*' |
    grep -oE -- '--[a-z][a-z-]*' | grep -vxE -- '--(file|dsn|targets|target|verbose|quiet|log-format|help)' | sort | tr '\n' ' ')
  got=$(printf '%s\n' $(_pgxform_options_of "$command") | grep . | sort | tr '\n' ' ')
  [[ $got == "$want" ]] || fail "options of $command: the completion has '$got', --help '$want'"
done
# The options every command takes, which the loop above leaves out.
for option in --file --dsn --targets --target --verbose --quiet --log-format --help; do
  [[ " $_pgxform_common_options " == *" $option "* ]] ||
    fail "the completion does not offer the common option $option"
done
[[ $failed == 0 ]] && echo "ok: completion of commands, options and names, in step with --help"
exit "$failed"
