#!/usr/bin/env bash
# ./test.sh — the whole test suite, from a fresh Debian 12 machine:
# installs missing packages, builds (preset "ci": -Werror, AddressSanitizer and
# UndefinedBehaviorSanitizer), starts throwaway PostgreSQL 15 and MariaDB 10.11, runs every test
# tier (unit, integration, e2e), stops the servers whatever happens, then builds the libFuzzer
# targets (preset "fuzz", clang) and runs each for a bounded time (tier "fuzz").
# Extra arguments go to ctest, e.g. ./test.sh -L unit   or   ./test.sh -R conn_url
# (with arguments, the fuzz tier runs only when they select it: ./test.sh -L fuzz). The container
# tier (deploy/Containerfile built and run, about 8 minutes) runs only when asked:
# ./test.sh -L container.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)

test/support/deps.sh
test/support/oracle-grammar/install.sh
cmake --preset ci
cmake --build --preset ci

# Integration tests fail (instead of skipping) when their servers are missing.
export MOLT_TEST_REQUIRE_SERVERS=1
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ $# -eq 0 ] || [[ " $* " != *" fuzz "* ]]; then
    selection=("$@")
    [ $# -eq 0 ] && selection=(-LE container)
    test/support/db/with-dbs.sh ctest --preset ci -j2 "${selection[@]}" 2>&1 | tee "$log" || status=1
    # Here the servers run, so nothing may skip: a skip would hide a failure (exit code 77).
    if grep -q '\*\*\*Skipped' "$log"; then
        echo "test.sh: tests were skipped although the servers were started" >&2
        status=1
    fi
fi

# Fuzzing: whole run, or when the arguments name the fuzz label.
if [ $# -eq 0 ] || [[ " $* " == *" fuzz "* ]]; then
    cmake --preset fuzz
    cmake --build --preset fuzz
    ctest --preset fuzz -L fuzz -j2 || status=$?
fi
echo "test.sh: $( [ $status = 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s"
exit $status
