#!/usr/bin/env bash
# molt fetch --mode failback end to end, as the MOLT docs run it, against the CockroachDB
# stand-in (crdb-emulator serve, TLS) and real PostgreSQL and MariaDB targets over TLS
# (sslmode=verify-full on every connection):
#   1. the seed's secure command (PostgreSQL target): inserts, updates, deletes and multi-table
#      transactions arrive; an unselected table stays untouched; the documented log lines;
#   2. SIGKILL of the replicator: molt restarts it, nothing is lost;
#   3. SIGTERM: exit 0, no replicator left, the changefeed kept;
#   4. the same command again while writes continue: the changefeed is reused, nothing lost;
#   5. deploy/cutover/molt-cutover.sh: exits 0 only once the target holds every change, and
#      molt exited 0;
#   6. SIGKILL of molt: its replicator does not outlive it;
#   7. MariaDB with the seed's MySQL TLS connection string, --cancel-changefeed-on-exit; then
#      writes while molt is stopped and the same command again: the new changefeed starts at
#      the staging schema's checkpoint, nothing is lost;
#   8. the insecure variant (--allow-tls-mode-disable, --tlsSelfSigned --disableAuthentication);
#   9. the seed's command with --userscript table_filter.ts in --replicator-flags: the filtered
#      table stays empty, the others arrive.
# Usage: molt_failback_test.sh MOLT REPLICATOR CRDB_EMULATOR CUTOVER_SCRIPT
MOLT=$1
REPLICATOR=$2
EMULATOR=$3
CUTOVER=$4
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/failback_lib.sh"
e2e_init
TLS=${MOLT_TEST_TLS_DIR:?db-up.sh exports MOLT_TEST_TLS_DIR}

own_databases fb_src fb_my || exit 1
psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -c "DROP DATABASE IF EXISTS fb_pg WITH (FORCE)" \
    -c "CREATE DATABASE fb_pg OWNER app" -c "DROP DATABASE IF EXISTS fb_pg2 WITH (FORCE)" \
    -c "CREATE DATABASE fb_pg2 OWNER app" || exit 1
pg_port=$(sed -E 's|.*@[^:]+:([0-9]+)/.*|\1|' <<<"$MOLT_TEST_PG_URL")
my_port=$(sed -E 's|.*@[^:]+:([0-9]+)/.*|\1|' <<<"$MOLT_TEST_MYSQL_URL")
pg_target="postgres://app:app@localhost:$pg_port/fb_pg?sslmode=verify-full&sslrootcert=$TLS/ca.crt"
enc() { sed 's|/|%2f|g' <<<"$1"; }
my_target="mysql://app:app@localhost:$my_port/fb_my?sslcert=$(enc "$TLS/client.crt")&sslkey=$(enc "$TLS/client.key")&sslmode=verify-full&sslrootcert=$(enc "$TLS/ca.crt")"

certs="$E2E_TMP/certs"
make_webhook_certs "$certs" || exit 1

# ---- the stand-in, and the tables on every side ----------------------------------------------
start_standin "$OWN_PG_URL" || exit 1
crdb=$CRDB
sql() { psql "$crdb" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

tables=$FAILBACK_TABLES
psql "$OWN_PG_URL" -X -q -v ON_ERROR_STOP=1 -c "$tables" || exit 1
psql "$(pg_db fb_pg)" -X -q -v ON_ERROR_STOP=1 -c "$tables" || exit 1
psql "$(pg_db fb_pg2)" -X -q -v ON_ERROR_STOP=1 -c "$tables" || exit 1
my_at "$OWN_MY_URL" "$FAILBACK_TABLES_MYSQL" || exit 1
sql "SET CLUSTER SETTING kv.rangefeed.enabled = true" || exit 1

# write_rounds FIRST LAST: one multi-table transaction per round on the "CockroachDB" side.
write_rounds() {
    local r
    for r in $(seq "$1" "$2"); do
        sql "BEGIN;
            INSERT INTO migration_schema.employees SELECT g, 'emp ' || g, g * 10.5
                FROM generate_series($r * 3, $r * 3 + 8) g
                ON CONFLICT (id) DO UPDATE SET salary = employees.salary + 1, name = employees.name || '+';
            INSERT INTO migration_schema.payments SELECT $r * 100 + g, $r * 3 + g, g * 1.25 FROM generate_series(1, 4) g;
            INSERT INTO migration_schema.orders VALUES ($r, 'item ' || $r, $r) ON CONFLICT (id) DO NOTHING;
            UPDATE migration_schema.orders SET qty = qty + 1 WHERE id % 3 = $r % 3;
            DELETE FROM migration_schema.employees WHERE id % 7 = $r % 7;
            DELETE FROM migration_schema.payments WHERE id = ($r - 2) * 100 + 1;
            INSERT INTO migration_schema.audit VALUES ($r, 'round $r');
            COMMIT" || return 1
    done
}
select_all="SELECT id, name, salary FROM migration_schema.employees ORDER BY id;
    SELECT id, employee_id, amount FROM migration_schema.payments ORDER BY id;
    SELECT id, item, qty FROM migration_schema.orders ORDER BY id"
source_rows() { psql "$OWN_PG_URL" -X -q -At -F $'\t' -c "$select_all" | md5sum; }
pg_rows() { psql "$(pg_db fb_pg)" -X -q -At -F $'\t' -c "$select_all" | md5sum; }
my_rows() { my_at "$OWN_MY_URL" "${select_all//migration_schema./}" | md5sum; }
# The rows that rounds R and later wrote (for targets that start empty).
since_query() {
    echo "SELECT id, name, salary FROM migration_schema.employees WHERE id >= $(($1 * 3)) ORDER BY id;
        SELECT id, employee_id, amount FROM migration_schema.payments WHERE id >= $(($1 * 100)) ORDER BY id;
        SELECT id, item, qty FROM migration_schema.orders WHERE id >= $1 ORDER BY id"
}
source_since() { psql "$OWN_PG_URL" -X -q -At -F $'\t' -c "$(since_query "$1")" | md5sum; }
my_since() { q=$(since_query "$1"); my_at "$OWN_MY_URL" "${q//migration_schema./}" | md5sum; }
pg2_since() { psql "$(pg_db fb_pg2)" -X -q -At -F $'\t' -c "$(since_query "$1")" | md5sum; }
# wait_equal WHAT TARGET_FN: the target equals the source within 60 s.
wait_equal() {
    for _ in $(seq 1 240); do
        [ "$(source_rows)" == "$($2)" ] && break
        sleep 0.25
    done
    check "$1: the target equals the source" "$($2)" "$(source_rows)"
}

# start_molt NAME ARGS...: molt fetch in the background, log in $E2E_TMP/NAME.log; waits for its
# changefeed; sets MOLT_PID, MOLT_METRICS, REPL_PID.
start_molt() {
    local name=$1
    shift
    MOLT_LOG="$E2E_TMP/$name.log"
    "$MOLT" fetch "$@" --replicator-path "$REPLICATOR" --metrics-listen-addr 127.0.0.1:0 \
        --progress-interval 1s >"$MOLT_LOG" 2>&1 &
    MOLT_PID=$!
    E2E_PIDS+=("$MOLT_PID")
    for _ in $(seq 1 400); do
        grep -qE '"message":"(changefeed created|reusing the changefeed)' "$MOLT_LOG" && break
        kill -0 "$MOLT_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -qE '"message":"(changefeed created|reusing the changefeed)' "$MOLT_LOG"; then
        echo "molt $name did not start its changefeed:"; cat "$MOLT_LOG"
        kill -TERM "$MOLT_PID" 2>/dev/null; wait "$MOLT_PID"
        return 1
    fi
    MOLT_METRICS=$(grep 'serving /metrics' "$MOLT_LOG" | grep -o '"address":"[^"]*"' | cut -d'"' -f4)
    REPL_PID=$(grep '"message":"replicator started"' "$MOLT_LOG" | tail -1 | grep -o '"pid":[0-9]*' | cut -d: -f2)
}
# reap_molt: waits for molt (already signalled); sets MOLT_EXIT; forgets its PID.
reap_molt() {
    wait "$MOLT_PID"
    MOLT_EXIT=$?
    local remaining=() pid
    for pid in "${E2E_PIDS[@]}"; do [ "$pid" != "$MOLT_PID" ] && remaining+=("$pid"); done
    E2E_PIDS=("${remaining[@]}")
}
# stop_molt: SIGTERM, wait; sets MOLT_EXIT.
stop_molt() {
    kill -TERM "$MOLT_PID"
    reap_molt
}
gone() {  # gone PID: the process is gone within 60 s
    for _ in $(seq 1 600); do kill -0 "$1" 2>/dev/null || { echo yes; return; }; sleep 0.1; done
    echo no
}
running_jobs_to() {  # running_jobs_to PORT: running changefeeds that post to that port
    psql "$crdb" -X -q -At -F $'\t' -c "SHOW CHANGEFEED JOBS" | awk -F'\t' -v p=":$1/" '$4 == "running" && index($13, p) > 0' | wc -l
}
job_status() { psql "$crdb" -X -q -At -F $'\t' -c "SHOW CHANGEFEED JOB $1" | cut -f4; }

echo "--- 1. the seed's secure command, PostgreSQL target"
pg_port_hook=$(free_port)
secure_json "$pg_port_hook" "$E2E_TMP/changefeed-secure.json" "$certs"
seed=(--source "$crdb" --target "$pg_target" --schema-filter 'migration_schema'
    --table-filter 'employees|payments|orders'
    --replicator-flags "--stagingSchema _replicator_1739996035106984000 --tlsCertificate $certs/server.crt --tlsPrivateKey $certs/server.key --flushPeriod 100ms"
    --mode failback --changefeeds-path "$E2E_TMP/changefeed-secure.json")
start_molt pg1 "${seed[@]}" || exit 1
for m in "starting replicator" "staging database name: _replicator_1739996035106984000" \
    "creating changefeed on the source CRDB database"; do
    check_contains "log line: $m" "$(grep -F "\"message\":\"$m\"" "$MOLT_LOG" | head -1)" \
        "{\"level\":\"info\",\"time\":\""
done
check_contains "the replicator's lines are tagged" "$(grep -F '"message":"Server listening"' "$MOLT_LOG")" \
    '"process":"replicator"'
check "no password in molt's log" "$(grep -c 'app:app@' "$MOLT_LOG")" 0
check "no password on the replicator's command line" \
    "$(tr '\0' ' ' <"/proc/$REPL_PID/cmdline" | grep -c ':app@')" 0
job=$(grep '"message":"changefeed created"' "$MOLT_LOG" | grep -o '"job_id":"[0-9]*"' | cut -d'"' -f4)
write_rounds 1 15 || exit 1
wait_equal "secure PostgreSQL" pg_rows
check "the unselected table is untouched" "$(psql "$(pg_db fb_pg)" -X -At -c 'SELECT count(*) FROM migration_schema.audit')" 0
check_contains "molt's /status names the job" "$(curl -fsS "http://$MOLT_METRICS/status")" "\"changefeed_job\":\"$job\""

echo "--- 2. SIGKILL of the replicator, with writes in flight"
old_repl=$REPL_PID
write_rounds 16 30 &
writer=$!
sleep 1
kill -KILL "$old_repl"
for _ in $(seq 1 300); do
    [ "$(grep -c '"message":"replicator is ready"' "$MOLT_LOG")" -ge 2 ] && break
    sleep 0.1
done
check_contains "molt restarts it" "$(grep 'restarting the replicator' "$MOLT_LOG")" '"restart":1'
wait "$writer" || exit 1
wait_equal "after the replicator was killed" pg_rows

echo "--- 3. SIGTERM, with writes in flight (they go on while molt is stopped and started again)"
REPL_PID=$(grep '"message":"replicator started"' "$MOLT_LOG" | tail -1 | grep -o '"pid":[0-9]*' | cut -d: -f2)
write_rounds 31 50 &
writer=$!
sleep 0.5
stop_molt
check "molt exits 0 on SIGTERM" "$MOLT_EXIT" 0
check "no replicator left" "$(gone "$REPL_PID")" yes
check "the changefeed is kept" "$(job_status "$job")" running
check_contains "molt says how to cancel it" "$(grep 'keeps running' "$MOLT_LOG")" "CANCEL JOB $job"

echo "--- 4. the same command again while writes continue"
start_molt pg2 "${seed[@]}" || exit 1
check_contains "the changefeed is reused" "$(grep 'reusing the changefeed' "$MOLT_LOG")" "\"job_id\":\"$job\""
wait "$writer" || exit 1
wait_equal "after a restart of molt" pg_rows
check "one changefeed posts to this replicator" "$(running_jobs_to "$pg_port_hook")" 1

echo "--- 5. the cutover script"
# The changefeed is paused while the last writes happen, so the target is behind when the
# script starts: it must wait for them, and give up (stopping nothing) when they do not come.
sql "PAUSE JOB $job" || exit 1
write_rounds 51 55 || exit 1
out=$("$CUTOVER" --source "$crdb" --molt-pid "$MOLT_PID" --metrics-addr "$MOLT_METRICS" \
    --molt-log "$MOLT_LOG" --timeout 3 2>&1)
check "cutover: exit 1 when the target does not catch up in time" "$?" 1
check_contains "cutover: says so" "$out" "did not pass the cutover timestamp within 3s"
check_contains "cutover: and that it stopped nothing" "$out" "molt was not stopped"
check "cutover: molt is still running" "$(kill -0 "$MOLT_PID" && echo yes)" yes
"$CUTOVER" --source "$crdb" --molt-pid "$MOLT_PID" --metrics-addr "$MOLT_METRICS" \
    --molt-log "$MOLT_LOG" --timeout 120 >"$E2E_TMP/cutover.out" 2>&1 &
cutover_pid=$!
for _ in $(seq 1 100); do grep -q 'waiting' "$E2E_TMP/cutover.out" && break; sleep 0.1; done
check "cutover: waits while the target is behind" "$(kill -0 "$MOLT_PID" && grep -c 'cutover timestamp' "$E2E_TMP/cutover.out")" 1
sql "RESUME JOB $job" || exit 1
wait "$cutover_pid"
rc=$?
sed 's/^/     /' "$E2E_TMP/cutover.out"
check "the cutover script exits 0" "$rc" 0
reap_molt
check "molt exited 0" "$MOLT_EXIT" 0
check "after the cutover the target equals the source" "$(pg_rows)" "$(source_rows)"

echo "--- 6. SIGKILL of molt"
start_molt pg3 "${seed[@]}" || exit 1
kill -KILL "$MOLT_PID"
reap_molt
check "its replicator does not outlive it" "$(gone "$REPL_PID")" yes
sql "CANCEL JOB $job" || exit 1

echo "--- 7. MariaDB, the seed's MySQL TLS connection string, --cancel-changefeed-on-exit"
my_port_hook=$(free_port)
secure_json "$my_port_hook" "$E2E_TMP/changefeed-my.json" "$certs"
my_cmd=(--source "$crdb" --target "$my_target" --schema-filter 'migration_schema'
    --table-filter 'employees|payments|orders'
    --replicator-flags "--stagingSchema _replicator_1739996035106984001 --tlsCertificate $certs/server.crt --tlsPrivateKey $certs/server.key --flushPeriod 100ms"
    --mode failback --changefeeds-path "$E2E_TMP/changefeed-my.json" --cancel-changefeed-on-exit)
start_molt my1 "${my_cmd[@]}" || exit 1
REPL_PID=$(grep '"message":"replicator started"' "$MOLT_LOG" | tail -1 | grep -o '"pid":[0-9]*' | cut -d: -f2)
repl_cmdline=$(tr '\0' ' ' <"/proc/${REPL_PID:-0}/cmdline" 2>/dev/null)
check_contains "MariaDB: the replicator reads the target from a file" "$repl_cmdline" "--targetConnFile "
check "MariaDB: no password on the replicator's command line" "$(grep -c ':app@' <<<"$repl_cmdline")" 0
my_job=$(grep '"message":"changefeed created"' "$MOLT_LOG" | grep -o '"job_id":"[0-9]*"' | cut -d'"' -f4)
check_contains "the MySQL sink path is /<database>" "$(grep '"message":"changefeed created"' "$MOLT_LOG")" \
    "webhook-https://localhost:$my_port_hook/fb_my\""
write_rounds 56 60 || exit 1
# The MariaDB target starts empty: only what arrives through this changefeed is there, so
# compare the rows written from round 56 on (updates carry whole rows).
for _ in $(seq 1 240); do [ "$(source_since 56)" == "$(my_since 56)" ] && break; sleep 0.25; done
check "MariaDB: the rows written since the changefeed started arrived" "$(my_since 56)" "$(source_since 56)"
check "MariaDB: the unselected table is untouched" "$(my_at "$OWN_MY_URL" 'SELECT count(*) FROM audit')" 0
stop_molt
check "molt exits 0 on SIGTERM" "$MOLT_EXIT" 0
check "the changefeed is canceled" "$(job_status "$my_job")" canceled

echo "--- 7b. a canceled changefeed, writes meanwhile, the same command again: resumed from staging"
write_rounds 61 65 || exit 1
start_molt my2 "${my_cmd[@]}" || exit 1
check_contains "the new changefeed starts at the staged checkpoint" \
    "$(grep 'resumes from the checkpoint' "$MOLT_LOG")" '_replicator_1739996035106984001'
write_rounds 66 70 || exit 1
for _ in $(seq 1 240); do [ "$(source_since 56)" == "$(my_since 56)" ] && break; sleep 0.25; done
check "MariaDB: nothing written while molt was stopped is lost" "$(my_since 56)" "$(source_since 56)"
stop_molt
check "molt exits 0 on SIGTERM" "$MOLT_EXIT" 0

echo "--- 8. the insecure variant"
insecure_port=$(free_port)
printf '{"port": %s}\n' "$insecure_port" >"$E2E_TMP/insecure.json"
start_molt insecure --source "${crdb%%\?*}?sslmode=disable" \
    --target "$(pg_db fb_pg2)" --schema-filter 'migration_schema' \
    --table-filter 'employees|payments|orders' --allow-tls-mode-disable \
    --replicator-flags "--tlsSelfSigned --disableAuthentication --flushPeriod 100ms" \
    --mode failback --changefeeds-path "$E2E_TMP/insecure.json" --cancel-changefeed-on-exit || exit 1
check_contains "a generated staging schema" "$(grep 'staging database name' "$MOLT_LOG")" \
    'staging database name: _replicator_'
write_rounds 71 80 || exit 1
for _ in $(seq 1 240); do [ "$(source_since 71)" == "$(pg2_since 71)" ] && break; sleep 0.25; done
check "insecure PostgreSQL: the rows written since the changefeed started arrived" \
    "$(pg2_since 71)" "$(source_since 71)"
stop_molt
check "molt exits 0 on SIGTERM" "$MOLT_EXIT" 0

echo "--- 9. the seed's command with --userscript table_filter.ts: one table filtered out"
psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -c "DROP DATABASE IF EXISTS fb_pg3 WITH (FORCE)" \
    -c "CREATE DATABASE fb_pg3 OWNER app" || exit 1
psql "$(pg_db fb_pg3)" -X -q -v ON_ERROR_STOP=1 -c "$tables" || exit 1
cat >"$E2E_TMP/table_filter.ts" <<'EOF'
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "fb_pg3.migration_schema";
const TABLE_TO_SKIP = "payments";

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => (meta.table === TABLE_TO_SKIP ? null : row),
  onRowDelete: (row, meta) => (meta.table === TABLE_TO_SKIP ? null : row),
});
EOF
filtered_port=$(free_port)
printf '{"port": %s}\n' "$filtered_port" >"$E2E_TMP/filtered.json"
start_molt filtered --source "${crdb%%\?*}?sslmode=disable" \
    --target "$(pg_db fb_pg3)" --schema-filter 'migration_schema' \
    --table-filter 'employees|payments|orders' --allow-tls-mode-disable \
    --replicator-flags "--tlsSelfSigned --disableAuthentication --flushPeriod 100ms --userscript $E2E_TMP/table_filter.ts" \
    --mode failback --changefeeds-path "$E2E_TMP/filtered.json" --cancel-changefeed-on-exit || exit 1
write_rounds 81 90 || exit 1
kept_query="SELECT id, name, salary FROM migration_schema.employees WHERE id >= $((81 * 3)) ORDER BY id;
    SELECT id, item, qty FROM migration_schema.orders WHERE id >= 81 ORDER BY id"
kept_source() { psql "$OWN_PG_URL" -X -q -At -F $'\t' -c "$kept_query" | md5sum; }
kept_target() { psql "$(pg_db fb_pg3)" -X -q -At -F $'\t' -c "$kept_query" | md5sum; }
for _ in $(seq 1 240); do [ "$(kept_source)" == "$(kept_target)" ] && break; sleep 0.25; done
check "userscript: the tables it keeps arrived" "$(kept_target)" "$(kept_source)"
check "userscript: the table it filters stays empty" \
    "$(psql "$(pg_db fb_pg3)" -X -q -At -c 'SELECT count(*) FROM migration_schema.payments')" 0
check "userscript: the source's payments were written meanwhile" \
    "$(psql "$OWN_PG_URL" -X -q -At -c 'SELECT count(*) > 0 FROM migration_schema.payments WHERE id >= 8100')" t
stop_molt
check "molt exits 0 on SIGTERM" "$MOLT_EXIT" 0

stop_standin
drop_own_databases fb_src fb_my
psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -c "DROP DATABASE fb_pg WITH (FORCE)" \
    -c "DROP DATABASE fb_pg2 WITH (FORCE)" -c "DROP DATABASE fb_pg3 WITH (FORCE)"
e2e_finish
