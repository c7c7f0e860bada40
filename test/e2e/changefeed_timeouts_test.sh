#!/usr/bin/env bash
# A slow target against a changefeed's timeouts, through the CockroachDB stand-in
# (crdb-emulator serve) and `replicator start --immediate` on PostgreSQL:
#  1. stale copy: webhook_client_timeout='2s' and a target trigger that holds the first copy of
#     a row until a newer version of it is on the target. The stand-in gives up on that copy
#     (connection closed), sends it again, then sends the newer version; the first copy then
#     reaches COMMIT while the newer version is already applied. It must roll back: the target
#     keeps the newer version.
#  2. no client timeout (CockroachDB v23.2 to v26.1 when webhook_client_timeout is unset: an
#     unanswered request waits for ever) and a target table locked for longer than
#     --applyTimeout (writes wait, reads do not): the replicator answers 503 while the lock is
#     still held (the lock is held until the test ends it, so no timing bound can be missed under
#     load, and without the bound no answer would come at all), the changefeed retries, and the
#     row lands once the lock is gone.
# Usage: changefeed_timeouts_test.sh REPLICATOR CRDB_EMULATOR   (servers from with-dbs.sh)
REPLICATOR=$1
EMULATOR=$2
. "$(dirname "$0")/lib.sh"
e2e_init

own_databases tmo_dst tmo_unused || exit 1
dst=$OWN_PG_URL
own_databases tmo_src tmo_unused || exit 1
src=$OWN_PG_URL
dst_sql() { psql "$dst" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

"$EMULATOR" serve --backend "$src" --listen 127.0.0.1:0 --ready-file "$E2E_TMP/ready" \
    --restart-backoff 100ms >"$E2E_TMP/serve.log" 2>&1 &
serve_pid=$!
E2E_PIDS+=("$serve_pid")
for _ in $(seq 1 100); do [ -s "$E2E_TMP/ready" ] && break; sleep 0.05; done
[ -s "$E2E_TMP/ready" ] || { cat "$E2E_TMP/serve.log"; exit 1; }
crdb="postgresql://app:app@localhost:$(cut -d: -f2 "$E2E_TMP/ready")/tmo_src?sslmode=disable"
sql() { psql "$crdb" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
sql "SET CLUSTER SETTING kv.rangefeed.enabled = true"
job_error() { psql "$crdb" -X -q -At -F $'\t' -c "SHOW CHANGEFEED JOB $1" | cut -f5; }
# wait_until SECONDS COMMAND...: polls COMMAND every 100 ms for SECONDS of wall time; false if
# it never succeeded.
wait_until() {
    local end=$((SECONDS + $1))
    shift
    while [ "$SECONDS" -lt "$end" ]; do "$@" && return 0; sleep 0.1; done
    return 1
}
feed() { # feed TABLE OPTIONS: creates a changefeed of TABLE into the replicator; prints its id
    sql "CREATE CHANGEFEED FOR TABLE $1
        INTO 'webhook-https://127.0.0.1:$REPLICATOR_PORT/tmo_dst/public?insecure_tls_skip_verify=true'
        WITH updated, resolved = '250ms', min_checkpoint_frequency = '250ms', initial_scan = 'no',
        cursor = '$(sql "SELECT cluster_logical_timestamp()")' $2"
}
target_value() { dst_sql "SELECT coalesce((SELECT v FROM $1 WHERE id = 1), 'none')"; }

echo "--- 1. a copy the changefeed gave up on never commits after a newer version"
sql "CREATE TABLE stale (id INT8 PRIMARY KEY, v TEXT)"
dst_sql "CREATE TABLE stale (id BIGINT PRIMARY KEY, v TEXT);
    CREATE SEQUENCE stale_writes;
    CREATE FUNCTION hold_first_copy() RETURNS trigger LANGUAGE plpgsql AS \$\$
    BEGIN
        -- The first write of 'old' waits (20 s at most) until 'new' is on the target.
        IF NEW.v = 'old' AND nextval('stale_writes') = 1 THEN
            FOR i IN 1..200 LOOP
                EXIT WHEN EXISTS (SELECT 1 FROM stale WHERE id = NEW.id AND v = 'new');
                PERFORM pg_sleep(0.1);
            END LOOP;
        END IF;
        RETURN NEW;
    END \$\$;
    CREATE TRIGGER hold_first_copy BEFORE INSERT OR UPDATE ON stale
        FOR EACH ROW EXECUTE FUNCTION hold_first_copy()" || exit 1
start_replicator stale --immediate --tlsSelfSigned --disableAuthentication \
    --bindAddr 127.0.0.1:0 --targetConn "$dst" --applyTimeout 30s || exit 1
job=$(feed stale ", webhook_client_timeout = '2s',
    webhook_sink_config = '{\"Flush\":{\"Messages\":1,\"Frequency\":\"10ms\"},\"Retry\":{\"Max\":3,\"Backoff\":\"100ms\"}}'")
sql "INSERT INTO stale VALUES (1, 'old')"
# The first copy waits in the trigger; the stand-in times out after 2 s and sends it again.
old_applied() { [ "$(target_value stale)" = old ]; }
wait_until 20 old_applied
check "the retried copy applied 'old' while the first still waits" "$(target_value stale)" old
check "the first copy is still waiting in the trigger" \
    "$(dst_sql "SELECT count(*) FROM pg_stat_activity WHERE datname = 'tmo_dst' AND query LIKE 'INSERT INTO%stale%' AND state = 'active'")" 1
sql "UPDATE stale SET v = 'new' WHERE id = 1"
new_applied() { [ "$(target_value stale)" = new ]; }
wait_until 20 new_applied
check "the newer version is applied" "$(target_value stale)" new
first_copy_done() { grep -q 'the client closed the connection' "$E2E_TMP/stale.log"; }
wait_until 30 first_copy_done
# (At least once: under load a retry can outlast the client timeout too, and roll back alike.)
gone=$(grep 'not applying a request' "$E2E_TMP/stale.log" | grep -c 'the client closed the connection')
check "the first copy rolled back when it found its client gone ($gone such rollbacks)" \
    "$([ "$gone" -ge 1 ] && echo yes)" yes
no_writer_left() { [ "$(dst_sql "SELECT count(*) FROM pg_stat_activity WHERE datname = 'tmo_dst' AND query LIKE 'INSERT INTO%stale%' AND state <> 'idle'")" = 0 ]; }
wait_until 10 no_writer_left
check "the target still holds the newer version" "$(target_value stale)" new
# Each write of 'old' draws from the sequence: the first copy's insert, its retry's, and the
# first copy's update once it went on.
writes=$(dst_sql "SELECT last_value FROM stale_writes")
check "the trigger saw the first copy, its retry, and the first copy again ($writes writes of 'old')" \
    "$([ "$writes" -ge 3 ] && echo yes)" yes
sql "CANCEL JOB $job"
stop_replicator
check "replicator exit" "$REPLICATOR_EXIT" 0

echo "--- 2. no client timeout: the replicator answers while the target is locked"
sql "CREATE TABLE locked (id INT8 PRIMARY KEY, v TEXT)"
dst_sql "CREATE TABLE locked (id BIGINT PRIMARY KEY, v TEXT)"
start_replicator locked --immediate --tlsSelfSigned --disableAuthentication \
    --bindAddr 127.0.0.1:0 --targetConn "$dst" --applyTimeout 2s || exit 1
job=$(feed locked ", webhook_sink_config = '{\"Retry\":{\"Max\":2,\"Backoff\":\"200ms\"}}'")
# The lock is held until the test ends the locker's session (120 s at most).
PGAPPNAME=tmo_locker psql "$dst" -X -q -c "BEGIN; LOCK TABLE locked IN EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 &
locker=$!
E2E_PIDS+=("$locker")
table_locked() { [ "$(dst_sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'locked' AND l.mode = 'ExclusiveLock' AND l.granted")" = 1 ]; }
wait_until 10 table_locked
sql "INSERT INTO locked VALUES (1, 'through')"
start=$(date +%s%N)
# The status the poll saw: a resolved timestamp acknowledged meanwhile (the closed timestamp
# moves every 3 s) shows the job running again, so it is not read a second time.
status=
answered() {
    status=$(job_error "$job")
    [[ "$status" == *"503 Service Unavailable"* ]]
}
# --applyTimeout 2s: the statement is cancelled at 2 s (statement_timeout), the answer follows.
wait_until 60 answered
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
check_contains "the changefeed got a 503 while the target was locked ($elapsed_ms ms after the row)" \
    "$status" "503 Service Unavailable"
check "the lock was still held when the 503 came" "$(table_locked && echo yes)" yes
check "the target does not have the row yet" "$(target_value locked)" none
dst_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tmo_locker'" >/dev/null
wait "$locker"  # ended by the termination: its status is not the test's
E2E_PIDS=("$serve_pid")  # the locker is gone; the replicator is in REPLICATOR_PID
E2E_PIDS+=("$REPLICATOR_PID")
through() { [ "$(target_value locked)" = through ]; }
wait_until 60 through
check "the row lands once the lock is gone" "$(target_value locked)" through
sql "CANCEL JOB $job"
stop_replicator
check "replicator exit" "$REPLICATOR_EXIT" 0

# The stand-in first: its replication slot holds the source database.
kill -TERM "$serve_pid"
wait "$serve_pid"
check "crdb-emulator exits 0 on SIGTERM" "$?" 0
E2E_PIDS=()
drop_own_databases tmo_dst tmo_unused >/dev/null
drop_own_databases tmo_src tmo_unused >/dev/null
e2e_finish
