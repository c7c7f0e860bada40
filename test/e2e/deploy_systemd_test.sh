#!/usr/bin/env bash
# deploy/systemd/replicator@.service, tested as far as a machine without systemd as PID 1 allows
# (these test machines have none, so the unit cannot be started by systemd itself):
#   - `systemd-analyze verify` accepts the unit, with nothing to say;
#   - its ExecStart line, taken from the unit (continuation lines joined, %i, %d and
#     $REPLICATOR_FLAGS expanded as systemd would), starts the replicator with the connection
#     strings read from credential files: no password in the process list;
#   - its ExecReload sends SIGHUP; its KillSignal, sent while a request waits on a locked row,
#     lets that request finish (the drain), and the process exits 0 within TimeoutStopSec;
#   - TimeoutStopSec is above the --gracePeriod of the example environment file, whose flags
#     the replicator accepts (ExecStart with them and --dryRun).
# Usage: deploy_systemd_test.sh REPLICATOR   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$(realpath "$1")
. "$(dirname "$0")/lib.sh"
e2e_init
UNIT="$(cd "$(dirname "$0")/../../deploy/systemd" && pwd)/replicator@.service"
ENV_EXAMPLE="$(dirname "$UNIT")/replicator.env"
echo "note: no systemd PID 1 here; the unit's lines are run as systemd would run them"

# unit_value KEY: the value of KEY= in the unit, continuation lines joined (the last one wins).
unit_value() {
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$UNIT" | grep "^$1=" | tail -1 | cut -d= -f2- | tr -s ' '
}
# seconds VALUE: a systemd or Go duration of whole seconds ("45s", "1m") in seconds.
seconds() {
    case $1 in *m) echo $(( ${1%m} * 60 )) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac
}

echo "--- systemd-analyze verify"
if ! command -v systemd-analyze >/dev/null; then
    check "systemd-analyze is installed (apt-get install systemd; test/support/deps.sh does)" no yes
    exit 1
fi
mkdir -p "$E2E_TMP/units"
# The unit with the binary where this build put it (verify checks that ExecStart exists).
sed "s|/usr/local/bin/replicator|$REPLICATOR|" "$UNIT" > "$E2E_TMP/units/replicator@e2e.service"
verify=$(cd "$E2E_TMP/units" && systemd-analyze verify --man=no ./replicator@e2e.service 2>&1)
check "systemd-analyze verify exits 0" "$?" 0
check "and has nothing to say" "$verify" ""

echo "--- the unit's settings"
check "KillSignal" "$(unit_value KillSignal)" SIGTERM
check "Restart" "$(unit_value Restart)" on-failure
check "ExecReload sends SIGHUP" "$(unit_value ExecReload)" '/bin/kill -HUP $MAINPID'
grace=$(grep -o -- '--gracePeriod [^ ]*' "$ENV_EXAMPLE" | cut -d' ' -f2)
check "TimeoutStopSec ($(unit_value TimeoutStopSec)) is above the example's --gracePeriod ($grace)" \
    "$([ "$(seconds "$(unit_value TimeoutStopSec)")" -gt "$(seconds "$grace")" ] && echo yes)" yes
check "no password or connection string in the unit" "$(grep -c -E 'postgres://|mysql://|oracle://|password=' "$UNIT")" 0
for setting in NoNewPrivileges=yes ProtectSystem=strict User=replicator; do
    check "hardening: $setting" "$(grep -c "^$setting\$" "$UNIT")" 1
done

echo "--- the example environment file's flags, through ExecStart (--dryRun: flags only)"
example_creds="$E2E_TMP/example-credentials"
mkdir -p "$example_creds"
printf 'postgres://replicator:secret@db.example:5432/appdb\n' > "$example_creds/targetConn"
printf 'postgres://replicator:secret@db.example:5432/appdb\n' > "$example_creds/stagingConn"
# Its TLS files, under /etc/replicator/molt/ on a real host, here in a directory of the test's.
example_tls="$E2E_TMP/example-tls"
mkdir -p "$example_tls"
make_mtls_certs "$example_tls"
cp "$example_tls/server.crt" "$example_tls/tls.crt"
cp "$example_tls/server.key" "$example_tls/tls.key"
cp "$example_tls/ca.crt" "$example_tls/changefeed-ca.crt"
example_flags=$(grep '^REPLICATOR_FLAGS=' "$ENV_EXAMPLE" | cut -d= -f2-)
example_flags=${example_flags//\/etc\/replicator\/molt\//$example_tls/}
example_start=$(unit_value ExecStart)
example_start=${example_start//%d/$example_creds}
example_start=${example_start//%i/molt}
example_start=${example_start//'$REPLICATOR_FLAGS'/$example_flags}
example_start=${example_start//\/usr\/local\/bin\/replicator/$REPLICATOR}
read -r -a example_argv <<<"$example_start"
"${example_argv[@]}" --dryRun >"$E2E_TMP/example.out" 2>&1
check "replicator accepts the example's flags" "$?" 0
[ -s "$E2E_TMP/example.out" ] && cat "$E2E_TMP/example.out"

echo "--- ExecStart as systemd runs it"
own_databases sdpg sdmy || exit 1
e2e_on_exit "drop_own_databases sdpg sdmy"
psql "$OWN_PG_URL" -X -q -c "CREATE TABLE t (id bigint PRIMARY KEY, v text)" -c "INSERT INTO t VALUES (1, 'old')" || exit 1
creds="$E2E_TMP/credentials"   # what systemd makes of LoadCredential=: a private directory
mkdir -p "$creds"
printf '%s\n' "$OWN_PG_URL" > "$creds/targetConn"
printf '%s\n' "$OWN_PG_URL" > "$creds/stagingConn"
chmod 0400 "$creds"/*
# The environment file, in the example's format, with this test's flags.
cat > "$E2E_TMP/e2e.env" <<FLAGS
# as /etc/replicator/e2e.env
REPLICATOR_FLAGS=--immediate --tlsSelfSigned --disableAuthentication --bindAddr 127.0.0.1:0 --gracePeriod 20s --logFormat json
FLAGS
REPLICATOR_FLAGS=$(grep '^REPLICATOR_FLAGS=' "$E2E_TMP/e2e.env" | cut -d= -f2-)
exec_start=$(unit_value ExecStart)
exec_start=${exec_start//%d/$creds}
exec_start=${exec_start//%i/e2e}
exec_start=${exec_start//'$REPLICATOR_FLAGS'/$REPLICATOR_FLAGS}
exec_start=${exec_start//\/usr\/local\/bin\/replicator/$REPLICATOR}
read -r -a argv <<<"$exec_start"   # systemd splits an unquoted $VAR on white space
check "ExecStart runs 'replicator start'" "${argv[1]}" start
"${argv[@]}" >"$E2E_TMP/unit.log" 2>&1 &
REPLICATOR_PID=$!
E2E_PIDS+=("$REPLICATOR_PID")
for _ in $(seq 1 200); do grep -q 'Server listening' "$E2E_TMP/unit.log" && break; sleep 0.05; done
REPLICATOR_PORT=$(grep 'Server listening' "$E2E_TMP/unit.log" | grep -o 'address[=":]*[^ ",]*' | head -1 | sed 's/.*:\([0-9]*\)$/\1/')
check "it listens" "$([ -n "$REPLICATOR_PORT" ] && echo yes)" yes
password=${OWN_PG_URL#postgres://*:}
password=${password%%@*}
check "the password is not in the process list" "$(tr '\0' ' ' < "/proc/$REPLICATOR_PID/cmdline" | grep -c -- ":$password@")" 0
check "nor in the log" "$(grep -c -- ":$password@" "$E2E_TMP/unit.log")" 0

echo "--- ExecReload"
reload=$(unit_value ExecReload)
reload=${reload//'$MAINPID'/$REPLICATOR_PID}
$reload
for _ in $(seq 1 100); do grep -q 'SIGHUP received' "$E2E_TMP/unit.log" && break; sleep 0.05; done
check "ExecReload reached the replicator" "$(grep -c 'SIGHUP received' "$E2E_TMP/unit.log")" 1
check "still running" "$(kill -0 "$REPLICATOR_PID" 2>/dev/null && echo yes)" yes

echo "--- KillSignal drains a request in flight, then exit 0"
# The row stays locked until the test ends the locking session itself (no timing to race).
psql "$OWN_PG_URL" -X -q -c "BEGIN; SELECT * FROM t WHERE id = 1 FOR UPDATE; SELECT pg_sleep(120); COMMIT;" >/dev/null 2>&1 &
locker=$!
locked() { psql "$OWN_PG_URL" -X -At -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND state = 'active' AND pid <> pg_backend_pid()"; }
for _ in $(seq 1 200); do [ "$(locked)" = 1 ] && break; sleep 0.05; done
check "the row is locked" "$(locked)" 1
body='{"payload":[{"after": {"id": 1, "v": "drained"}, "key": [1], "topic": "t", "updated": "1.0000000000"}],"length":1}'
curl -s -o "$E2E_TMP/drain.body" -w '%{http_code}' --insecure -X POST --data-binary "$body" \
    "https://127.0.0.1:$REPLICATOR_PORT/sdpg/public" > "$E2E_TMP/drain.code" &
client=$!
for _ in $(seq 1 400); do
    [ "$(psql "$OWN_PG_URL" -X -At -c "SELECT count(*) FROM pg_locks WHERE NOT granted")" -gt 0 ] && break
    sleep 0.05
done
check "the request waits on the locked row" "$(psql "$OWN_PG_URL" -X -At -c "SELECT count(*) > 0 FROM pg_locks WHERE NOT granted")" t
signal=$(unit_value KillSignal)
stopped_at=$(date +%s)
kill -s "${signal#SIG}" "$REPLICATOR_PID"
sleep 1   # the replicator is draining: the request still waits on the row
check "still running while the request waits" "$(kill -0 "$REPLICATOR_PID" 2>/dev/null && echo yes)" yes
psql "$OWN_PG_URL" -X -q -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$client"
check "the request in flight was answered 200" "$(cat "$E2E_TMP/drain.code")" 200
wait "$REPLICATOR_PID"
status=$?
took=$(( $(date +%s) - stopped_at ))
E2E_PIDS=()
wait "$locker"
check "exit 0 after $signal" "$status" 0
check "within TimeoutStopSec" "$([ "$took" -lt "$(seconds "$(unit_value TimeoutStopSec)")" ] && echo yes)" yes
check "its row was written" "$(psql "$OWN_PG_URL" -X -At -c 'SELECT v FROM t WHERE id = 1')" drained
check_contains "the log says the server drained" "$(cat "$E2E_TMP/unit.log")" "Server shutdown complete"

[ "$E2E_FAILURES" -eq 0 ] && echo "PASS" || { echo "$E2E_FAILURES FAILED"; exit 1; }
