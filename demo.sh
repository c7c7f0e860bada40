#!/usr/bin/env bash
# ./demo.sh — the local failback demo: a CockroachDB stand-in, molt fetch --mode failback, the
# replicator, and a PostgreSQL target, all on this machine. Installs what it needs and builds
# first (preset "release").
set -euo pipefail
cd "$(dirname "$0")"

test/support/deps.sh
cmake --preset release
cmake --build --preset release

echo
build/release/bin/molt --version
build/release/bin/replicator --version
cat >&2 <<'MSG'

The failback demo is not available yet: it needs molt fetch --mode failback (which starts the
replicator and creates the changefeed), still being built.
What works today: replicator start (the HTTPS webhook sink that applies changefeeds), and the
CockroachDB stand-in crdb-emulator serve (built with the tests, see test/emulator/README.md);
test/e2e/crdb_serve_test.sh runs the two together, and ./test.sh runs the whole test suite.
MSG
exit 1
