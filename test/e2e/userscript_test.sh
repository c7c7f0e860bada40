#!/usr/bin/env bash
# Userscripts through the HTTP server, against PostgreSQL and MariaDB, in immediate and
# consistent mode: the documented examples of ../shared/spec/userscripts.md §3 in
# test/e2e/userscripts/<case>/ (script.ts with @SCHEMA@ for the target schema's name, @DB@ pg or my,
# tables.sql, requests: one webhook body per line, expect: "> query" lines each followed by the
# rows it must return, "|"-separated, NULL as empty; any other file sits beside the script),
# then bad scripts and failing handlers.
# Usage: userscript_test.sh REPLICATOR   (servers from test/support/db/with-dbs.sh)
# USERSCRIPT_CASES=GLOB runs only the cases GLOB names (while working on one).
REPLICATOR=$1
. "$(dirname "$0")/lib.sh"
e2e_init
CASES=$(dirname "$0")/userscripts
PG_DB=us_pg
MY_DB=us_my
STAGE_DB=us_stage
e2e_on_exit "drop_own_databases $PG_DB $MY_DB; psql \"\$MOLT_TEST_PG_ADMIN_URL\" -X -q -c 'DROP DATABASE IF EXISTS $STAGE_DB WITH (FORCE)'"

# fresh_target: empty target databases and staging.
fresh_target() {
    own_databases "$PG_DB" "$MY_DB" >/dev/null || exit 1
    psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -c "DROP DATABASE IF EXISTS $STAGE_DB WITH (FORCE)" \
        -c "CREATE DATABASE $STAGE_DB OWNER app" >/dev/null || exit 1
    STAGE_URL=${MOLT_TEST_PG_URL/\/appdb\?/\/$STAGE_DB?}
}

# on_target DB SQL: runs SQL (statements one per line) on the pg or my target; rows "|"-separated,
# NULL as empty. MariaDB gets `name` for "name".
on_target() {
    if [ "$1" = pg ]; then
        psql "$OWN_PG_URL" -X -q -At -v ON_ERROR_STOP=1 -c "$2"
    else
        my_at "$OWN_MY_URL" "$(tr '"' '`' <<<"$2")" | sed -e 's/\t/|/g' -e 's/^NULL|/|/' \
            -e 's/|NULL$/|/' -e ':a' -e 's/|NULL|/||/' -e 'ta'
    fi
}

# expected_rows FILE: "> query" blocks of FILE, each query's actual rows after it, as FILE has
# them (for comparison with FILE itself).
actual_rows() {
    local db=$1 file=$2 line
    while IFS= read -r line; do
        if [[ "$line" == "> "* ]]; then
            echo "$line"
            on_target "$db" "${line#> }"
        fi
    done <"$file"
}

# run_case DB MODE CASE: one example end to end.
run_case() {
    local db=$1 mode=$2 name=$3 dir=$CASES/$3
    local label="$name ($db, $mode)"
    fresh_target
    local schema path target
    if [ "$db" = pg ]; then
        schema="$PG_DB.public" path="/$PG_DB/public" target=$OWN_PG_URL
    else
        schema="$MY_DB" path="/$MY_DB" target=$OWN_MY_URL
    fi
    while IFS= read -r sql; do
        [ -n "$sql" ] && on_target "$db" "$sql"
    done <"$dir/tables.sql"
    # The script in a folder of its own, with the case's other files (modules it imports).
    local script_dir="$E2E_TMP/$name-$db-$mode" file
    mkdir -p "$script_dir"
    for file in "$dir"/*; do
        case ${file##*/} in
        script.ts | tables.sql | requests | expect) ;;
        *) cp "$file" "$script_dir/" ;;
        esac
    done
    local script="$script_dir/script.ts"
    sed -e "s/@SCHEMA@/$schema/g" -e "s/@DB@/$db/g" "$dir/script.ts" >"$script"
    local args=(--insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 --targetConn "$target"
        --userscript "$script")
    if [ "$mode" = immediate ]; then
        args+=(--immediate)
    else
        args+=(--stagingConn "$STAGE_URL" --stagingSchema "$STAGE_DB.public" --stagingCreateSchema
            --flushPeriod 100ms)
    fi
    start_replicator "$name-$db-$mode" "${args[@]}" || {
        check "$label: replicator starts" no yes
        return
    }
    local url="http://127.0.0.1:$REPLICATOR_PORT$path" n=0 body
    while IFS= read -r body; do
        n=$((n + 1))
        post "$url" "$body"
        check "$label: request $n" "$STATUS" 200
    done <"$dir/requests"
    if [ "$mode" = consistent ]; then
        post "$url" '{"resolved":"2000000000000000000.0000000000"}'
        check "$label: resolved" "$STATUS" 200
    fi
    # The rows, once they match and still match half a second later (a later chunk could
    # change them); a script that writes the year may have run on either side of New Year.
    local want got year=$(date -u +%Y)
    for _ in $(seq 1 100); do
        want=$(sed "s/@YEAR@/$year/" "$dir/expect")
        got=$(actual_rows "$db" "$dir/expect")
        if [ "$got" != "$want" ]; then
            want=$(sed "s/@YEAR@/$(date -u +%Y)/" "$dir/expect")
        fi
        if [ "$got" = "$want" ]; then
            sleep 0.5
            got=$(actual_rows "$db" "$dir/expect")
            break
        fi
        sleep 0.1
    done
    check "$label: target rows" "$got" "$want"
    [ "$got" = "$want" ] || tail -n 20 "$E2E_TMP/$name-$db-$mode.log"
    stop_replicator "$REPLICATOR_PID"
}

for db in pg my; do
    for mode in immediate consistent; do
        for dir in "$CASES"/${USERSCRIPT_CASES:-*}/; do
            run_case "$db" "$mode" "$(basename "$dir")"
        done
    done
done

# refused_script LABEL FILE TEXT: a script the replicator refuses: start exits 1 before
# listening, with TEXT in its output; --dryRun (molt's preflight) too.
refused_script() {
    local out
    out=$(timeout 30 "$REPLICATOR" start --insecureHTTP --disableAuthentication \
        --bindAddr 127.0.0.1:0 --immediate --targetConn "$OWN_PG_URL" --userscript "$2" 2>&1)
    check "$1: the start fails" "$?" 1
    check_contains "$1: named" "$out" "$3"
    check "$1: nothing listened" "$(grep -c 'Server listening' <<<"$out")" 0
    out=$(timeout 30 "$REPLICATOR" start --dryRun --insecureHTTP --disableAuthentication \
        --immediate --targetConn "$OWN_PG_URL" --userscript "$2" 2>&1)
    check "$1: --dryRun fails too" "$?" 1
    check_contains "$1: --dryRun names it" "$out" "$3"
}

# A script that does not load: exit 1 before listening, the position named.
fresh_target
printf 'import * as api from "replicator@v2";\nconst = 1;\n' >"$E2E_TMP/bad.ts"
refused_script "a syntax error" "$E2E_TMP/bad.ts" "bad.ts:2:7: Expected identifier"
# Q1: the quickstart as once published names SCHEMA_NAME, which it never defines.
cat >"$E2E_TMP/q1.ts" <<'EOF'
import * as api from "replicator@v2";
const TARGET_SCHEMA_NAME = "us_pg.public";
api.configureTargetSchema(SCHEMA_NAME, {
  onRowUpsert: (row) => row,
  onRowDelete: (row) => row,
});
EOF
out=$("$REPLICATOR" start --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --immediate --targetConn "$OWN_PG_URL" --userscript "$E2E_TMP/q1.ts" 2>&1)
check "Q1: a ReferenceError at load ends startup" "$?" 1
check_contains "Q1: it names the name and the line" "$out" "ReferenceError: SCHEMA_NAME is not defined (at q1.ts:3:"

# Imports of a missing file and from outside the script's folder, and a name the API does not
# export: refused at load.
printf 'import { x } from "./nothere";\nconsole.log(x);\n' >"$E2E_TMP/missing.ts"
refused_script "an import of a missing file" "$E2E_TMP/missing.ts" "nothere.ts: no such file"
printf 'import { x } from "../../etc/passwd";\nconsole.log(x);\n' >"$E2E_TMP/escape.ts"
refused_script "an import outside the folder" "$E2E_TMP/escape.ts" "outside the script's folder"
printf 'import * as api from "replicator@v2";\napi.configureTargetSchemas("x", {});\n' >"$E2E_TMP/noexport.ts"
refused_script "a name the API does not export" "$E2E_TMP/noexport.ts" "configureTargetSchemas"

# A handler that allocates without end is stopped by --userscriptMaxHeap (503: the changefeed
# retries), nothing of its request written; the script goes on.
cat >"$E2E_TMP/hog.ts" <<'EOF'
import * as api from "replicator@v2";
api.configureTargetSchema("us_pg.public", {
  onRowUpsert: (row) => {
    const kept = [];
    if (row.name === "hog") for (;;) kept.push(new Array(100000).fill(kept.length));
    return row;
  },
  onRowDelete: (row) => row,
});
EOF
on_target pg "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(32))"
start_replicator hog --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 --immediate \
    --targetConn "$OWN_PG_URL" --userscript "$E2E_TMP/hog.ts" --userscriptTimeout 300s \
    --userscriptMaxHeap 16MiB || exit 1
url="http://127.0.0.1:$REPLICATOR_PORT/$PG_DB/public"
post "$url" '{"payload":[{"after":{"id":1,"name":"ok"},"key":[1],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":{"id":2,"name":"hog"},"key":[2],"topic":"items","updated":"1000000000000000001.0000000000"}],"length":2}'
check "heap limit: the request fails for the changefeed to retry" "$STATUS" 503
check_contains "heap limit: the answer names the flag" "$RESPONSE" "--userscriptMaxHeap"
check "heap limit: nothing of it was written" "$(on_target pg 'SELECT count(*) FROM items')" 0
post "$url" '{"payload":[{"after":{"id":3,"name":"fine"},"key":[3],"topic":"items","updated":"1000000000000000002.0000000000"}],"length":1}'
check "heap limit: the script runs on" "$STATUS" 200
stop_replicator
on_target pg "DROP TABLE items"

# replicator@v1's setOptions: flags of replicator start, set over the command line's while the
# script loads (here immediate mode, which the command line does not ask for); an unknown name,
# or a flag read before the script runs, fails the start and --dryRun (molt's preflight).
# The script's --targetConn replaces the command line's --targetConnFile (a target that is not
# there): the row is applied only if it does.
printf 'import * as v1 from "replicator@v1";\nv1.setOptions({ immediate: "true", flushSize: 7, targetConn: "%s" });\n' \
    "$OWN_PG_URL" >"$E2E_TMP/setoptions.ts"
echo "postgres://app@127.0.0.1:1/nowhere" >"$E2E_TMP/nowhere.url"
on_target pg "CREATE TABLE opts (id INT PRIMARY KEY)"
start_replicator "setoptions" --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConnFile "$E2E_TMP/nowhere.url" --flushSize 100 --userscript "$E2E_TMP/setoptions.ts" ||
    exit 1
log="$E2E_TMP/setoptions.log"
check_contains "setOptions: the flags it set are logged by name" \
    "$(grep 'userscript loaded' "$log")" '"setOptions":"immediate, flushSize, targetConn"'
check "setOptions: never their values" "$(grep 'userscript loaded' "$log" | grep -c "$PG_DB")" 0
check_contains "setOptions: over the command line's" "$(grep 'Replicator starting' "$log")" \
    '"mode":"immediate"'
check_contains "setOptions: a number as a flag's value" "$(grep 'Replicator starting' "$log")" \
    '"flushSize":7,'
post "http://127.0.0.1:$REPLICATOR_PORT/$PG_DB/public" '{"payload":[{"after":{"id":1},"key":[1],"topic":"opts","updated":"1000000000000000001.0000000000"}],"length":1}'
check "setOptions: immediate mode applies the row in its request" \
    "$STATUS $(on_target pg 'SELECT count(*) FROM opts')" "200 1"
stop_replicator
for bad in '{ hello: "world" }|setOptions: unknown option' \
    '{ userscriptTimeout: "1s" }|--userscriptTimeout is read before the userscript runs' \
    '{ flushSize: {} }|must be a string (or a number or boolean), not an object' \
    '{ parallelism: "0" }|--parallelism must be a whole number from 1'; do
    printf 'import * as v1 from "replicator@v1";\nv1.setOptions(%s);\n' "${bad%%|*}" >"$E2E_TMP/badopts.ts"
    refused_script "setOptions ${bad%%|*}" "$E2E_TMP/badopts.ts" "${bad#*|}"
done
on_target pg "DROP TABLE opts"

# replicator@v1 configureTable naming a column its table lacks: writes of the table fail (400 in
# immediate mode), naming the script's call, the option, the column and the table.
on_target pg "CREATE TABLE xtra (id INT PRIMARY KEY)"
printf 'import * as v1 from "replicator@v1";\nv1.configureTable("xtra", { extras: "nowhere" });\n' \
    >"$E2E_TMP/xtra.ts"
start_replicator "xtra" --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 --immediate \
    --targetConn "$OWN_PG_URL" --userscript "$E2E_TMP/xtra.ts" || exit 1
post "http://127.0.0.1:$REPLICATOR_PORT/$PG_DB/public" '{"payload":[{"after":{"id":1},"key":[1],"topic":"xtra","updated":"1000000000000000001.0000000000"}],"length":1}'
check "an extras column the table lacks: the request fails" "$STATUS" 400
check_contains "an extras column the table lacks: named" "$RESPONSE" \
    'configureTable("xtra"): extras names column "nowhere", which the table does not have (table us_pg.public.xtra)'
check "an extras column the table lacks: nothing written" "$(on_target pg 'SELECT count(*) FROM xtra')" 0
stop_replicator
on_target pg "DROP TABLE xtra"

# Handlers that fail: the request fails whole, the script, handler, table and key named; a
# handler that runs too long is stopped (503, the changefeed retries). Console output at its
# levels (Q2): debug only with -v, nothing after console.disable().
cat >"$E2E_TMP/failing.ts" <<'EOF'
import * as api from "replicator@v2";
api.configureTargetSchema("us_pg.public", {
  onRowUpsert: (row, meta) => {
    console.debug("upserting row for table:", meta.table, "id:", row.id);
    if (row.name === "boom") throw new Error("cannot take " + row.id);
    if (row.name === "loop") for (;;) {}
    if (row.name === "quiet") console.disable();
    console.info("passed", row.id);
    return row;
  },
  onRowDelete: (row) => row,
});
api.configureTargetTables(["items"], {
  onRowDelete: (keys) => { throw new Error("no deletes of " + keys[0]); },
});
EOF
on_target pg "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(32))"
for mode in immediate consistent; do
    if [ "$mode" = immediate ]; then
        margs=(--immediate -v)
    else
        margs=(--stagingConn "$STAGE_URL" --stagingSchema "$STAGE_DB.public" --stagingCreateSchema
            --flushPeriod 100ms)
    fi
    start_replicator "failing-$mode" --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
        --targetConn "$OWN_PG_URL" --userscript "$E2E_TMP/failing.ts" --userscriptTimeout 1s \
        "${margs[@]}" || exit 1
    url="http://127.0.0.1:$REPLICATOR_PORT/$PG_DB/public"
    log="$E2E_TMP/failing-$mode.log"
    post "$url" '{"payload":[{"after":{"id":1,"name":"ok"},"key":[1],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":{"id":2,"name":"boom"},"key":[2],"topic":"items","updated":"1000000000000000002.0000000000"}],"length":2}'
    check "$mode: a throwing handler fails the request" "$STATUS" 400
    check_contains "$mode: the answer names the handler, table and key" "$RESPONSE" \
        'onRowUpsert of configureTargetSchema("us_pg.public") on table items, key ["2"] failed: Error: cannot take 2 (at failing.ts:5:'
    post "$url" '{"payload":[{"after":{"id":3,"name":"loop"},"key":[3],"topic":"items","updated":"1000000000000000003.0000000000"}],"length":1}'
    check "$mode: an endless handler is stopped" "$STATUS" 503
    check_contains "$mode: the answer says it ran out of time" "$RESPONSE" "--userscriptTimeout"
    check "$mode: nothing of the failed requests was written" "$(on_target pg 'SELECT count(*) FROM items')" 0
    post "$url" '{"payload":[{"after":{"id":4,"name":"fine"},"key":[4],"topic":"items","updated":"1000000000000000004.0000000000"}],"length":1}'
    check "$mode: the script still runs after a stopped call" "$STATUS" 200
    if [ "$mode" = consistent ]; then
        post "$url" '{"resolved":"1000000000000000005.0000000000"}'
        for _ in $(seq 1 100); do
            [ "$(on_target pg 'SELECT count(*) FROM items')" = 1 ] && break
            sleep 0.1
        done
    fi
    check "$mode: only the request that passed was written" "$(on_target pg 'SELECT id, name FROM items')" "4|fine"
    if [ "$mode" = immediate ]; then
        check "console.debug at -v" "$(grep -c 'upserting row for table: items id: 4' "$log")" 1
        check "console.info" "$(grep -c '"message":"passed 4"' "$log")" 1
        post "$url" '{"payload":[{"after":{"id":6,"name":"quiet"},"key":[6],"topic":"items","updated":"1000000000000000006.0000000000"}],"length":1}'
        check "console.disable(): the request passed" "$STATUS" 200
        check "console.disable(): silent" "$(grep -c 'passed 6' "$log")" 0
        post "$url" '{"payload":[{"after":null,"key":[4],"topic":"items","updated":"1000000000000000007.0000000000"}],"length":1}'
        check "$mode: a failing table-level handler fails the request" "$STATUS" 400
        check_contains "$mode: it is named" "$RESPONSE" 'onRowDelete of configureTargetTables on table items, key ["4"] failed: Error: no deletes of 4'
        check "$mode: the row it would delete stays" "$(on_target pg 'SELECT count(*) FROM items WHERE id = 4')" 1
    else
        check "console.debug without -v: silent" "$(grep -c 'upserting row' "$log")" 0
        # At apply time a failing table-level handler stalls its window: nothing of it applied,
        # the failure logged at error level, retried.
        post "$url" '{"payload":[{"after":null,"key":[4],"topic":"items","updated":"1000000000000000007.0000000000"}],"length":1}'
        check "$mode: the delete is staged" "$STATUS" 200
        post "$url" '{"resolved":"2000000000000000000.0000000000"}'
        for _ in $(seq 1 100); do
            grep -q 'no deletes of 4' "$log" && break
            sleep 0.1
        done
        check_contains "$mode: the stalled window's log names the handler" "$(grep 'no deletes of 4' "$log" | head -1)" \
            'onRowDelete of configureTargetTables on table items, key [\"4\"] failed'
        check_contains "$mode: at error level" "$(grep 'no deletes of 4' "$log" | head -1)" '"level":"error"'
        check "$mode: the row it would delete stays" "$(on_target pg 'SELECT count(*) FROM items WHERE id = 4')" 1
    fi
    varz=$(curl -s --max-time 5 "http://127.0.0.1:$REPLICATOR_PORT/_/varz")
    check "$mode: script_errors_total counts the schema-level failures" \
        "$(grep '^script_errors_total{function="onRowUpsert",schema="us_pg.public",table="\*"}' <<<"$varz" | awk '{print $NF}')" 2
    check "$mode: script_errors_total counts the table-level failure" \
        "$(grep -c '^script_errors_total{function="onRowDelete",schema="us_pg.public",table="items"}' <<<"$varz")" 1
    check_contains "$mode: script_invocations_total" "$varz" 'script_invocations_total{function="onRowUpsert",schema="us_pg.public",table="*"}'
    stop_replicator
    on_target pg "DELETE FROM items"
done

# replicator@v1 merges that fail: one that throws fails the request (immediate) or stalls its
# window (consistent), naming the handler, table and key, with nothing of the batch written; one
# that sends a row to a dead-letter queue the target does not have names the table to create.
cat >"$E2E_TMP/merge.ts" <<'EOF'
import * as api from "replicator@v1";
api.configureTable("items", {
  cas: ["v"],
  merge: (op) => {
    if (op.proposed.name === "boom") throw new Error("cannot merge over " + op.target.name);
    return { dlq: "later" };
  },
});
EOF
for run in pg-immediate my-immediate pg-consistent; do
    db=${run%-*} mode=${run#*-}
    fresh_target
    if [ "$db" = pg ]; then path="/$PG_DB/public" target=$OWN_PG_URL; else path="/$MY_DB" target=$OWN_MY_URL; fi
    on_target "$db" "CREATE TABLE items (id INT PRIMARY KEY, v INT, name VARCHAR(32))"
    on_target "$db" "INSERT INTO items VALUES (1, 5, 'target')"
    if [ "$mode" = immediate ]; then
        margs=(--immediate)
    else
        margs=(--stagingConn "$STAGE_URL" --stagingSchema "$STAGE_DB.public" --stagingCreateSchema
            --flushPeriod 100ms)
    fi
    start_replicator "merge-$run" --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
        --targetConn "$target" --userscript "$E2E_TMP/merge.ts" "${margs[@]}" || exit 1
    url="http://127.0.0.1:$REPLICATOR_PORT$path"
    log="$E2E_TMP/merge-$run.log"
    # Key 2 is new (written without a merge); key 1's version 4 loses to the target's 5.
    post "$url" '{"payload":[{"after":{"id":2,"v":1,"name":"new"},"key":[2],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":{"id":1,"v":4,"name":"boom"},"key":[1],"topic":"items","updated":"1000000000000000001.0000000000"}],"length":2}'
    if [ "$mode" = immediate ]; then
        check "merge $run: a throwing merge fails the request" "$STATUS" 400
        check_contains "merge $run: the answer names the handler, table and key" "$RESPONSE" \
            'merge of configureTable on table items, key [1] failed: Error: cannot merge over target'
        post "$url" '{"payload":[{"after":{"id":1,"v":3,"name":"x"},"key":[1],"topic":"items","updated":"1000000000000000002.0000000000"}],"length":1}'
        check "merge $run: a dead-letter queue the target lacks fails the request" "$STATUS" 400
        check_contains "merge $run: and says which table to create" "$RESPONSE" 'replicator_dlq'
    else
        check "merge $run: staged" "$STATUS" 200
        post "$url" '{"resolved":"2000000000000000000.0000000000"}'
        for _ in $(seq 1 100); do
            grep -q 'cannot merge over' "$log" && break
            sleep 0.1
        done
        check_contains "merge $run: the stalled window's log names the handler, table and key" \
            "$(grep 'cannot merge over' "$log" | head -1)" 'merge of configureTable on table items, key [1] failed'
    fi
    check "merge $run: nothing of the batch was written" \
        "$(on_target "$db" 'SELECT id, v, name FROM items ORDER BY id')" "1|5|target"
    stop_replicator
done

# standardMerge writes the target's row back with the batch's one change: every other value
# (bytes, bits, JSON, decimals, doubles, timestamps) as it was, read and written exactly
# (MariaDB keeps JSON as text: its spacing may change).
cat >"$E2E_TMP/typed.ts" <<'EOF'
import * as api from "replicator@v1";
api.configureTable("typed", { cas: ["v"], merge: api.standardMerge() });
EOF
for db in pg my; do
    fresh_target
    if [ "$db" = pg ]; then
        path="/$PG_DB/public" target=$OWN_PG_URL
        on_target pg "CREATE TABLE typed (id INT PRIMARY KEY, v INT, note VARCHAR(32), b BYTEA, j JSONB, n NUMERIC(10,2), f DOUBLE PRECISION, ts TIMESTAMPTZ)"
        on_target pg "INSERT INTO typed VALUES (1, 5, 'old', '\xdead', '{\"k\": [1, 2.5], \"n\": 7}', 12.30, 1.5, '2024-01-01 00:00:00.123456+00')"
        dump="SELECT id, v, note, encode(b, 'hex'), j::text, n, f, ts FROM typed"
    else
        path="/$MY_DB" target=$OWN_MY_URL
        on_target my "CREATE TABLE typed (id INT PRIMARY KEY, v INT, note VARCHAR(32), b VARBINARY(8), bits BIT(4), j JSON, n DECIMAL(10,2), f DOUBLE, ts DATETIME(6))"
        on_target my "INSERT INTO typed VALUES (1, 5, 'old', X'DEAD', b'0101', JSON_OBJECT('k', JSON_ARRAY(1, 2.5), 'n', 7), 12.30, 1.5, '2024-01-01 00:00:00.123456')"
        dump="SELECT id, v, note, HEX(b), BIN(bits), JSON_COMPACT(j), n, f, ts FROM typed"
    fi
    was=$(on_target "$db" "$dump")
    start_replicator "typed-$db" --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
        --targetConn "$target" --userscript "$E2E_TMP/typed.ts" --immediate || exit 1
    post "http://127.0.0.1:$REPLICATOR_PORT$path" '{"payload":[{"after":{"id":1,"v":4,"note":"new"},"before":{"id":1,"v":4,"note":"old"},"key":[1],"topic":"typed","updated":"1000000000000000001.0000000000"}],"length":1}'
    check "standardMerge $db: applied" "$STATUS" 200
    check "standardMerge $db: the target's row with the batch's change, every other value exact" \
        "$(on_target "$db" "$dump")" "${was/|old|/|new|}"
    stop_replicator
done

# Consistent mode with --fatalRowPolicy dlq: a row whose table-level handler throws, or returns
# what cannot be a row, goes to the dead-letter queue as it was staged, in the same target
# transaction as the rest of its window, which is applied (the stall above is the default). On
# PostgreSQL also as a large chunk (a source transaction of more rows than --scanSize, read
# page by page), whose refusal takes the general path.
cat >"$E2E_TMP/dlq.ts" <<'EOF'
import * as api from "replicator@v2";
api.configureTargetTables(["items"], {
  onRowUpsert: (row) => {
    if (row.name === "bad") throw new Error("cannot take " + row.id);
    if (row.name === "odd") return 42;
    return row;
  },
  onRowDelete: (keys) => {
    if (keys[0] === "5") throw new Error("keeps " + keys[0]);
    return keys;
  },
});
EOF
for run in pg my pg-large; do
    db=${run%-large}
    fresh_target
    if [ "$db" = pg ]; then
        path="/$PG_DB/public" target=$OWN_PG_URL dlq_name=public.items schema=us_pg.public
        on_target pg "CREATE TABLE replicator_dlq (event BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, dlq_name VARCHAR(256) NOT NULL, source_nanos BIGINT NOT NULL, source_logical BIGINT NOT NULL, data_after JSONB NOT NULL, data_before JSONB NOT NULL)"
    else
        path="/$MY_DB" target=$OWN_MY_URL dlq_name=$MY_DB.items schema=$MY_DB
        on_target my "CREATE TABLE replicator_dlq (event BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, dlq_name VARCHAR(256) NOT NULL, source_nanos BIGINT NOT NULL, source_logical BIGINT NOT NULL, data_after JSON NOT NULL, data_before JSON NOT NULL) ENGINE InnoDB"
    fi
    on_target "$db" "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(32))"
    on_target "$db" "INSERT INTO items VALUES (5, 'kept'), (6, 'gone')"
    large=()
    [ "$run" = "$db" ] || large=(--scanSize 2)
    start_replicator "dlq-$run" --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
        --targetConn "$target" --userscript "$E2E_TMP/dlq.ts" --fatalRowPolicy dlq \
        --stagingConn "$STAGE_URL" --stagingSchema "$STAGE_DB.public" --stagingCreateSchema \
        --flushPeriod 100ms "${large[@]}" || exit 1
    url="http://127.0.0.1:$REPLICATOR_PORT$path"
    # One source transaction (one HLC) of six rows: more than --scanSize 2 in the large run.
    post "$url" '{"payload":[{"after":{"id":1,"name":"ok"},"key":[1],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":{"id":2,"name":"bad"},"key":[2],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":{"id":3,"name":"odd"},"key":[3],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":{"id":4,"name":"fine"},"key":[4],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":null,"key":[5],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":null,"key":[6],"topic":"items","updated":"1000000000000000001.0000000000"}],"length":6}'
    check "dlq $run: staged" "$STATUS" 200
    post "$url" '{"resolved":"1000000000000000004.0000000000"}'
    check "dlq $run: resolved" "$STATUS" 200
    log="$E2E_TMP/dlq-$run.log"
    for _ in $(seq 1 100); do
        [ "$(grep -c 'the userscript refused a row' "$log")" = 3 ] && break
        sleep 0.1
    done
    check "dlq $run: the rows the script took were applied (and the delete it kept, kept)" \
        "$(on_target "$db" 'SELECT id, name FROM items ORDER BY id')" "1|ok
4|fine
5|kept"
    if [ "$db" = pg ]; then
        rows=$(on_target pg "SELECT dlq_name, source_nanos, source_logical, coalesce(data_after->>'name', 'null'), data_before::text FROM replicator_dlq ORDER BY event")
    else
        rows=$(on_target my "SELECT dlq_name, source_nanos, source_logical, coalesce(JSON_UNQUOTE(JSON_EXTRACT(data_after, '\$.name')), 'null'), CAST(data_before AS CHAR) FROM replicator_dlq ORDER BY event")
    fi
    check "dlq $run: the refused rows are in the dead-letter queue, as staged" \
        "$(sort <<<"$rows")" "$dlq_name|1000000000000000001|0|bad|null
$dlq_name|1000000000000000001|0|null|null
$dlq_name|1000000000000000001|0|odd|null"
    check_contains "dlq $run: logged, naming the handler and the key" \
        "$(grep 'the userscript refused a row' "$log" | grep 'cannot take 2')" \
        'onRowUpsert of configureTargetTables on table items, key [\"2\"] failed: Error: cannot take 2'
    check_contains "dlq $run: a wrong result is named too" \
        "$(grep 'the userscript refused a row' "$log" | grep '\[\\"3\\"\]')" 'returned a number'
    check_contains "dlq $run: and a failed delete" \
        "$(grep 'the userscript refused a row' "$log" | grep 'keeps 5')" 'onRowDelete of configureTargetTables'
    varz=$(curl -s --max-time 5 "http://127.0.0.1:$REPLICATOR_PORT/_/varz")
    check "dlq $run: dlq_rows_total counts them once" \
        "$(grep "^dlq_rows_total{schema=\"$schema\",table=\"items\"}" <<<"$varz" | awk '{print $NF}')" 3
    check "dlq $run: script_errors_total counts them" \
        "$(grep "^script_errors_total{function=\"onRowUpsert\",schema=\"$schema\",table=\"items\"}" <<<"$varz" |
            awk '{print ($NF >= 2)}')" 1
    stop_replicator
done

# onWrite that fails on an error it does not handle (C11's "a different error fails the batch"):
# nothing of the transaction is written, the request is refused (immediate) or the window
# stalls (consistent), the handler named; the rows of other tables in the batch are not
# written either.
cat >"$E2E_TMP/onwrite_failing.ts" <<'EOF'
import * as api from "replicator@v2";
api.configureTargetTables(["items"], {
  onWrite: async (rows) => {
    await api.write(rows);
    for (const row of rows) {
      if (row.action === "upsert" && row.data.name === "dup") {
        await api.getTX().exec("INSERT INTO items (id, name) VALUES ($1, $2)", row.data.id, "again");
      }
    }
  },
});
EOF
for mode in immediate consistent; do
    # Fresh staging: the last run's resolved timestamp would make these rows late (and too old
    # to be checked against staging).
    fresh_target
    on_target pg "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(32))"
    on_target pg "CREATE TABLE others (id INT PRIMARY KEY)"
    if [ "$mode" = immediate ]; then
        margs=(--immediate)
    else
        margs=(--stagingConn "$STAGE_URL" --stagingSchema "$STAGE_DB.public" --stagingCreateSchema
            --flushPeriod 100ms)
    fi
    start_replicator "onwrite-$mode" --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
        --targetConn "$OWN_PG_URL" --userscript "$E2E_TMP/onwrite_failing.ts" "${margs[@]}" || exit 1
    url="http://127.0.0.1:$REPLICATOR_PORT/$PG_DB/public"
    log="$E2E_TMP/onwrite-$mode.log"
    post "$url" '{"payload":[{"after":{"id":20},"key":[20],"topic":"others","updated":"1000000000000000001.0000000000"},{"after":{"id":21,"name":"fine"},"key":[21],"topic":"items","updated":"1000000000000000001.0000000000"},{"after":{"id":22,"name":"dup"},"key":[22],"topic":"items","updated":"1000000000000000001.0000000000"}],"length":3}'
    want='onWrite of configureTargetTables on table items failed: Error: '
    if [ "$mode" = immediate ]; then
        check "onWrite $mode: an unhandled statement error fails the request" "$STATUS" 400
        check_contains "onWrite $mode: the answer names the handler and the error" "$RESPONSE" "$want"
        check_contains "onWrite $mode: with the target's SQLSTATE" "$RESPONSE" "(SQLSTATE 23505)"
    else
        check "onWrite $mode: staged" "$STATUS" 200
        post "$url" '{"resolved":"2000000000000000000.0000000000"}'
        for _ in $(seq 1 100); do
            grep -q 'SQLSTATE 23505' "$log" && break
            sleep 0.1
        done
        check_contains "onWrite $mode: the stalled window's log names the handler" \
            "$(grep 'SQLSTATE 23505' "$log" | head -1)" "$want"
        check_contains "onWrite $mode: at error level" "$(grep 'SQLSTATE 23505' "$log" | head -1)" '"level":"error"'
    fi
    check "onWrite $mode: nothing of the transaction was written" \
        "$(on_target pg 'SELECT (SELECT count(*) FROM items) + (SELECT count(*) FROM others)')" 0
    varz=$(curl -s --max-time 5 "http://127.0.0.1:$REPLICATOR_PORT/_/varz")
    check "onWrite $mode: script_errors_total counts it" \
        "$(grep '^script_errors_total{function="onWrite",schema="us_pg.public",table="items"}' <<<"$varz" | awk '{print ($NF >= 1)}')" 1
    stop_replicator
done

exit $((E2E_FAILURES > 0))
