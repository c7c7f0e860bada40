#!/usr/bin/env bash
# The CockroachDB stand-in end to end, the way failback runs: `crdb-emulator serve` (TLS towards
# clients, changefeed faults on) in front of a PostgreSQL database; psql through it with
# sslmode=verify-full; `replicator start` in the consistent mode with its staging on the
# stand-in in a database of its own (--stagingSchema _replicator_<nanos>, one part, as MOLT
# passes it) and its target on MariaDB; a changefeed created as the MOLT docs do (cursor from
# cluster_logical_timestamp()); transactions written through the stand-in with psql. The target
# must end equal to the source; again after ALTER CHANGEFEED ADD of a table WITH initial_scan,
# and after the feed is re-created at the target's checkpoint with an initial scan (both scans send
# rows below resolved timestamps the replicator has). Then CANCEL JOB, SIGTERM (exit 0,
# replication slot gone), and DROP DATABASE of the staging database.
# Usage: crdb_serve_test.sh REPLICATOR CRDB_EMULATOR   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
EMULATOR=$2
. "$(dirname "$0")/lib.sh"
e2e_init

own_databases serve_src serve_dst || exit 1
src=$OWN_PG_URL
dst=$OWN_MY_URL

certs="$E2E_TMP/certs"
mkdir -p "$certs"
(
    cd "$certs" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=e2e CA"
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost' > san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext
    openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 -subj "/CN=other CA"
) >/dev/null 2>&1 || exit 1

echo "--- the stand-in"
# The fault counts checked at the end are certain, not likely: with --faults-at-least-once each
# enabled fault fires at its first opportunity, and this run has every one of them. duplicate:
# the first acknowledged row batch (rows are acknowledged before the target can equal the
# source). duplicate_resolved: the first acknowledged resolved timestamp (the consistent mode
# applies nothing before one, and the target ends equal to the source). split_transaction: the
# first transaction of 2+ rows (each round below writes dozens). Rates alone, with the few
# batches and resolved timestamps of this short run, left a count at 0 about one run in four.
# Replays are frequent here, so the restart backoff is short (CockroachDB's doubles to 10 min).
"$EMULATOR" serve --backend "$src" --listen 127.0.0.1:0 --ready-file "$E2E_TMP/ready" \
    --tls-cert "$certs/server.crt" --tls-key "$certs/server.key" \
    --fault-duplicate 0.05 --fault-replay 0.05 --fault-duplicate-resolved 0.1 \
    --fault-split-transaction 0.2 --fault-drop-connection 0.01 --faults-at-least-once \
    --restart-backoff 100ms --restart-max-backoff 1s \
    >"$E2E_TMP/serve.log" 2>&1 &
serve_pid=$!
E2E_PIDS+=("$serve_pid")
for _ in $(seq 1 100); do [ -s "$E2E_TMP/ready" ] && break; sleep 0.05; done
[ -s "$E2E_TMP/ready" ] || { cat "$E2E_TMP/serve.log"; exit 1; }
port=$(cut -d: -f2 "$E2E_TMP/ready")
crdb="postgresql://app:app@localhost:$port/serve_src?sslmode=verify-full&sslrootcert=$certs/ca.crt"
sql() { psql "$crdb" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

check_contains "psql with sslmode=verify-full: SELECT version()" "$(sql 'SELECT version()')" \
    "CockroachDB CCL v"
check "the session is TLS" "$(psql "$crdb" -X -At -c '\conninfo' | grep -c 'SSL connection')" 1
out=$(psql "postgresql://app:app@localhost:$port/serve_src?sslmode=verify-full&sslrootcert=$certs/other.crt" \
    -X -At -c 'SELECT 1' 2>&1)
check_contains "a server certificate from another CA is refused" "$out" "certificate verify failed"
out=$(psql "postgresql://app:wrong@localhost:$port/serve_src?sslmode=require" -X -At -c 'SELECT 1' 2>&1)
check_contains "authentication is PostgreSQL's" "$out" 'password authentication failed for user "app"'
out=$(psql "$crdb" -X -At -c "CREATE CHANGEFEED FOR TABLE t INTO 'webhook-https://localhost:1/x'" 2>&1)
check_contains "CREATE CHANGEFEED needs kv.rangefeed.enabled" "$out" \
    "rangefeeds require the kv.rangefeed.enabled setting"

# One simple query that makes a schema and then a table in it, as psql -c sends it.
out=$(sql "CREATE SCHEMA migration_schema; CREATE TABLE migration_schema.employees (id INT8 PRIMARY KEY)" 2>&1)
check "CREATE SCHEMA, then CREATE TABLE in it, in one psql -c" "$out" ""
check "the table is in the new schema" "$(sql "SELECT count(*) FROM migration_schema.employees" 2>&1)" 0
sql "DROP SCHEMA migration_schema CASCADE"

echo "--- replicator: consistent mode, staging in a database of its own on the stand-in, target MariaDB"
staging_db="_replicator_$(date +%s%N)"
sql "CREATE TABLE accounts (id INT8 PRIMARY KEY, owner TEXT NOT NULL, balance NUMERIC(12,2))"
sql "CREATE TABLE transfers (id INT8, seq INT8, amount NUMERIC(12,2), note TEXT, PRIMARY KEY (id, seq))"
my_at "$dst" "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance DECIMAL(12,2));
    CREATE TABLE transfers (id BIGINT, seq BIGINT, amount DECIMAL(12,2), note TEXT, PRIMARY KEY (id, seq))" || exit 1
# Without --stagingCreateSchema a missing staging database is an error that names the flag.
out=$(timeout 30 "$REPLICATOR" start --tlsSelfSigned --disableAuthentication \
    --bindAddr 127.0.0.1:0 --targetConn "$dst" --stagingConn "$crdb" --stagingSchema "$staging_db" 2>&1)
check "a missing staging database is an error without --stagingCreateSchema" "$?" 1
check_contains "the error names the flag" "$out" "pass --stagingCreateSchema to have the replicator create it"
check "and nothing was created" \
    "$(psql "$crdb" -X -q -At -F '|' -c 'SHOW DATABASES' | grep -c "^$staging_db|")" 0
start_replicator repl --tlsSelfSigned --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$dst" --stagingConn "$crdb" --stagingSchema "$staging_db" --stagingCreateSchema \
    --flushPeriod 100ms || exit 1
ready=$(grep 'staging schema ready' "$E2E_TMP/repl.log")
check_contains "replicator staged on the stand-in, as on CockroachDB" "$ready" '"server":"CockroachDB"'
check_contains "in database $staging_db, schema public" "$ready" "\"stagingSchema\":\"$staging_db.public\""
check "SHOW DATABASES lists the staging database" \
    "$(psql "$crdb" -X -q -At -F '|' -c 'SHOW DATABASES' | grep -c "^$staging_db|app|||{}|\$")" 1
check "its tables are in the backend schema \"$staging_db.public\"" \
    "$(psql "$src" -X -q -At -c "SELECT string_agg(table_name, ',' ORDER BY table_name)
        FROM information_schema.tables WHERE table_schema = '$staging_db.public'")" \
    "jwt_public_keys,jwt_revoked_ids,molt_checkpoints,molt_layout"

sql "SET CLUSTER SETTING kv.rangefeed.enabled = true"
cursor=$(sql "SELECT cluster_logical_timestamp()")
job=$(sql "CREATE CHANGEFEED FOR TABLE accounts, transfers
    INTO 'webhook-https://127.0.0.1:$REPLICATOR_PORT/serve_dst?insecure_tls_skip_verify=true'
    WITH updated, resolved = '250ms', min_checkpoint_frequency = '250ms', initial_scan = 'no',
    cursor = '$cursor', webhook_client_timeout = '10s', compression = 'gzip',
    webhook_sink_config = '{\"Flush\":{\"Messages\":50,\"Frequency\":\"50ms\"},\"Retry\":{\"Max\":3,\"Backoff\":\"50ms\"}}'")
check "CREATE CHANGEFEED returns a job id" "$([[ "$job" =~ ^[0-9]{15,19}$ ]] && echo yes)" yes

echo "--- transactions through the stand-in"
for round in $(seq 1 40); do
    sql "BEGIN;
        INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.25 FROM generate_series($round * 7, $round * 7 + 20) g
            ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + 1;
        INSERT INTO transfers SELECT g % 50, $round, g * 0.01, 'round $round' FROM generate_series(1, 25) g
            ON CONFLICT DO NOTHING;
        UPDATE accounts SET owner = owner || '+' WHERE id % 5 = $round % 5;
        DELETE FROM accounts WHERE id % 11 = $round % 11;
        DELETE FROM transfers WHERE seq = $round - 3 AND id % 2 = 0;
        COMMIT" || exit 1
done
source_rows() {
    psql "$src" -X -q -At -F $'\t' -c "SELECT id, owner, balance FROM accounts ORDER BY id" \
        -c "SELECT id, seq, amount, note FROM transfers ORDER BY id, seq"
}
target_rows() {
    my_at "$dst" "SELECT id, owner, balance FROM accounts ORDER BY id;
        SELECT id, seq, amount, note FROM transfers ORDER BY id, seq"
}
# wait_equal LABEL SOURCE_ROWS TARGET_ROWS: waits up to a minute for equal rows, then checks.
wait_equal() {
    for _ in $(seq 1 120); do
        [ "$("$2" | md5sum)" == "$("$3" | md5sum)" ] && break
        sleep 0.5
    done
    check "$1 ($("$2" | wc -l) rows)" "$("$3" | md5sum)" "$("$2" | md5sum)"
}
wait_equal "the target equals the source" source_rows target_rows
staged=$(sql "SELECT count(*) FROM $staging_db.molt_checkpoints WHERE target_applied_at IS NOT NULL")
if [ "${staged:-0}" -gt 0 ]; then echo "ok   $staged checkpoints applied, read as $staging_db.molt_checkpoints"; else
    echo "FAIL no applied checkpoint in $staging_db.public.molt_checkpoints"; E2E_FAILURES=$((E2E_FAILURES + 1)); fi
check "the changefeed sent gzip bodies (compression = 'gzip')" \
    "$(curl -s --insecure "https://127.0.0.1:$REPLICATOR_PORT/_/varz" |
        grep -c '^http_compressed_requests_total{encoding="gzip"} [1-9]')" 1
job_status() { psql "$crdb" -X -q -At -F $'\t' -c "SHOW CHANGEFEED JOB $job" | cut -f4; }
check "the job is running" "$(job_status)" running

echo "--- ALTER CHANGEFEED ADD a table WITH initial_scan, then a feed re-created at a cursor"
# Both scans send rows at or below resolved timestamps the replicator has already received:
# rows staging never had, which it must apply without moving any key back to an older version.
late_applied() {
    curl -s --insecure "https://127.0.0.1:$REPLICATOR_PORT/_/varz" |
        awk '/^stage_late_applied_mutations_total\{/ { n += $2 } END { print n + 0 }'
}
sql "CREATE TABLE ledger (id INT8 PRIMARY KEY, entry TEXT, amount NUMERIC(12,2))"
my_at "$dst" "CREATE TABLE ledger (id BIGINT PRIMARY KEY, entry TEXT, amount DECIMAL(12,2))" || exit 1
sql "INSERT INTO ledger SELECT g, 'entry ' || g, g * 0.5 FROM generate_series(1, 300) g"
# Paused once the high-water mark is past the rows, so the scan (as of the mark) has them.
written=$(sql "SELECT cluster_logical_timestamp()")
high_water() { psql "$crdb" -X -q -At -F $'\t' -c "SHOW CHANGEFEED JOB $job" | cut -f10; }
for _ in $(seq 1 100); do
    hw=$(high_water)
    [ -n "$hw" ] && [ "$(psql "$src" -X -q -At -c "SELECT '$hw'::numeric > '$written'::numeric")" = t ] && break
    sleep 0.1
done
# The scan of an added table is as of the paused job's high-water mark, which can be ahead of
# the last resolved timestamp the replicator received (the mark is saved first; a pause cancels
# the resolved request in flight): then its rows are not late. Paused until the target's
# checkpoint shows the replicator had a resolved timestamp at or above the mark.
target_checkpoint() {
    my_at "$dst" "SELECT CONCAT(last_nanos, '.', LPAD(last_logical, 10, '0'))
        FROM _replicator_progress ORDER BY last_nanos DESC, last_logical DESC LIMIT 1"
}
covered() { [ "$(psql "$src" -X -q -At -c "SELECT '$(target_checkpoint)'::numeric >= '$1'::numeric")" = t ]; }
for attempt in $(seq 1 10); do
    sql "PAUSE JOB $job"
    mark=$(high_water)
    for _ in $(seq 1 30); do covered "$mark" && break 2; sleep 0.1; done
    sql "RESUME JOB $job"
    sleep 0.5
done
check "the job is paused with its mark covered by the target's checkpoint ($attempt attempts)" \
    "$(job_status)/$(covered "$mark" && echo covered)" paused/covered
sql "ALTER CHANGEFEED $job ADD ledger WITH initial_scan = 'yes'" >/dev/null || exit 1
sql "UPDATE ledger SET amount = amount + 1 WHERE id % 3 = 0; DELETE FROM ledger WHERE id % 7 = 0;
    UPDATE accounts SET balance = balance - 1 WHERE id % 4 = 0"
sql "RESUME JOB $job"
all_source_rows() {
    source_rows
    psql "$src" -X -q -At -F $'\t' -c "SELECT id, entry, amount FROM ledger ORDER BY id"
}
all_target_rows() {
    target_rows
    my_at "$dst" "SELECT id, entry, amount FROM ledger ORDER BY id"
}
wait_equal "after ALTER CHANGEFEED ADD, the target equals the source" all_source_rows all_target_rows
after_alter=$(late_applied)
if [ "$after_alter" -gt 0 ]; then echo "ok   $after_alter scanned rows applied below the resolved timestamp"; else
    echo "FAIL the added table's scan never took the late-row path"; E2E_FAILURES=$((E2E_FAILURES + 1)); fi

high_water=$(high_water)
check "the job has a high-water mark" "$([[ "$high_water" =~ ^[0-9]{19}\.[0-9]{10}$ ]] && echo yes)" yes
sql "CANCEL JOB $job"
# Re-created at the checkpoint the target holds, as an operator would (the job's high-water mark
# can be ahead of the last resolved timestamp the replicator received, and scan rows above that
# are not late): every scanned row is at or below what the replicator has.
committed=$(target_checkpoint)
check "the target holds a checkpoint" "$([[ "$committed" =~ ^[0-9]{19}\.[0-9]{10}$ ]] && echo yes)" yes
sql "UPDATE ledger SET entry = entry || ' (after)' WHERE id % 5 = 0; INSERT INTO ledger VALUES (1000, 'new', 1);
    DELETE FROM accounts WHERE id % 13 = 1"
job=$(sql "CREATE CHANGEFEED FOR TABLE accounts, transfers, ledger
    INTO 'webhook-https://127.0.0.1:$REPLICATOR_PORT/serve_dst?insecure_tls_skip_verify=true'
    WITH updated, resolved = '250ms', min_checkpoint_frequency = '250ms', initial_scan = 'yes',
    cursor = '$committed', webhook_client_timeout = '10s',
    webhook_sink_config = '{\"Flush\":{\"Messages\":50,\"Frequency\":\"50ms\"},\"Retry\":{\"Max\":3,\"Backoff\":\"50ms\"}}'")
wait_equal "after a feed re-created at the target's checkpoint with an initial scan, the target equals the source" \
    all_source_rows all_target_rows
# The target held those rows already, so equality does not wait for the scan: the counter may
# move a little later (a restart's backoff, a retry).
scan_applied() { [ "$(late_applied)" -gt "$after_alter" ]; }
for _ in $(seq 1 300); do scan_applied && break; sleep 0.1; done
if scan_applied; then echo "ok   the re-created feed's scan took the late-row path"; else
    echo "FAIL the re-created feed's scan never took the late-row path"; E2E_FAILURES=$((E2E_FAILURES + 1)); fi
check "the new job is running" "$(job_status)" running

echo "--- CANCEL JOB, DROP DATABASE and SIGTERM"
sql "CANCEL JOB $job"
check "the job is canceled" "$(job_status)" canceled
stop_replicator
sql "DROP DATABASE $staging_db CASCADE"
check "DROP DATABASE dropped the staging schemas" \
    "$(psql "$src" -X -q -At -c "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, '$staging_db.')")" 0
kill -TERM "$serve_pid"
wait "$serve_pid"
check "crdb-emulator exits 0 on SIGTERM" "$?" 0
E2E_PIDS=()
stats=$(grep "crdb-emulator: job $job" "$E2E_TMP/serve.log")
echo "     $stats"
for f in duplicate duplicate_resolved split_transaction; do
    n=$(grep -o " $f=[0-9]*" <<<"$stats" | cut -d= -f2)
    if [ "${n:-0}" -gt 0 ]; then echo "ok   $n $f faults injected"; else
        echo "FAIL no $f fault was injected"; E2E_FAILURES=$((E2E_FAILURES + 1)); fi
done
check "its replication slot is gone" \
    "$(psql "$MOLT_TEST_PG_ADMIN_URL" -X -At -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'crdb_emulator_${serve_pid}_%'")" 0

drop_own_databases serve_src serve_dst
e2e_finish
