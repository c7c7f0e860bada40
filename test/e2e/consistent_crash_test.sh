#!/usr/bin/env bash
# The consistent mode under crashes: crdb-emulator drives a steady stream (foreign keys on, 10%
# duplicate redelivery, replays from the last resolved timestamp, late duplicates after their
# resolved timestamp) while the replicator is killed with SIGKILL at random moments and
# restarted. During the run the emulator samples the target against its _replicator_progress
# table (never a partial transaction, never a regressed row); at the end the target must equal
# the expected state. On PostgreSQL (staging in the target database) and on MariaDB (staging on
# PostgreSQL).
# The stream is the generator's rich profile (test/emulator/README.md): a UNIQUE key, JSON
# scalars, extreme dates, timestamps and decimals, long and multi-byte strings; on PostgreSQL its
# UNIQUE values also move between rows (a delete frees one, a later transaction reuses it). Not
# yet on MariaDB: there the upsert (INSERT ... ON DUPLICATE KEY UPDATE) meets the reused value on
# the row that still holds it, and the window is deferred for ever ("Cannot delete or update a
# parent row"); add --unique-reuse 0.2 to the MariaDB profile once the replicator handles it.
# Usage: consistent_crash_test.sh REPLICATOR CRDB_EMULATOR [SECONDS_PER_TARGET] [KILLS] [PROFILE]
#   PROFILE: the emulator's --profile and its flags for both targets (default: as above)
#   A longer soak: consistent_soak.sh [MINUTES]
#   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
EMULATOR=$2
SECONDS_PER_TARGET=${3:-45}
KILLS=${4:-6}
read -r -a PROFILE_PG <<<"${5:-rich --unique-reuse 0.2}"
read -r -a PROFILE_MY <<<"${5:-rich}"
. "$(dirname "$0")/lib.sh"
e2e_init

sink_config='{"Flush":{"Messages":100,"Bytes":1048576,"Frequency":"20ms"},"Retry":{"Max":3,"Backoff":"100ms"}}'
# check_faults below counts on every one of these, so each must fire, whatever the seed and the
# timing: --faults-at-least-once fires each at its first opportunity, and every run has them.
# split_transaction: the first transaction has 2+ rows (the generator makes it so) and is
# split. duplicate: the first acknowledged row batch ("every row acknowledged" is checked).
# duplicate_resolved: the first acknowledged resolved timestamp (the run ends with one).
# replay: the first resolved timestamp sent, or else in the end, before the closing one.
# late_duplicate: the first resolved timestamp sent with an acknowledged batch below the
# checkpoint, or else after the closing resolved timestamp, when every batch is below it.
faults=(--fault-duplicate 0.1 --fault-replay 0.1 --fault-late-duplicate 0.1
    --fault-duplicate-resolved 0.1 --fault-split-transaction 0.05 --fault-phantom-delete 0.01
    --faults-at-least-once)


# staged_rows SCHEMA: rows in the staging tables (molt_stage_*) of a staging schema in crash_pg.
staged_rows() {
    local total=0 t n
    for t in $(pg_at "SELECT table_name FROM information_schema.tables WHERE table_schema = '$1'
                   AND table_name LIKE 'molt_stage_%'"); do
        n=$(pg_at "SELECT count(*) FROM \"$1\".\"$t\"")
        total=$((total + n))
    done
    echo "$total"
}

# crash_run NAME TARGET PATH STAGING_SCHEMA [REPLICATOR ARGS...]   (the stream: PROFILE)
crash_run() {
    local name=$1 target=$2 path=$3 staging=$4
    shift 4
    # The emulator's HLCs advance by microseconds per transaction (a whole run spans well under
    # a second of HLC time), so a retention of 50ms keeps only the newest part of the stream.
    local args=(--tlsSelfSigned --disableAuthentication --targetConn "$target" --retireOffset 50ms
        --flushSize 200 --stagingSchema "$staging" --stagingCreateSchema "$@")
    start_replicator "$name-0" "${args[@]}" --bindAddr 127.0.0.1:0 || exit 1
    local port=$REPLICATOR_PORT
    "$EMULATOR" workload \
        --sink-uri "webhook-https://127.0.0.1:$port$path?insecure_tls_skip_verify=true" \
        --webhook-sink-config "$sink_config" --resolved 300ms --min-checkpoint-frequency 300ms \
        --profile "${PROFILE[@]}" \
        --create "$target" --duration "${SECONDS_PER_TARGET}s" --rate 400 --keys 300 \
        --seed "$RANDOM" "${faults[@]}" --verify "$target" --verify-wait 60s \
        --check-progress 200ms --timeout 3m --summary "$E2E_TMP/$name.json" \
        >/dev/null 2>"$E2E_TMP/$name.err" &
    local emulator_pid=$!
    E2E_PIDS+=("$emulator_pid")

    # Kill at random moments over the run, restart at once on the same port.
    local kills=0 gap=$((SECONDS_PER_TARGET * 1000 / (KILLS + 1)))
    while [ $kills -lt "$KILLS" ] && kill -0 "$emulator_pid" 2>/dev/null; do
        sleep "$(awk -v g="$gap" -v r="$RANDOM" 'BEGIN { printf "%.3f", (g / 2 + r % g) / 1000 }')"
        kill -KILL "$REPLICATOR_PID"
        wait "$REPLICATOR_PID" 2>/dev/null
        kills=$((kills + 1))
        start_replicator "$name-$kills" "${args[@]}" --bindAddr "127.0.0.1:$port" || exit 1
    done
    wait "$emulator_pid"
    local emulator_exit=$?
    stop_replicator

    local summary="$E2E_TMP/$name.json"
    check "$name: emulator exit code" "$emulator_exit" 0
    if [ "$emulator_exit" != 0 ]; then
        tail -30 "$E2E_TMP/$name.err"
        echo "     replicator warnings and errors:"
        cat "$E2E_TMP/$name"-*.log | grep -E '"level":"(warn|error)"' | tail -10 | cut -c1-400
    fi
    check "$name: replicator killed with SIGKILL $KILLS times" "$kills" "$KILLS"
    check "$name: every row acknowledged" "$(json_field "$summary" finished)" true
    check "$name: final state verified" \
        "$(grep -o '"verify": {[^}]*' "$summary" | grep -o '"ok": [a-z]*' | cut -d' ' -f2)" true
    local checks failed
    checks=$(grep -o '"progress_checks": {[^}]*' "$summary" | grep -o '"checks": [0-9]*' | cut -d' ' -f2)
    failed=$(grep -o '"progress_checks": {[^}]*' "$summary" | grep -o '"failed": [0-9]*' | cut -d' ' -f2)
    check "$name: no sampled checkpoint differed from the expected state" "${failed:-missing}" 0
    if [ "${checks:-0}" -ge 10 ]; then
        echo "ok   $name: $checks sampled checkpoints checked, all equal"
    else
        echo "FAIL $name: only ${checks:-0} sampled checkpoints (want 10 or more)"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
    check_faults "$name" "$summary" duplicate replay late_duplicate duplicate_resolved split_transaction
    local mutations staged
    mutations=$(json_field "$summary" mutations)
    echo "     $name: $mutations mutations," \
        "$(json_field "$summary" requests) requests, $(json_field "$summary" retries) retries"
    # Applied rows older than --retireOffset are gone: staging stays bounded.
    staged=$(staged_rows "$staging")
    if [ "${mutations:-0}" -gt 0 ] && [ "$staged" -lt $((mutations / 3)) ]; then
        echo "ok   $name: $staged rows left in staging after retiring (of $mutations)"
    else
        echo "FAIL $name: $staged rows left in staging of ${mutations:-0} mutations (retiring?)"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
    # Nothing half-applied was ever seen, and the process resumed without manual clean-up.
    local resumed
    resumed=$(cat "$E2E_TMP/$name"-*.log | grep -c "resuming from the target's committed checkpoint")
    if [ "$resumed" -ge "$KILLS" ]; then
        echo "ok   $name: resumed from the target's checkpoint $resumed times"
    else
        echo "FAIL $name: resumed only $resumed times"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
}

own_databases crash_pg crash_my || exit 1
pg_target=$OWN_PG_URL
my_target=$OWN_MY_URL
pg_at() { psql "$pg_target" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

echo "--- PostgreSQL target, staging in the target database"
PROFILE=("${PROFILE_PG[@]}")
crash_run pg "$pg_target" /crash_pg/public crash_staging_pg

echo "--- MariaDB target, staging on PostgreSQL"
PROFILE=("${PROFILE_MY[@]}")
crash_run mysql "$my_target" /crash_my crash_staging_my --stagingConn "$pg_target"

drop_own_databases crash_pg crash_my

e2e_finish
