#!/usr/bin/env bash
# The consistent mode through a target outage: crdb-emulator streams into a replicator whose
# target (a PostgreSQL of this test's own) is stopped mid-run. Staging (the shared test
# PostgreSQL) keeps accepting with 200 until --stagingMaxBacklog mutations wait, then the
# replicator answers 503; once the target is back, the backlog drains in order and the target
# verifies equal to the expected state. The stream is the generator's rich profile
# (test/emulator/README.md), UNIQUE values reused across transactions.
# Usage: consistent_outage_test.sh REPLICATOR CRDB_EMULATOR   (servers from with-dbs.sh)
REPLICATOR=$1
EMULATOR=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
e2e_init
BACKLOG=3000

# A target server of our own, so that stopping it disturbs no other test.
parent=/dev/shm; [ -d "$parent" ] && [ -w "$parent" ] || parent=${TMPDIR:-/tmp}
private=$(mktemp -d "$parent/molt-outage.XXXXXX")
trap 'e2e_cleanup; "$here/../support/db/db-down.sh" "$private"' EXIT
"$here/../support/db/db-up.sh" "$private" 2>"$E2E_TMP/db-up.log" || { cat "$E2E_TMP/db-up.log"; exit 1; }
target=$(. "$private/env.sh" && echo "$MOLT_TEST_PG_URL")

pg "DROP SCHEMA IF EXISTS outage_staging CASCADE"
# Without --stagingCreateSchema a missing staging schema is an error that names the flag.
out=$(timeout 30 "$REPLICATOR" start --tlsSelfSigned --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$target" --stagingConn "$MOLT_TEST_PG_URL" --stagingSchema outage_staging 2>&1)
check "a missing staging schema is an error without --stagingCreateSchema" "$?" 1
check_contains "the error names the flag" "$out" \
    "staging schema outage_staging does not exist: check --stagingSchema, create it, or pass --stagingCreateSchema"
check "and nothing was created" \
    "$(pg "SELECT count(*) FROM pg_namespace WHERE nspname = 'outage_staging'")" 0
start_replicator outage --tlsSelfSigned --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$target" --stagingConn "$MOLT_TEST_PG_URL" --stagingSchema outage_staging \
    --stagingCreateSchema --stagingMaxBacklog "$BACKLOG" --retireOffset 0s || exit 1
port=$REPLICATOR_PORT
varz() { curl -sk "https://127.0.0.1:$port/_/varz"; }
metric() { varz | grep "^$1" | awk '{ s += $2 } END { printf "%d", s }'; }

"$EMULATOR" workload \
    --sink-uri "webhook-https://127.0.0.1:$port/appdb/public?insecure_tls_skip_verify=true" \
    --webhook-sink-config '{"Flush":{"Messages":100,"Frequency":"20ms"},"Retry":{"Max":5,"Backoff":"200ms"}}' \
    --resolved 300ms --min-checkpoint-frequency 300ms --create "$target" --duration 30s \
    --profile rich --unique-reuse 0.2 \
    --rate 300 --keys 500 --seed 21 --fault-duplicate 0.05 --verify "$target" \
    --verify-wait 120s --timeout 5m --summary "$E2E_TMP/outage.json" \
    >/dev/null 2>"$E2E_TMP/outage.err" &
emulator=$!
E2E_PIDS+=("$emulator")

sleep 6
"$here/../support/db/pg-ctl.sh" "$private" stop
sleep 1  # transactions in flight at the stop have failed or committed by now
applied_before=$(metric 'apply_mutations_total')
echo "     target stopped after $applied_before applied mutations"

# Staging goes on with 200s up to the bound, then 503.
reached=0
for _ in $(seq 1 300); do
    pending=$(metric 'stage_pending_mutations')
    if [ "${pending:-0}" -ge "$BACKLOG" ] && [ "$(metric 'http_status_codes_total{code="503"}')" -gt 0 ]; then
        reached=1
        break
    fi
    sleep 0.1
done
check "backlog reached the bound while the target was down, then 503" "$reached" 1
echo "     pending $(metric 'stage_pending_mutations'), 503 answers $(metric 'http_status_codes_total{code="503"}')"
check "nothing applied while the target was down" "$(metric 'apply_mutations_total')" "$applied_before"
health=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/_/healthz")
check "healthz reports the target down" "$health" 503

"$here/../support/db/pg-ctl.sh" "$private" start
echo "     target restarted"
wait "$emulator"
emulator_exit=$?
check "emulator exit code" "$emulator_exit" 0
[ "$emulator_exit" = 0 ] || tail -20 "$E2E_TMP/outage.err"
check "every row acknowledged" "$(grep -o '"finished": [a-z]*' "$E2E_TMP/outage.json" | cut -d' ' -f2)" true
check "target verified after the backlog drained" \
    "$(grep -o '"verify": {[^}]*' "$E2E_TMP/outage.json" | grep -o '"ok": [a-z]*' | cut -d' ' -f2)" true
for _ in $(seq 1 50); do  # the gauge follows the last window's commit by a moment
    [ "$(metric 'stage_pending_mutations')" = 0 ] && break
    sleep 0.1
done
check "backlog drained" "$(metric 'stage_pending_mutations')" 0
stop_replicator
check "replicator exit code after SIGTERM" "$REPLICATOR_EXIT" 0
e2e_finish
