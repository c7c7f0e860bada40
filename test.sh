#!/usr/bin/env bash
# ./test.sh — the whole test suite, from a fresh Debian 12 machine:
# installs missing packages, builds (preset "ci": -Werror, AddressSanitizer and
# UndefinedBehaviorSanitizer), starts throwaway PostgreSQL 15 and MariaDB 10.11, runs every test
# tier (unit, integration, e2e), and stops the servers whatever happens.
# Extra arguments go to ctest, e.g. ./test.sh -L unit   or   ./test.sh -R conn_url
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)

test/support/deps.sh
cmake --preset ci
cmake --build --preset ci

# Integration tests fail (instead of skipping) when their servers are missing.
export MOLT_TEST_REQUIRE_SERVERS=1
status=0
test/support/db/with-dbs.sh ctest --preset ci -j2 "$@" || status=$?
echo "test.sh: $( [ $status = 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s"
exit $status
