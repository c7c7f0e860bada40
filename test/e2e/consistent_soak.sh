#!/usr/bin/env bash
# consistent_soak.sh [MINUTES] [BUILD_DIR] [PROFILE]: the consistent-mode crash test for longer,
# outside the test suite: MINUTES (default 30) of faulty stream per target (PostgreSQL, then
# MariaDB) with a SIGKILL about every 10 seconds and the crash test's transient network faults
# through molt-fault-proxy (target and staging: reset, refuse, latency, cut, 8 s black-hole),
# round after round (about one round of 10 faults per 50 s), each followed by the no-wedge
# check; sampled progress checks, final verification. PROFILE is the emulator's --profile with
# its flags for both targets (default: the crash test's, the rich profile). Starts its own
# throwaway servers; MOLT_CRASH_SEED=N repeats a run's schedule (its seed is printed), and
# MOLT_E2E_KEEP=DIR keeps the logs. Build first (./test.sh, or cmake --build --preset ci:
# replicator, crdb-emulator and molt-fault-proxy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
minutes=${1:-30}
build=${2:-$here/../../build/ci}
profile=${3:-}
seconds=$((minutes * 60))
kills=$((seconds / 10))
echo "soak: $minutes min per target, $kills SIGKILLs and rounds of network faults each"
exec "$here/../support/db/with-dbs.sh" "$here/consistent_crash_test.sh" \
    "$build/bin/replicator" "$build/bin/crdb-emulator" "$seconds" "$kills" ${profile:+"$profile"}
