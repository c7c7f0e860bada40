#!/usr/bin/env bash
# check.sh GOLDEN_DIR: every Oracle statement the dialect writes (test/golden/sql/oracle/) parses
# with Oracle's PL/SQL grammar (npm antlr4ts-sql, SQLDialect.PLSQL; parse.js). A parser is not a
# server, but it catches syntax slips before a user does. The packages come from the npm
# registry (install.sh, run by ./test.sh); without them the test fails when
# MOLT_TEST_REQUIRE_SERVERS=1 (CI) and skips (77) otherwise.
set -uo pipefail
here=$(dirname "$0")
golden=$1
if ! command -v node >/dev/null || [ ! -d "$here/node_modules/antlr4ts-sql" ]; then
    if [ "${MOLT_TEST_REQUIRE_SERVERS:-}" = 1 ]; then
        echo "FAIL: node or the grammar packages are missing: run $here/install.sh" >&2
        exit 1
    fi
    echo "SKIPPED: node or the grammar packages are missing: run $here/install.sh" >&2
    exit 77
fi
# One statement per file for the upserts and deletes (they span lines); one per line in the
# others.
whole=()
lines=()
for f in "$golden"/*.sql; do
    case $(basename "$f") in
        *.upsert.sql | *.delete.sql) whole+=("$f") ;;
        *) lines+=("$f") ;;
    esac
done
[ ${#whole[@]} -gt 0 ] && [ ${#lines[@]} -gt 0 ] || { echo "FAIL: no golden files in $golden"; exit 1; }
exec node "$here/parse.js" "${whole[@]}" --lines "${lines[@]}"
