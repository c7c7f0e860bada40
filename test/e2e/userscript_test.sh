#!/usr/bin/env bash
# Userscripts through the HTTP server, against PostgreSQL and MariaDB, in immediate and
# consistent mode: the documented examples of ../shared/spec/userscripts.md §3 in
# test/e2e/userscripts/<case>/ (script.ts with @SCHEMA@ for the target schema's name, @DB@ pg or my,
# tables.sql, requests: one webhook body per line, expect: "> query" lines each followed by the
# rows it must return, "|"-separated, NULL as empty), then bad scripts and failing handlers.
# Usage: userscript_test.sh REPLICATOR   (servers from test/support/db/with-dbs.sh)
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
    local script="$E2E_TMP/$name-$db-$mode.ts"
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
    stop_replicator "$REPLICATOR_PID"
}

for db in pg my; do
    for mode in immediate consistent; do
        for dir in "$CASES"/*/; do
            run_case "$db" "$mode" "$(basename "$dir")"
        done
    done
done

# A script that does not load: exit 1 before listening, the position named.
fresh_target
printf 'import * as api from "replicator@v2";\nconst = 1;\n' >"$E2E_TMP/bad.ts"
out=$("$REPLICATOR" start --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --immediate --targetConn "$OWN_PG_URL" --userscript "$E2E_TMP/bad.ts" 2>&1)
check "a syntax error ends startup" "$?" 1
check_contains "the syntax error's position" "$out" "bad.ts:2:7: Expected identifier"
check "nothing listened" "$(grep -c 'Server listening' <<<"$out")" 0
out=$("$REPLICATOR" start --dryRun --insecureHTTP --disableAuthentication --immediate \
    --targetConn "$OWN_PG_URL" --userscript "$E2E_TMP/bad.ts" 2>&1)
check "--dryRun loads the script too (molt's preflight)" "$?" 1
check_contains "--dryRun: the syntax error's position" "$out" "bad.ts:2:7: Expected identifier"
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
