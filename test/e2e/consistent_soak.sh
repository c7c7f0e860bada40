#!/usr/bin/env bash
# consistent_soak.sh [MINUTES] [BUILD_DIR] [PROFILE]: the consistent-mode crash test for longer,
# outside the test suite: MINUTES (default 30) of faulty stream per target (PostgreSQL, then
# MariaDB) with a SIGKILL about every 10 seconds, sampled progress checks, final verification.
# PROFILE is the emulator's --profile with its flags for both targets (default: the crash
# test's, the rich profile). Starts its own throwaway servers. Build first (./test.sh,
# or cmake --build --preset ci).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
minutes=${1:-30}
build=${2:-$here/../../build/ci}
profile=${3:-}
seconds=$((minutes * 60))
kills=$((seconds / 10))
echo "soak: $minutes min per target, $kills SIGKILLs each"
exec "$here/../support/db/with-dbs.sh" "$here/consistent_crash_test.sh" \
    "$build/bin/replicator" "$build/bin/crdb-emulator" "$seconds" "$kills" ${profile:+"$profile"}
