#!/usr/bin/env bash
# bench/run.sh [apply_bench.py flags]: the apply benchmark, from a fresh clone — installs missing
# packages, builds the optimised tree (preset "bench"), starts throwaway PostgreSQL 15 and
# MariaDB 10.11 (stopped on exit, whatever happens) and runs bench/apply_bench.py, which prints
# the table and writes build/bench/apply_bench.json. See bench/README.md. About 15 minutes on
# 2 cores after the build; `bench/run.sh --help` lists the flags (fewer rows, fewer scenarios).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
    exec /usr/bin/python3 bench/apply_bench.py --help
fi
test/support/deps.sh
cmake --preset bench >/dev/null
cmake --build --preset bench --target replicator apply_bench_sender
exec test/support/db/with-dbs.sh /usr/bin/python3 bench/apply_bench.py --build build/bench "$@"
