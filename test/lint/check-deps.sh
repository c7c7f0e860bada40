#!/usr/bin/env bash
# check-deps.sh ROOT: the one-way dependency rules of README.md ("Architecture") and of
# replicator/README.md's table ("may depend on"), by includes.
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

hits=$(grep -rnE '#include *"\.\./' common proto fetch replicator test 2>/dev/null)
[ -z "$hits" ] || fail "includes are rooted (molt/...), never ../" "$hits"

# --- replicator/ subsystems (replicator/README.md, column "may depend on").
# module_of_file PATH: the subsystem a file under replicator/ belongs to.
module_of_file() {
    case $1 in
        replicator/main.cpp | replicator/app/* | replicator/include/molt/replicator/app/* | \
            replicator/include/molt/replicator/cli.hpp) echo app ;;
        replicator/server/*) echo server ;;
        replicator/source/cdc/*) echo source_cdc ;;
        replicator/core/*) echo core ;;
        replicator/target/apply/*) echo target_apply ;;
        replicator/staging/*) echo staging ;;
        replicator/sequencer/*) echo sequencer ;;
        replicator/script/*) echo script ;;
        replicator/target/dialect/soci/*) echo soci ;;
        replicator/target/dialect/odbc/*) echo odbc ;;
        replicator/target/dialect/postgres/*) echo postgres ;;
        replicator/target/dialect/mysql/*) echo mysql ;;
        replicator/target/dialect/oracle/*) echo oracle ;;
        *) echo unknown ;;
    esac
}
# module_of_include HEADER: the subsystem a molt/replicator/... header belongs to.
module_of_include() {
    case $1 in
        molt/replicator/app/* | molt/replicator/cli.hpp) echo app ;;
        molt/replicator/server/*) echo server ;;
        molt/replicator/source/*) echo source_cdc ;;
        molt/replicator/core/*) echo core ;;
        molt/replicator/target/*) echo target_apply ;;
        molt/replicator/staging/*) echo staging ;;
        molt/replicator/sequencer/*) echo sequencer ;;
        molt/replicator/script/*) echo script ;;
        molt/replicator/dialect/soci*) echo soci ;;
        molt/replicator/dialect/odbc*) echo odbc ;;
        molt/replicator/dialect/postgres*) echo postgres ;;
        molt/replicator/dialect/mysql*) echo mysql ;;
        molt/replicator/dialect/oracle*) echo oracle ;;
        *) echo unknown ;;
    esac
}
# allowed MODULE: the replicator subsystems MODULE may include (itself included).
allowed() {
    case $1 in
        app) echo "app server source_cdc core target_apply staging sequencer script soci postgres mysql oracle" ;;
        server) echo "server source_cdc core" ;;
        source_cdc) echo "source_cdc core" ;;
        core) echo "core" ;;
        target_apply) echo "target_apply core" ;;
        staging) echo "staging target_apply core" ;;
        sequencer) echo "sequencer staging target_apply core" ;;
        script) echo "script target_apply core" ;;
        soci) echo "soci core" ;;
        postgres) echo "postgres soci core" ;;
        mysql) echo "mysql soci core" ;;
        odbc) echo "odbc soci core" ;;
        oracle) echo "oracle odbc core" ;;
    esac
}
layer_hits=""
unknown_hits=""
while IFS= read -r line; do
    file=${line%%:*}
    header=$(sed -nE 's/.*#include *"(molt\/replicator\/[^"]*)".*/\1/p' <<<"$line")
    from=$(module_of_file "$file")
    to=$(module_of_include "$header")
    if [ "$from" = unknown ] || [ "$to" = unknown ]; then
        unknown_hits+="$line"$'\n'
        continue
    fi
    case " $(allowed "$from") " in
        *" $to "*) ;;
        *) layer_hits+="$line   ($from may not depend on $to)"$'\n' ;;
    esac
done < <(grep -rnE '#include *"molt/replicator/' replicator 2>/dev/null)
[ -z "$layer_hits" ] || fail "replicator subsystems depend only on what replicator/README.md allows (dialect code only from target/dialect/ and app/; dialects never include each other)" "${layer_hits%$'\n'}"
[ -z "$unknown_hits" ] || fail "a replicator/ folder or header not in the layering table: add it to replicator/README.md and test/lint/check-deps.sh" "${unknown_hits%$'\n'}"

hits=$(grep -rnE '#include *[<"](soci/|libpq-fe|mysql\.h|mysql/|sql\.h|sqlext\.h)' replicator 2>/dev/null \
       | grep -vE '^replicator/(target/dialect|app)/')
[ -z "$hits" ] || fail "only target/dialect/ (and app/) name SOCI or a database client library" "$hits"

hits=$(grep -rnE '#include *[<"]boost/(beast|asio)' replicator 2>/dev/null \
       | grep -vE '^replicator/(server|app)/')
[ -z "$hits" ] || fail "only server/ (and app/) use Beast or Asio" "$hits"
exit $status
