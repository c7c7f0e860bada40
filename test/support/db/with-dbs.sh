#!/usr/bin/env bash
# with-dbs.sh COMMAND [ARGS...]: start throwaway PostgreSQL and MariaDB (db-up.sh), run COMMAND
# with their connection strings in the environment (MOLT_TEST_*), and stop them afterwards —
# on success, failure or Ctrl-C. Returns COMMAND's exit status.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
parent=/dev/shm; [ -d "$parent" ] && [ -w "$parent" ] || parent=${TMPDIR:-/tmp}
base=$(mktemp -d "$parent/molt-test-dbs.XXXXXX")
cleanup() { "$here/db-down.sh" "$base"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$here/db-up.sh" "$base" || { echo "with-dbs: the test servers did not start" >&2; exit 1; }
# shellcheck disable=SC1091
. "$base/env.sh"
export MOLT_TEST_DB_BASE=$base
"$@"
