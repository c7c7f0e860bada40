#!/usr/bin/env bash
# crdb-emulator workload against `replicator start --immediate` over HTTPS, on PostgreSQL and on
# MariaDB: a long run with every fault on except late duplicates, then verify; the same with the
# rich profile's tables and values (a fifth of the mutations). And the validator's own test: a
# target that silently drops rows must fail verification, naming them.
# Usage: emulator_workload_test.sh REPLICATOR CRDB_EMULATOR [MUTATIONS]
#   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
EMULATOR=$2
MUTATIONS=${3:-100000}
. "$(dirname "$0")/lib.sh"
e2e_init

# Immediate mode is for workloads without foreign keys (replicator.md §2): a replay from the
# checkpoint can re-send a child row whose parent is already gone, which only the staged modes
# absorb, unless foreign-key checks are off (the fk runs below). The consistent mode's tests run
# the same spec with its foreign keys.
sink_config='{"Flush":{"Messages":200,"Bytes":1048576,"Frequency":"20ms"},"Retry":{"Max":4,"Backoff":"50ms"}}'
# check_run counts on every one of these, so each must fire, whatever the timing (the rates
# alone make that likely, not certain): --faults-at-least-once fires each at its first
# opportunity, and every run has them. dropped_connection: the first request. phantom_delete
# and split_transaction: the first transaction (the generator gives it a phantom delete and 2+
# rows). duplicate: the first acknowledged row batch ("finished" is checked: every row was).
# duplicate_resolved: the first acknowledged resolved timestamp (the run ends with one).
# replay: the first resolved timestamp sent, or else in the end, before the closing one. Late
# duplicates stay off (--all-faults leaves them at 0, and at_least_once forces only rates > 0).
# abandon: the first request that is not dropped (sent whole, closed unanswered, sent again at
# once while the replicator may still apply the first copy). Replays are frequent here, so the
# changefeed's restart backoff is kept short (CockroachDB's doubles to 10 minutes).
faults=(--all-faults 0.02 --fault-drop-connection 0.005 --faults-at-least-once
    --restart-backoff 50ms --restart-max-backoff 500ms)


# workload NAME TARGET PATH [EMULATOR ARGS...]: a replicator on TARGET, the emulator against it;
# sets WORKLOAD_EXIT and leaves the summary in $E2E_TMP/NAME.json.
# $replicator_flags: more flags for the replicator.
replicator_flags=()
workload() {
    local name=$1 target=$2 path=$3
    shift 3
    start_replicator "$name" --immediate --tlsSelfSigned --disableAuthentication \
        --bindAddr 127.0.0.1:0 --targetConn "$target" "${replicator_flags[@]}" || exit 1
    "$EMULATOR" workload \
        --sink-uri "webhook-https://127.0.0.1:$REPLICATOR_PORT$path?insecure_tls_skip_verify=true" \
        --webhook-sink-config "$sink_config" --resolved 200ms --min-checkpoint-frequency 200ms \
        --summary "$E2E_TMP/$name.json" "$@" >/dev/null 2>"$E2E_TMP/$name.err"
    WORKLOAD_EXIT=$?
    curl -s --insecure -o "$E2E_TMP/$name.varz" "https://127.0.0.1:$REPLICATOR_PORT/_/varz"
    stop_replicator
}

# check_run NAME [MUTATIONS]: the summary shows a finished, verified run of MUTATIONS (default
# $MUTATIONS) or more with every fault injected.
check_run() {
    local name=$1 summary="$E2E_TMP/$1.json" want=${2:-$MUTATIONS}
    check "$name: emulator exit code" "$WORKLOAD_EXIT" 0
    [ "$WORKLOAD_EXIT" = 0 ] || tail -20 "$E2E_TMP/$name.err"
    check "$name: finished" "$(json_field "$summary" finished)" true
    check "$name: verified" "$(json_field "$summary" ok)" true
    local mutations
    mutations=$(json_field "$summary" mutations)
    if [ "${mutations:-0}" -ge "$want" ]; then
        echo "ok   $name: $mutations mutations"
    else
        echo "FAIL $name: $mutations mutations, want $want or more"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
    check_faults "$name" "$summary" duplicate replay duplicate_resolved split_transaction dropped_connection phantom_delete abandon
    check "$name: no late duplicates (immediate mode)" "$(json_field "$summary" late_duplicate)" 0
    echo "     $name: $(json_field "$summary" mutations_per_second) mutations/s," \
        "$(json_field "$summary" requests) requests, $(json_field "$summary" retries) retries"
}

echo "--- PostgreSQL: $MUTATIONS mutations with faults"
workload pg "$MOLT_TEST_PG_URL" /appdb/public --create "$MOLT_TEST_PG_URL" --no-foreign-keys \
    --pg-types --mutations "$MUTATIONS" --keys 2000 --seed 11 "${faults[@]}" \
    --verify "$MOLT_TEST_PG_URL"
check_run pg

echo "--- MariaDB: $MUTATIONS mutations with faults, bodies compressed with zstd"
workload mysql "$MOLT_TEST_MYSQL_URL" /appdb --create "$MOLT_TEST_MYSQL_URL" --no-foreign-keys \
    --mutations "$MUTATIONS" --keys 2000 --seed 12 "${faults[@]}" --compression zstd \
    --verify "$MOLT_TEST_MYSQL_URL"
check_run mysql
check "mysql: the replicator read zstd bodies" \
    "$(grep -c '^http_compressed_requests_total{encoding="zstd"} [1-9]' "$E2E_TMP/mysql.varz")" 1

# The rich profile (test/emulator/README.md): a UNIQUE email, JSONB scalars and arrays, dates
# before 1970 and after 2100, TIMESTAMPTZ with offsets and nanoseconds, DECIMAL(38,10) at both
# ends, empty strings next to NULL, 64 KiB TEXT, multi-byte UTF-8; verified exactly at the
# precision each target keeps. Its UNIQUE values stay on their rows: the cases that move them
# between rows (--unique-reuse, --unique-move, --unique-swap) are left off, as immediate mode
# does not get them through these faults (a retried or replayed batch lands after a later one
# took the value, and the target refuses it with 23505 until the sender gives up).
RICH_MUTATIONS=$((MUTATIONS / 5))
echo "--- PostgreSQL, rich profile: $RICH_MUTATIONS mutations with faults"
workload pg_rich "$MOLT_TEST_PG_URL" /appdb/public --profile rich --create "$MOLT_TEST_PG_URL" \
    --no-foreign-keys --pg-types --mutations "$RICH_MUTATIONS" --keys 500 --seed 15 \
    "${faults[@]}" --verify "$MOLT_TEST_PG_URL"
check_run pg_rich "$RICH_MUTATIONS"

echo "--- MariaDB, rich profile: $RICH_MUTATIONS mutations with faults"
workload mysql_rich "$MOLT_TEST_MYSQL_URL" /appdb --profile rich --create "$MOLT_TEST_MYSQL_URL" \
    --no-foreign-keys --mutations "$RICH_MUTATIONS" --keys 500 --seed 16 "${faults[@]}" \
    --verify "$MOLT_TEST_MYSQL_URL"
check_run mysql_rich "$RICH_MUTATIONS"

# Foreign keys in immediate mode: a child often comes before its parent (another node's request,
# the lagging range), and a replay re-sends a child whose parent a later transaction deleted.
# Waiting for the parent does not hold under load (replicator/README.md: the changefeed holds
# back the request that would bring it; without the flag this stalls within seconds);
# --skipForeignKeyChecks writes such rows at once, and the target converges to the source's
# state, which satisfies every foreign key. On PostgreSQL the replica role needs a privilege
# that is server-wide, so it goes to a role (and database) of this test's own, dropped at the
# end however the test ends.
echo "--- foreign keys, immediate mode with --skipForeignKeyChecks (PostgreSQL, MariaDB)"
fk_role=molt_fk_e2e_$$
psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE $fk_role LOGIN PASSWORD 'probe'" -c "CREATE DATABASE $fk_role OWNER $fk_role" ||
    exit 1
e2e_on_exit "psql '$MOLT_TEST_PG_ADMIN_URL' -X -q -c 'DROP DATABASE IF EXISTS $fk_role WITH (FORCE)' \
    -c 'REVOKE SET ON PARAMETER session_replication_role FROM $fk_role' -c 'DROP ROLE $fk_role'"
fk_pg=${MOLT_TEST_PG_URL/\/\/app:app@/\/\/$fk_role:probe@}
fk_pg=${fk_pg/\/appdb\?/\/$fk_role?}
# Without the privilege the replicator does not start, and says what to grant.
refusal=$(timeout 30 "$REPLICATOR" start --immediate --tlsSelfSigned --disableAuthentication \
    --bindAddr 127.0.0.1:0 --targetConn "$fk_pg" --skipForeignKeyChecks 2>&1)
check "skipForeignKeyChecks without the privilege: exit code" "$?" 1
check "skipForeignKeyChecks without the privilege: names the GRANT" \
    "$(grep -c 'GRANT SET ON PARAMETER session_replication_role' <<<"$refusal")" 1
psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 \
    -c "GRANT SET ON PARAMETER session_replication_role TO $fk_role" || exit 1
replicator_flags=(--skipForeignKeyChecks)
fk_faults=(--fault-profile realistic --faults-at-least-once --restart-backoff 50ms
    --restart-max-backoff 500ms)
workload pg_fk "$fk_pg" "/$fk_role/public" --create "$fk_pg" --pg-types \
    --mix 60,40,0 --mutations 4000 --keys 300 --rate 200 --seed 17 "${fk_faults[@]}" \
    --verify "$fk_pg"
check_run pg_fk 4000
workload mysql_fk "$MOLT_TEST_MYSQL_URL" /appdb --create "$MOLT_TEST_MYSQL_URL" \
    --mix 50,35,15 --mutations 4000 --keys 300 --rate 200 --seed 18 "${fk_faults[@]}" \
    --verify "$MOLT_TEST_MYSQL_URL"
check_run mysql_fk 4000
replicator_flags=()

echo "--- tables introspected from the target (a database of their own)"
own_databases emu_introspect emu_introspect || exit 1
pg_db=$OWN_PG_URL
my_db=$OWN_MY_URL
for target in "pg_introspect|$pg_db|/emu_introspect/public" "mysql_introspect|$my_db|/emu_introspect"; do
    IFS='|' read -r name url path <<<"$target"
    "$EMULATOR" workload --sink-uri http://127.0.0.1:1/ --create "$url" --no-foreign-keys \
        --mutations 0 >/dev/null || exit 1
    workload "$name" "$url" "$path" --introspect "$url" --mutations 3000 --keys 300 --seed 14 \
        --all-faults 0.02 --restart-backoff 50ms --restart-max-backoff 500ms --verify "$url"
    check "$name: emulator exit code" "$WORKLOAD_EXIT" 0
    [ "$WORKLOAD_EXIT" = 0 ] || tail -5 "$E2E_TMP/$name.err"
    check "$name: verified" "$(json_field "$E2E_TMP/$name.json" ok)" true
    rows=$(json_field "$E2E_TMP/$name.json" rows_found)
    if [ "${rows:-0}" -gt 0 ]; then
        echo "ok   $name: $rows rows compared"
    else
        echo "FAIL $name: no rows compared"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
done
drop_own_databases emu_introspect emu_introspect

echo "--- the validator fails on a target that silently drops rows"
# Create the tables, then make the target swallow every wl_accounts row whose id ends in 7.
"$EMULATOR" workload --sink-uri http://127.0.0.1:1/ --create "$MOLT_TEST_PG_URL" --no-foreign-keys \
    --mutations 0 >/dev/null || exit 1
pg "CREATE FUNCTION e2e_drop_sevens() RETURNS trigger LANGUAGE plpgsql AS
    \$\$BEGIN IF NEW.id % 10 = 7 THEN RETURN NULL; END IF; RETURN NEW; END\$\$"
pg "CREATE TRIGGER e2e_drop_sevens BEFORE INSERT ON wl_accounts FOR EACH ROW
    EXECUTE FUNCTION e2e_drop_sevens()"
workload lossy "$MOLT_TEST_PG_URL" /appdb/public --no-foreign-keys --pg-types --mutations 3000 \
    --keys 200 --seed 13 --timeout 2m --verify "$MOLT_TEST_PG_URL"
check "lossy: emulator exit code" "$WORKLOAD_EXIT" 1
check "lossy: every request was acknowledged" "$(json_field "$E2E_TMP/lossy.json" finished)" true
check "lossy: verify failed" "$(json_field "$E2E_TMP/lossy.json" ok)" false
# Every difference it names is a wl_accounts row the trigger dropped: a key ending in 7.
named=$(grep -o 'wl_accounts key ([0-9]*): missing from the target' "$E2E_TMP/lossy.err" |
    grep -o '([0-9]*)' | tr -d '()')
if [ -n "$named" ]; then
    echo "ok   lossy: it names $(echo "$named" | wc -l) missing wl_accounts rows"
else
    echo "FAIL lossy: no missing wl_accounts row named:"
    cat "$E2E_TMP/lossy.err"
    E2E_FAILURES=$((E2E_FAILURES + 1))
fi
check "lossy: only dropped keys are named" "$(echo "$named" | grep -cv '7$')" 0
check "lossy: nothing else differs" \
    "$(grep 'verify:' "$E2E_TMP/lossy.err" | grep -cv 'wl_accounts key ([0-9]*7): missing')" 0
pg "DROP TABLE wl_transfers, wl_accounts"
pg "DROP FUNCTION e2e_drop_sevens()"

e2e_finish
