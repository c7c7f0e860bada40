#!/usr/bin/env bash
# check-deps.sh ROOT: the one-way dependency rules of README.md ("Architecture"), by includes.
set -uo pipefail
root=$1
cd "$root" || exit 1
status=0
fail() { echo "dependency rule broken: $1" >&2; printf '%s\n' "$2" >&2; status=1; }

hits=$(grep -rnE '#include *"molt/(fetch|replicator|test)/' common proto 2>/dev/null)
[ -z "$hits" ] || fail "common/ and proto/ must not include fetch/, replicator/ or test/" "$hits"

hits=$(grep -rnE '#include *"molt/(replicator|test)/' fetch 2>/dev/null)
[ -z "$hits" ] || fail "fetch/ must not include replicator/ or test/ (the binaries meet at the process boundary)" "$hits"

hits=$(grep -rnE '#include *"molt/(fetch|test)/' replicator 2>/dev/null)
[ -z "$hits" ] || fail "replicator/ must not include fetch/ or test/" "$hits"

hits=$(grep -rnE '#include *"molt/replicator/target/dialect/' replicator 2>/dev/null \
       | grep -vE '^replicator/(target/dialect|app)/')
[ -z "$hits" ] || fail "only target/dialect/ and app/ may include dialect code" "$hits"

hits=$(grep -rnE '#include *["<](soci|boost/beast|boost/asio)' replicator/core 2>/dev/null)
[ -z "$hits" ] || fail "replicator/core holds interfaces only: no SOCI, Beast or Asio" "$hits"

hits=$(grep -rnE '#include *"\.\./' common proto fetch replicator test 2>/dev/null)
[ -z "$hits" ] || fail "includes are rooted (molt/...), never ../" "$hits"
exit $status
