#!/usr/bin/env bash
# The consistent mode under crashes: crdb-emulator drives a steady stream (foreign keys on, 10%
# duplicate redelivery, replays from the saved checkpoint, late duplicates after their resolved
# timestamp) in CockroachDB's delivery order (the emulator's default: 3 nodes batching on their
# own, requests shuffled, catch-up scans key by key; here also range 0 lagging 1 s behind, which
# holds resolved timestamps back while children run ahead of their parents, and requests
# abandoned by a client timeout and sent again while the first copy may still be applying)
# while the replicator is killed with SIGKILL at random moments and restarted. During the run
# the emulator samples the target against its _replicator_progress table (never a partial
# transaction, never a regressed row); at the end the target must equal
# the expected state. On PostgreSQL (staging in the target database) and on MariaDB (staging on
# PostgreSQL).
# The stream is the generator's rich profile (test/emulator/README.md): a UNIQUE key, JSON
# scalars, extreme dates, timestamps and decimals, long and multi-byte strings; its UNIQUE values
# also move between rows (a delete frees one, a later transaction reuses it, while notes move
# off the deleted user: no folded order writes that, replicator/README.md "Unique keys").
#
# Transient network faults (issue 13, point 19): the replicator reaches its target through one
# molt-fault-proxy and its staging database through another (--stagingConn, also on the
# PostgreSQL run, where it is the target's own database), so target and staging faults are
# independent. A fault schedule runs alongside the SIGKILLs, one fault at a time, in rounds;
# every round injects each of these once on each proxy (10 faults), in a seeded order with
# seeded gaps; a stream too short for a round (the suite's 45 s) gets a half round of 6: a
# black-hole on each proxy, and each other kind on one proxy, the other one on the other run:
#   reset      every open connection reset (RST); the replicator reconnects at once
#   refuse     reset, and each new connection reset too, for 1 s
#   latency    100-400 ms each way (seeded) for 2 s
#   cut        each connection reset after 300-20000 bytes (seeded) either way, for 1.5 s
#   blackhole  connections accepted, nothing forwarded, for 8 s: longer than --applyTimeout 2s
#              plus the PostgreSQL call watchdog (2 s more) and the MySQL read/write timeout
#              (--applyTimeout + 5 s), so each stalled call is detected and fails over
# Each fault heals with `pass`; then the target must apply more within 30 s of the heal, or of
# the last SIGKILL or restart after it (a kill soon after a heal starts the recovery again; three
# in a row on a loaded machine took 30.5 s), or the test fails naming the fault (a wedge): its
# _replicator_progress must show a later committed checkpoint, or more committed chunks of the
# window in progress (after a stall the backlog is one window,
# applied chunk by chunk before the checkpoint moves). The next fault starts only after that.
# How long the committed checkpoint itself took to move after each heal is reported, and more
# than 30 s is a note (MOLT_CRASH_STRICT_CHECKPOINT=1 makes it a failure), as is when it last
# moved. Rounds: as many as fit in the stream with 13 s to spare (at least one; 11 at 10 min);
# every fault must heal while the stream still runs: on a loaded machine, where recoveries eat
# the schedule's slack, the stream goes on past its length until the schedule is done (the
# emulator's --until-file), so every planned fault runs, whatever the timing. The final
# verification is as above, and waits up to 120 s (or as long as the stream, if longer) for the
# target to catch up.
# A replicator restarted during a fault may not start (staging or target unreachable): it is
# started again, as a supervisor would, for up to 60 s. One killed while a fault still keeps it
# from reading the target's checkpoint has not resumed yet; every one that ran 20 s, and the
# last, must have.
# The seed (printed) fixes the schedule, the kill times and the emulator's stream:
# MOLT_CRASH_SEED=N reproduces them (the timing of the machine excepted).
# Usage: consistent_crash_test.sh REPLICATOR CRDB_EMULATOR [SECONDS_PER_TARGET] [KILLS] [PROFILE]
#   SECONDS_PER_TARGET: default 45; KILLS: default 6
#   PROFILE: the emulator's --profile and its flags for both targets (default: as above)
#   molt-fault-proxy: $FAULT_PROXY, default next to REPLICATOR
#   A longer soak: consistent_soak.sh [MINUTES]
#   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
EMULATOR=$2
SECONDS_PER_TARGET=${3:-45}
KILLS=${4:-6}
FAULT_PROXY=${FAULT_PROXY:-$(dirname "$REPLICATOR")/molt-fault-proxy}
STRICT_COMMITTED=${MOLT_CRASH_STRICT_CHECKPOINT:-}
read -r -a PROFILE <<<"${5:-rich --unique-reuse 0.2}"
. "$(dirname "$0")/lib.sh"
e2e_init
if [ ! -x "$FAULT_PROXY" ]; then
    echo "FAIL: molt-fault-proxy not found at $FAULT_PROXY (build it, or set FAULT_PROXY)"
    exit 1
fi
SEED=${MOLT_CRASH_SEED:-$(((RANDOM << 15 | RANDOM) % 1000000000))}
RANDOM=$SEED
echo "seed $SEED (MOLT_CRASH_SEED=$SEED reproduces the schedule, the kills and the stream)"

sink_config='{"Flush":{"Messages":100,"Bytes":1048576,"Frequency":"20ms"},"Retry":{"Max":3,"Backoff":"100ms"}}'
# check_faults below counts on every one of these, so each must fire, whatever the seed and the
# timing: --faults-at-least-once fires each at its first opportunity, and every run has them.
# split_transaction: the first transaction has 2+ rows (the generator makes it so) and is
# split. duplicate: the first acknowledged row batch ("every row acknowledged" is checked).
# duplicate_resolved: the first acknowledged resolved timestamp (the run ends with one).
# replay: the first resolved timestamp sent, or else in the end, before the closing one.
# late_duplicate: the first resolved timestamp sent with an acknowledged batch below the
# checkpoint, or else after the closing resolved timestamp, when every batch is below it.
# abandon: the first request (sent whole, the connection closed unanswered, sent again at once).
# lost_resolved: the first resolved emission (the checkpoint saved, the resolved never sent, and
# a replay from the checkpoint only), or else before the closing one. Replays start from the
# saved checkpoint, as CockroachDB's do: rows acknowledged below it are never sent again, so a
# replicator that answered 200 before they were durable would lose them here.
# The base is --fault-profile realistic, what CockroachDB does routinely (test/emulator/README.md:
# dropped connections, a lagging range, phantom deletes, ...), with the emulator's realistic
# clock (wall-clock HLCs, some shared by two transactions, resolved timestamps 3 to 6 s behind
# the rows); the rates below are higher, and late duplicates are added.
# The changefeed's restart backoff is kept short (CockroachDB's, the emulator's default, doubles
# from 1 s to 10 min while the checkpoint does not move): this test measures how the replicator
# recovers, and its fault schedule needs the feed back within seconds of each heal.
faults=(--fault-profile realistic --fault-duplicate 0.1 --fault-replay 0.1
    --fault-late-duplicate 0.1 --fault-duplicate-resolved 0.1 --fault-split-transaction 0.05
    --fault-lost-resolved 0.1 --fault-abandon 0.01 --faults-at-least-once
    --restart-backoff 50ms --restart-max-backoff 1s)


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

# The fault schedule. Holds in ms; a blackhole outlasts every timer of the replicator's
# (--applyTimeout 2s below: PostgreSQL watchdog 4 s, MySQL read/write timeout 7 s).
APPLY_TIMEOUT=2s
FAULT_KINDS=(reset refuse latency cut blackhole)
declare -A FAULT_HOLD=([reset]=0 [refuse]=1000 [latency]=2000 [cut]=1500 [blackhole]=8000)
HEAL_BOUND_MS=30000 # the target applies more within this after each heal, or it is a wedge
ROUND_MS=50000      # a round of 10 faults: 25 s of holds, then recovery, gaps (about 37 s here)
HALF_ROUND_MS=32000 # a half round of 6 (about 30 s): short streams (the suite's 45 s)

# plan_faults STREAM_MS HALF: fills EP_PROXY, EP_KIND, EP_ARG, EP_HOLD and EP_GAP (ms before
# each fault): rounds of every kind on each proxy, in seeded order, as many as fit in the stream
# with 13 s to spare. A stream too short for one round gets a half round: a black-hole on each
# proxy, and each other kind on one proxy, HALF (a or b) saying which, so that two runs (a and
# b) cover every fault on each proxy.
plan_faults() {
    local stream_ms=$1 half=$2 rounds slack r i j t p k n round_ms=$ROUND_MS
    local kinds=()
    for p in target staging; do
        for k in "${FAULT_KINDS[@]}"; do kinds+=("$p:$k"); done
    done
    if [ $((stream_ms - 13000)) -lt "$ROUND_MS" ]; then
        round_ms=$HALF_ROUND_MS
        if [ "$half" = a ]; then
            kinds=(target:reset staging:refuse target:latency staging:cut)
        else
            kinds=(staging:reset target:refuse staging:latency target:cut)
        fi
        kinds+=(target:blackhole staging:blackhole)
    fi
    rounds=$(((stream_ms - 13000) / round_ms))
    [ "$rounds" -ge 1 ] || rounds=1
    slack=$(((stream_ms - 13000 - rounds * round_ms) / (rounds * ${#kinds[@]})))
    [ "$slack" -ge 0 ] || slack=0
    EP_PROXY=() EP_KIND=() EP_ARG=() EP_HOLD=() EP_GAP=()
    for ((r = 0; r < rounds; r++)); do
        local round=("${kinds[@]}")
        for ((i = ${#round[@]} - 1; i > 0; i--)); do # Fisher-Yates, seeded
            j=$((RANDOM % (i + 1)))
            t=${round[i]} round[i]=${round[j]} round[j]=$t
        done
        if [ "$round_ms" = "$HALF_ROUND_MS" ]; then
            # A short stream: the black-holes (the longest holds and recoveries, up to 20 s on
            # a loaded machine) last, so that the short faults run within the stream's length
            # and the black-holes are what may lengthen it.
            local short=() long=()
            for t in "${round[@]}"; do
                if [ "${t#*:}" = blackhole ]; then long+=("$t"); else short+=("$t"); fi
            done
            round=("${short[@]}" "${long[@]}")
        fi
        for t in "${round[@]}"; do
            p=${t%%:*} k=${t#*:}
            case $k in
            reset) n="reset" ;;
            refuse) n="reset refuse" ;;
            latency) n="latency $((100 + RANDOM % 301))" ;;
            cut) n="cut-after $((300 + RANDOM % 19701)) either" ;;
            blackhole) n="blackhole" ;;
            esac
            EP_PROXY+=("$p") EP_KIND+=("$k") EP_ARG+=("$n") EP_HOLD+=("${FAULT_HOLD[$k]}")
            EP_GAP+=($((300 + (slack > 0 ? RANDOM % (2 * slack + 1) : 0))))
        done
    done
    # The first fault waits for the stream to be under way.
    EP_GAP[0]=$((EP_GAP[0] + 3000))
}

# progress_pg, progress_my: the target's _replicator_progress as "NANOS LOGICAL RANGES": the
# committed checkpoint ("0 0" before the first) and how many chunks of the window in progress
# have committed since (their rows go when the checkpoint moves); empty when it cannot be read.
progress_sql="SELECT concat(coalesce((SELECT concat(last_nanos, ' ', last_logical)
    FROM _replicator_progress WHERE first_nanos = 0 AND first_logical = 0), '0 0'), ' ',
    (SELECT count(*) FROM _replicator_progress WHERE first_nanos <> 0 OR first_logical <> 0))"
progress_pg() { pg_at "$progress_sql" 2>/dev/null; }
progress_my() { my_at "$my_target" "$progress_sql" 2>/dev/null; }
# applied_after A B: progress B has more applied than A (a later checkpoint, or more chunks of
# the same window). committed_after A B: B's committed checkpoint is later than A's.
applied_after() {
    local a b
    read -r -a a <<<"$1"
    read -r -a b <<<"$2"
    [ "${#a[@]}" = 3 ] && [ "${#b[@]}" = 3 ] || return 1
    committed_after "$1" "$2" ||
        { [ "${b[0]} ${b[1]}" = "${a[0]} ${a[1]}" ] && [ "${b[2]}" -gt "${a[2]}" ]; }
}
committed_after() {
    local a b
    read -r -a a <<<"$1"
    read -r -a b <<<"$2"
    [ "${#a[@]}" = 3 ] && [ "${#b[@]}" = 3 ] || return 1
    [ "${b[0]}" -gt "${a[0]}" ] || { [ "${b[0]}" = "${a[0]}" ] && [ "${b[1]}" -gt "${a[1]}" ]; }
}
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# fault_schedule: the faults of crash_run (whose variables it reads), one at a time: inject,
# hold, heal, then wait until the target has applied more (the no-wedge check). Alongside, how
# long the committed checkpoint itself takes to move after each heal (a catch-up window is
# applied whole before it moves). Runs in the background until the emulator exits; leaves its
# counts in $E2E_TMP/$name.faults.env.
fault_schedule() {
    local ep=0 next=${EP_GAP[0]} base healed now cp="" what log up
    local FAULTS_FAILED=0 FAULTS_WEDGES=0 FAULTS_MAX_APPLIED=0
    local pend_base=() pend_healed=() pend_what=() pend=0 sampled=0 max_committed=0 max_what=""
    trap ': >"$stream_end"' EXIT # whatever happens, the stream ends
    local FAULTS_SLOW_COMMITTED=() FAULTS_LAST_MOVE=0 last_committed=""
    # sample NOW: reads the progress into cp, and settles the heals after which the committed
    # checkpoint has moved since (in order: checkpoints only move forward).
    sample() {
        local lag
        cp=$("$progress_fn") sampled=$1
        [ "${cp% *}" = "${last_committed% *}" ] || last_committed=$cp FAULTS_LAST_MOVE=$1
        while [ "$pend" -lt "${#pend_base[@]}" ] && committed_after "${pend_base[pend]}" "$cp"; do
            lag=$(($1 - pend_healed[pend]))
            [ "$lag" -le "$max_committed" ] || max_committed=$lag max_what=${pend_what[pend]}
            [ "$lag" -le "$HEAL_BOUND_MS" ] || FAULTS_SLOW_COMMITTED+=("${pend_what[pend]}: $lag ms")
            pend=$((pend + 1))
        done
    }
    # wait_until T: sleeps until T ms into the stream, sampling the progress twice a second.
    wait_until() {
        while now=$(($(now_ms) - t0)) && [ "$now" -lt "$1" ] && kill -0 "$emulator_pid" 2>/dev/null; do
            if [ $((now - sampled)) -ge 500 ]; then
                sample "$now"
            fi
            sleep 0.1
        done
    }
    fail() { echo "FAIL $name $what: $*"; FAULTS_FAILED=$((FAULTS_FAILED + 1)); }
    while [ "$ep" -lt "$faults_planned" ] && kill -0 "$emulator_pid" 2>/dev/null; do
        what="fault #$((ep + 1)) (${EP_PROXY[ep]} ${EP_ARG[ep]}, ${EP_HOLD[ep]} ms)"
        wait_until "$next"
        # shellcheck disable=SC2086 # the command's words
        fault_cmd "${control[${EP_PROXY[ep]}]}" ${EP_ARG[ep]} || fail "the proxy answered '$FAULT_REPLY'"
        wait_until $((now + EP_HOLD[ep]))
        fault_cmd "${control[${EP_PROXY[ep]}]}" pass || fail "pass answered '$FAULT_REPLY'"
        healed=$(($(now_ms) - t0))
        sample "$healed"
        base=$cp
        pend_base+=("$cp") pend_healed+=("$healed") pend_what+=("$what")
        while :; do
            sleep 0.2
            now=$(($(now_ms) - t0))
            sample "$now"
            if [ -z "$base" ]; then
                base=$cp # not readable at the heal: from now on
            elif applied_after "$base" "$cp"; then
                echo "     $name $what: healed at $((healed / 1000)).$((healed % 1000 / 100)) s," \
                    "applied more $((now - healed)) ms later"
                [ $((now - healed)) -le "$FAULTS_MAX_APPLIED" ] || FAULTS_MAX_APPLIED=$((now - healed))
                break
            elif ! kill -0 "$emulator_pid" 2>/dev/null; then
                # The emulator ends once the target holds the whole stream: nothing more to apply.
                echo "     $name $what: healed at $((healed / 1000)) s; the stream was applied whole"
                break
            elif up=$(tail -1 "$restarts") && up=$((up > healed ? up : healed)) &&
                [ $((now - up)) -ge "$HEAL_BOUND_MS" ]; then
                fail "WEDGE: healed at $((healed / 1000)) s, nothing more applied in" \
                    "$((HEAL_BOUND_MS / 1000)) s (since $((up / 1000)) s: the heal or the last" \
                    "kill or restart): _replicator_progress stayed at '$base'" \
                    "(committed checkpoint, chunks of the window in progress; seed $SEED)"
                # shellcheck disable=SC2012 # names of our own: NAME-K.log
                log=$(ls -t "$E2E_TMP/$name"-[0-9]*.log | head -1)
                echo "     the replicator's warnings and errors ($(basename "$log")):"
                grep -hE '"level":"(warn|error)"' "$log" | tail -5 | cut -c1-400
                FAULTS_WEDGES=$((FAULTS_WEDGES + 1))
                break
            fi
        done
        ep=$((ep + 1))
        next=$((now + ${EP_GAP[ep]:-0}))
    done
    # The stream goes on until the schedule is done (the emulator's --until-file), so that every
    # fault heals while it runs, however long the recoveries take on a loaded machine.
    : >"$stream_end"
    local FAULTS_STREAM_END=$(($(now_ms) - t0))
    wait_until $((1 << 40)) # the emulator's end: the stream applied and verified
    sample $(($(now_ms) - t0))
    while [ "$pend" -lt "${#pend_base[@]}" ]; do
        FAULTS_SLOW_COMMITTED+=("${pend_what[pend]}: not before the end")
        pend=$((pend + 1))
    done
    local FAULTS_DONE=$ep FAULTS_MAX_COMMITTED="$max_committed ms (after $max_what)"
    declare -p FAULTS_DONE FAULTS_STREAM_END FAULTS_WEDGES FAULTS_MAX_APPLIED FAULTS_MAX_COMMITTED \
        FAULTS_SLOW_COMMITTED FAULTS_FAILED FAULTS_LAST_MOVE >"$E2E_TMP/$name.faults.env"
}

# crash_run NAME TARGET PATH STAGING_CONN STAGING_SCHEMA PROGRESS_FN HALF   (the stream: PROFILE)
crash_run() {
    local name=$1 target=$2 path=$3 staging_conn=$4 staging=$5 progress_fn=$6 half=$7
    # Target and staging through proxies of their own.
    start_fault_proxy "$name-target-proxy" "$(url_hostport "$target")" || exit 1
    local -A control=([target]=$FAULT_PROXY_CONTROL)
    local target_via staging_via
    target_via=$(url_with_port "$target" "$FAULT_PROXY_PORT")
    start_fault_proxy "$name-staging-proxy" "$(url_hostport "$staging_conn")" || exit 1
    control[staging]=$FAULT_PROXY_CONTROL
    staging_via=$(url_with_port "$staging_conn" "$FAULT_PROXY_PORT")
    # The emulator's HLCs advance by microseconds per transaction (a whole run spans well under
    # a second of HLC time), so a retention of 50ms keeps only the newest part of the stream.
    local args=(--tlsSelfSigned --disableAuthentication --targetConn "$target_via"
        --stagingConn "$staging_via" --applyTimeout "$APPLY_TIMEOUT" --retireOffset 50ms
        --flushSize 200 --stagingSchema "$staging" --stagingCreateSchema)
    start_replicator "$name-0" "${args[@]}" --bindAddr 127.0.0.1:0 || exit 1
    local port=$REPLICATOR_PORT

    # Everything random is drawn here, from the seed, before anything runs alongside.
    local stream_ms=$((SECONDS_PER_TARGET * 1000)) emulator_seed=$RANDOM$RANDOM
    # The target catches up after the stream: up to 120 s, or as long as the stream for long
    # ones (a stream the fault schedule lengthened leaves a longer backlog: 60 s was not always
    # enough on a loaded machine, with the backlog applying at all times).
    local verify_wait=$((SECONDS_PER_TARGET > 120 ? SECONDS_PER_TARGET : 120))
    local kill_at=() i t=0 gap=$((SECONDS_PER_TARGET * 1000 / (KILLS + 1)))
    for ((i = 0; i < KILLS; i++)); do # kills at random moments, all within the stream
        t=$((t + gap / 2 + RANDOM % gap))
        kill_at+=($((t < stream_ms - 1000 ? t : stream_ms - 1000)))
    done
    plan_faults "$stream_ms" "$half"
    local faults_planned=${#EP_KIND[@]}
    echo "     $name: $KILLS SIGKILLs and $faults_planned network faults over" \
        "${SECONDS_PER_TARGET}s of stream"

    local t0 stream_end="$E2E_TMP/$name.stream-end" restarts="$E2E_TMP/$name.restarts"
    echo 0 >"$restarts"
    rm -f "$stream_end"
    t0=$(now_ms)
    "$EMULATOR" workload \
        --sink-uri "webhook-https://127.0.0.1:$port$path?insecure_tls_skip_verify=true" \
        --webhook-sink-config "$sink_config" --resolved 300ms --min-checkpoint-frequency 300ms \
        --profile "${PROFILE[@]}" \
        --create "$target" --duration "${SECONDS_PER_TARGET}s" --until-file "$stream_end" \
        --rate 400 --keys 300 \
        --seed "$emulator_seed" "${faults[@]}" --verify "$target" --verify-wait "${verify_wait}s" \
        --check-progress 200ms --timeout 3m --summary "$E2E_TMP/$name.json" \
        >/dev/null 2>"$E2E_TMP/$name.err" &
    local emulator_pid=$!
    E2E_PIDS+=("$emulator_pid")

    # Two timelines: the fault schedule in the background, the SIGKILLs here (each restarted
    # at once on the same port, again and again while a fault keeps it from starting).
    fault_schedule &
    local schedule_pid=$!
    E2E_PIDS+=("$schedule_pid")
    local kills=0 starts=0
    while [ "$kills" -lt "$KILLS" ] && kill -0 "$emulator_pid" 2>/dev/null; do
        if [ $(($(now_ms) - t0)) -lt "${kill_at[kills]}" ]; then
            sleep 0.1
            continue
        fi
        echo $(($(now_ms) - t0)) >>"$restarts" # the recovery starts again from here
        kill -KILL "$REPLICATOR_PID"
        wait "$REPLICATOR_PID" 2>/dev/null
        kills=$((kills + 1))
        start_replicator_retrying 60 "$name-$kills" "${args[@]}" --bindAddr "127.0.0.1:$port" ||
            exit 1
        echo $(($(now_ms) - t0)) >>"$restarts" # for the schedule's wedge check
        starts=$((starts + START_ATTEMPTS - 1))
    done
    wait "$emulator_pid"
    local emulator_exit=$?
    wait "$schedule_pid"
    # Whatever happened, nothing is left faulty.
    fault_cmd "${control[target]}" pass
    fault_cmd "${control[staging]}" pass
    stop_replicator
    local FAULTS_DONE=0 FAULTS_STREAM_END=0 FAULTS_WEDGES=0 FAULTS_MAX_APPLIED=0
    local FAULTS_MAX_COMMITTED=none FAULTS_SLOW_COMMITTED=() FAULTS_FAILED=0 FAULTS_LAST_MOVE=0
    # shellcheck disable=SC1090 # written by fault_schedule
    . "$E2E_TMP/$name.faults.env"
    E2E_FAILURES=$((E2E_FAILURES + FAULTS_FAILED))
    local side
    local -A proxy_stats
    for side in target staging; do
        fault_cmd "${control[$side]}" stats
        proxy_stats[$side]=$FAULT_REPLY
    done

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
    check_faults "$name" "$summary" duplicate replay late_duplicate duplicate_resolved split_transaction \
        lost_resolved abandon dropped_connection phantom_delete
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
    # Nothing half-applied was ever seen, and each process resumed without manual clean-up: the
    # last replicator, and every one that ran 20 s or more before it was killed (one killed
    # sooner may still have been waiting for a faulty target to read its checkpoint), resumed
    # from the target's checkpoint. NAME-K.log: the K-th start (failed attempts: NAME-K.tryJ.log).
    local resumed=0 short=() stuck=() k from to
    for ((k = 0; k <= KILLS; k++)); do
        if grep -q "resuming from the target's committed checkpoint" "$E2E_TMP/$name-$k.log"; then
            resumed=$((resumed + 1))
            continue
        fi
        [ "$k" -lt "$KILLS" ] || { stuck+=("$name-$k (the last)"); continue; }
        from=$(date -d "$(grep -o '"time":"[^"]*' "$E2E_TMP/$name-$k.log" | head -1 | cut -d'"' -f4)" +%s)
        to=$(date -d "$(grep -o '"time":"[^"]*' "$E2E_TMP/$name-$((k + 1)).log" | head -1 | cut -d'"' -f4)" +%s)
        if [ $((to - from)) -lt 20 ]; then
            short+=("$name-$k")
        else
            stuck+=("$name-$k ($((to - from)) s)")
        fi
    done
    if [ "${#stuck[@]}" = 0 ]; then
        echo "ok   $name: resumed from the target's checkpoint $resumed times (not before it was" \
            "killed: ${short[*]:-none})"
    else
        echo "FAIL $name: replicators that never resumed from the target's checkpoint: ${stuck[*]}"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
    # The fault schedule ran whole, each fault healed while the stream ran, and no wedge.
    check "$name: every planned fault injected and healed" "$FAULTS_DONE" "$faults_planned"
    check "$name: more applied within $((HEAL_BOUND_MS / 1000)) s of every heal (no wedge)" \
        "$FAULTS_WEDGES" 0
    echo "     $name: more applied at most $FAULTS_MAX_APPLIED ms after a heal; the committed" \
        "checkpoint moved at most $FAULTS_MAX_COMMITTED;" \
        "$starts restarts failed during faults and were retried"
    echo "     $name: the committed checkpoint last moved $((FAULTS_LAST_MOVE / 1000)) s into the" \
        "run (the stream: ${SECONDS_PER_TARGET} s, ended at $((FAULTS_STREAM_END / 1000)) s," \
        "when the fault schedule was done)"
    local slow shown=0
    for slow in "${FAULTS_SLOW_COMMITTED[@]}"; do
        if [ -n "$STRICT_COMMITTED" ]; then
            echo "FAIL $name: the committed checkpoint moved more than $((HEAL_BOUND_MS / 1000)) s" \
                "after $slow"
            E2E_FAILURES=$((E2E_FAILURES + 1))
        elif [ "$shown" -lt 3 ]; then
            echo "     $name: note: the committed checkpoint moved more than" \
                "$((HEAL_BOUND_MS / 1000)) s after $slow"
        fi
        shown=$((shown + 1))
    done
    if [ -z "$STRICT_COMMITTED" ] && [ "$shown" -gt 3 ]; then
        echo "     $name: note: ... and after $((shown - 3)) more fault(s)"
    fi
    for side in target staging; do
        FAULT_REPLY=${proxy_stats[$side]}
        echo "     $name $side proxy: $FAULT_REPLY"
        check "$name: the replicator reached its $side through the proxy" \
            "$([ "$(fault_stat accepted)" -ge 1 ] 2>/dev/null && echo yes)" yes
    done
}

own_databases crash_pg crash_my || exit 1
pg_target=$OWN_PG_URL
my_target=$OWN_MY_URL
pg_at() { psql "$pg_target" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

echo "--- PostgreSQL target, staging in the target database"
crash_run pg "$pg_target" /crash_pg/public "$pg_target" crash_staging_pg progress_pg a

echo "--- MariaDB target, staging on PostgreSQL"
crash_run mysql "$my_target" /crash_my "$pg_target" crash_staging_my progress_my b

drop_own_databases crash_pg crash_my

e2e_finish
