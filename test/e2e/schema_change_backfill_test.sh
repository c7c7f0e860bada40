#!/usr/bin/env bash
# Schema-change backfills end to end. A table of MOLT_BACKFILL_ROWS rows (default 1 000 000) on
# the CockroachDB stand-in, a changefeed (cursor, no initial scan) into `replicator start` in
# the consistent mode (staging on PostgreSQL, target MariaDB, which starts with the same rows, as
# a failback does), batched as MOLT's default changefeed is. On the source:
#   1. ADD COLUMN ... NOT NULL DEFAULT: CockroachDB re-sends every row at the schema change's
#      timestamp. The target does not have the column yet: the replicator must say so, by name,
#      at error level and in apply_stalled, and hold the checkpoint (nothing half-applied); once
#      the operator adds the column to the target, every row lands.
#   2. DROP COLUMN (nullable on the target): every row again, without the column.
# Live changes go on meanwhile. The target must end equal to the source, and the replicator's
# peak memory is reported (a backfill is one source transaction of every row of the table).
# Usage: schema_change_backfill_test.sh REPLICATOR CRDB_EMULATOR (servers from with-dbs.sh)
REPLICATOR=$1
EMULATOR=$2
ROWS=${MOLT_BACKFILL_ROWS:-1000000}
# Extra replicator flags (MOLT_BACKFILL_FLAGS), e.g. another --scanSize or --targetMaxPoolSize.
read -r -a EXTRA <<<"${MOLT_BACKFILL_FLAGS:-}"
. "$(dirname "$0")/lib.sh"
e2e_init

own_databases backfill_src backfill_dst || exit 1
src=$OWN_PG_URL
dst=$OWN_MY_URL

echo "--- $ROWS rows on the source and the target"
psql "$src" -X -q -v ON_ERROR_STOP=1 -c "CREATE TABLE items (id INT8 PRIMARY KEY, name TEXT NOT NULL, qty INT8)" \
    -c "INSERT INTO items SELECT g, 'item ' || g, g % 100 FROM generate_series(1, $ROWS) g" || exit 1
my_at "$dst" "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty BIGINT);
    INSERT INTO items SELECT seq, CONCAT('item ', seq), seq % 100 FROM seq_1_to_$ROWS" || exit 1

"$EMULATOR" serve --backend "$src" --listen 127.0.0.1:0 --ready-file "$E2E_TMP/ready" \
    --restart-backoff 100ms --restart-max-backoff 1s >"$E2E_TMP/serve.log" 2>&1 &
serve_pid=$!
E2E_PIDS+=("$serve_pid")
for _ in $(seq 1 100); do [ -s "$E2E_TMP/ready" ] && break; sleep 0.05; done
[ -s "$E2E_TMP/ready" ] || { cat "$E2E_TMP/serve.log"; exit 1; }
crdb="postgresql://app:app@$(cat "$E2E_TMP/ready")/backfill_src?sslmode=disable"
sql() { psql "$crdb" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

staging="_replicator_backfill_$(date +%s%N)"
start_replicator repl --tlsSelfSigned --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$dst" --stagingConn "$MOLT_TEST_PG_URL" --stagingSchema "$staging" \
    --stagingCreateSchema --flushPeriod 100ms "${EXTRA[@]}" || exit 1
varz() { curl -s --insecure "https://127.0.0.1:$REPLICATOR_PORT/_/varz"; }
metric() { varz | awk -v m="$1" 'index($0, m) == 1 { n += $NF } END { print n + 0 }'; }
target_checkpoint() {
    my_at "$dst" "SELECT CONCAT(last_nanos, '.', LPAD(last_logical, 10, '0'))
        FROM _replicator_progress WHERE first_nanos = 0"
}

sql "SET CLUSTER SETTING kv.rangefeed.enabled = true"
cursor=$(sql "SELECT cluster_logical_timestamp()")
job=$(sql "CREATE CHANGEFEED FOR TABLE items
    INTO 'webhook-https://127.0.0.1:$REPLICATOR_PORT/backfill_dst?insecure_tls_skip_verify=true'
    WITH updated, resolved = '250ms', min_checkpoint_frequency = '250ms', cursor = '$cursor',
    webhook_sink_config = '{\"Flush\":{\"Bytes\":1048576,\"Frequency\":\"1s\"}}'")
check "CREATE CHANGEFEED returns a job id" "$([[ "$job" =~ ^[0-9]{15,19}$ ]] && echo yes)" yes

source_rows() { psql "$src" -X -q -At -F $'\t' -c "SELECT $1 FROM items ORDER BY id"; }
target_rows() { my_at "$dst" "SELECT $1 FROM items ORDER BY id"; }
# wait_equal LABEL COLUMNS SECONDS: waits for equal rows, then checks.
wait_equal() {
    local end=$((SECONDS + $3))
    while [ $SECONDS -lt $end ]; do
        [ "$(source_rows "$2" | md5sum)" == "$(target_rows "$2" | md5sum)" ] && break
        sleep 1
    done
    check "$1" "$(target_rows "$2" | md5sum)" "$(source_rows "$2" | md5sum)"
}

sql "UPDATE items SET qty = qty + 1 WHERE id % 1000 = 1"
wait_equal "live changes applied" "id, name, qty" 120

echo "--- ADD COLUMN with a default on the source only: a backfill the target cannot take yet"
sql "ALTER TABLE items ADD COLUMN status TEXT NOT NULL DEFAULT 'new'"
sql "UPDATE items SET status = 'sold', name = name || ' sold' WHERE id % 997 = 0"
for _ in $(seq 1 1200); do
    grep -q 'the target has no column \\"status\\"' "$E2E_TMP/repl.log" && break
    sleep 0.5
done
check_contains "the replicator names the missing column at error level" \
    "$(grep 'the target has no column' "$E2E_TMP/repl.log" | head -1)" '"level":"error"'
check "apply_stalled counts it" "$([ "$(metric 'apply_stalled')" -gt 0 ] && echo yes)" yes
held=$(target_checkpoint)
sleep 2
check "the checkpoint holds, nothing of the backfill or after it is applied" \
    "$(target_checkpoint)/$(my_at "$dst" "SELECT count(*) FROM items WHERE name LIKE '% sold'")" "$held/0"

echo "--- the operator adds the column to the target"
my_at "$dst" "ALTER TABLE items ADD COLUMN status TEXT NOT NULL DEFAULT 'new'" || exit 1
start=$SECONDS
wait_equal "after the backfill, the target equals the source" "id, name, qty, status" 900
echo "     applied in $((SECONDS - start)) s"

echo "--- DROP COLUMN: every row again, without it"
sql "ALTER TABLE items DROP COLUMN qty"
sql "UPDATE items SET name = name || '!' WHERE id % 1009 = 0"
start=$SECONDS
wait_equal "after the second backfill, the target equals the source" "id, name, status" 900
echo "     applied in $((SECONDS - start)) s"
check "no row went astray (row count)" "$(target_rows "count(*)")" "$ROWS"
[ -z "${MOLT_BACKFILL_FLAGS:-}" ] &&
    check "each backfill was applied page by page" "$(metric 'apply_large_transactions_total')" 2

peak=$(awk '/^VmHWM/ { print $2 }' "/proc/$REPLICATOR_PID/status")
echo "     replicator peak resident memory: $((peak / 1024)) MiB for $ROWS-row backfills"
sql "CANCEL JOB $job"
stop_replicator
kill -TERM "$serve_pid"
wait "$serve_pid"
E2E_PIDS=()
drop_own_databases backfill_src backfill_dst
psql "$MOLT_TEST_PG_URL" -X -q -c "DROP SCHEMA IF EXISTS \"$staging\" CASCADE"
e2e_finish
