# Helpers for e2e shell tests: servers from with-dbs.sh, replicator processes stopped by PID,
# and assertions that report what differed. Source it; call e2e_init first.

e2e_init() {
    set -uo pipefail
    E2E_FAILURES=0
    E2E_PIDS=()
    E2E_TMP=$(mktemp -d)
    E2E_ON_EXIT=()
    trap e2e_cleanup EXIT
    if [ -z "${MOLT_TEST_PG_URL:-}" ] || [ -z "${MOLT_TEST_MYSQL_URL:-}" ]; then
        if [ "${MOLT_TEST_REQUIRE_SERVERS:-}" = 1 ]; then
            echo "FAIL: the test servers are not running (MOLT_TEST_PG_URL / MOLT_TEST_MYSQL_URL unset)" >&2
            exit 1
        fi
        echo "SKIPPED: MOLT_TEST_PG_URL is not set. Run under test/support/db/with-dbs.sh." >&2
        exit 77
    fi
}

# e2e_on_exit CMD: runs CMD (with eval) when the test ends, however it ends, after its
# processes are stopped.
e2e_on_exit() { E2E_ON_EXIT+=("$1"); }

e2e_cleanup() {
    local pid cmd
    for pid in "${E2E_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    for cmd in "${E2E_ON_EXIT[@]:-}"; do
        [ -n "$cmd" ] && eval "$cmd"
    done
    # MOLT_E2E_KEEP=DIR keeps the logs and summaries for a look afterwards.
    if [ -n "${MOLT_E2E_KEEP:-}" ]; then
        mkdir -p "$MOLT_E2E_KEEP" && cp -r "$E2E_TMP"/. "$MOLT_E2E_KEEP"/
    fi
    rm -rf "$E2E_TMP"
}

# start_replicator NAME ARGS...: starts `replicator start ARGS`, logs in $E2E_TMP/NAME.log, waits
# for "Server listening"; sets REPLICATOR_PID and REPLICATOR_PORT.
start_replicator() {
    local name=$1
    shift
    local log="$E2E_TMP/$name.log"
    "$REPLICATOR" start "$@" >"$log" 2>&1 &
    REPLICATOR_PID=$!
    E2E_PIDS+=("$REPLICATOR_PID")
    for _ in $(seq 1 200); do
        # JSON ("address":"127.0.0.1:PORT") or text (address=127.0.0.1:PORT) log lines.
        if grep -q 'Server listening' "$log"; then
            REPLICATOR_PORT=$(grep 'Server listening' "$log" | grep -o 'address[=":]*[^ ",]*' | head -1 | sed 's/.*:\([0-9]*\)$/\1/')
            return 0
        fi
        if ! kill -0 "$REPLICATOR_PID" 2>/dev/null; then
            echo "replicator $name exited early:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "replicator $name did not start:" >&2
    cat "$log" >&2
    return 1
}

# make_mtls_certs DIR: in DIR, a CA (ca.crt, ca.key), a server certificate signed by it for
# 127.0.0.1 and localhost (server.crt, server.key) and a client certificate (client.crt,
# client.key), each valid for 2 days.
make_mtls_certs() {
    (
        cd "$1" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=e2e CA" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=changefeed" 2>/dev/null
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 2>/dev/null
    )
}

# stop_replicator: SIGTERM by PID, waits; sets REPLICATOR_EXIT.
stop_replicator() {
    kill -TERM "$REPLICATOR_PID"
    wait "$REPLICATOR_PID"
    REPLICATOR_EXIT=$?
    local remaining=()
    local pid
    for pid in "${E2E_PIDS[@]}"; do
        [ "$pid" != "$REPLICATOR_PID" ] && remaining+=("$pid")
    done
    E2E_PIDS=("${remaining[@]:-}")
}

# start_fault_proxy NAME HOST:PORT: starts molt-fault-proxy ($FAULT_PROXY, see
# test/support/src/fault_proxy_main.cpp) in front of HOST:PORT, logging to $E2E_TMP/NAME.log;
# sets FAULT_PROXY_PID (stopped by PID at exit, with the other processes), FAULT_PROXY_PORT
# (where clients connect instead of HOST:PORT) and FAULT_PROXY_CONTROL (for fault_cmd).
start_fault_proxy() {
    local name=$1 target=$2
    "$FAULT_PROXY" --target "$target" --port-file "$E2E_TMP/$name.port" \
        --control-port-file "$E2E_TMP/$name.control" >"$E2E_TMP/$name.log" 2>&1 &
    FAULT_PROXY_PID=$!
    E2E_PIDS+=("$FAULT_PROXY_PID")
    for _ in $(seq 1 200); do
        # The port file is written first, the control port file second.
        if [ -f "$E2E_TMP/$name.control" ]; then
            FAULT_PROXY_PORT=$(cat "$E2E_TMP/$name.port")
            FAULT_PROXY_CONTROL=$(cat "$E2E_TMP/$name.control")
            return 0
        fi
        kill -0 "$FAULT_PROXY_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "molt-fault-proxy $name did not start:" >&2
    cat "$E2E_TMP/$name.log" >&2
    return 1
}

# fault_cmd CONTROL_PORT COMMAND...: sends one line to a molt-fault-proxy's control port (pass,
# latency MS, reset [refuse], blackhole, cut-after N [up|down|either], stats) through bash's
# /dev/tcp; sets FAULT_REPLY (ok, the stats line or error: ...); fails unless it is not an error.
fault_cmd() {
    local port=$1 fd
    shift
    FAULT_REPLY=""
    exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf '%s\n' "$*" >&"$fd"
    IFS= read -r -t 10 FAULT_REPLY <&"$fd"
    exec {fd}>&-
    [ -n "$FAULT_REPLY" ] && [[ "$FAULT_REPLY" != error:* ]]
}

# fault_stat FIELD: FIELD (accepted, active, up, down, resets, mode, ...) of the stats line in
# FAULT_REPLY (after `fault_cmd PORT stats`); empty when absent.
fault_stat() { grep -o "\(^\| \)$1=[^ ]*" <<<"$FAULT_REPLY" | head -1 | cut -d= -f2; }

# start_replicator_retrying SECONDS NAME ARGS...: start_replicator until it succeeds, for up to
# SECONDS, as a supervisor would restart it (a replicator whose staging or target is unreachable
# at startup exits or does not get to "Server listening"). Attempt k logs in NAME.log, earlier
# failed attempts in NAME.tryK.log; a failed attempt still running is stopped by its PID. Sets
# REPLICATOR_PID, REPLICATOR_PORT and START_ATTEMPTS; fails (with the last log) after SECONDS.
start_replicator_retrying() {
    local seconds=$1 name=$2 deadline
    shift 2
    deadline=$((SECONDS + seconds))
    START_ATTEMPTS=0
    while :; do
        START_ATTEMPTS=$((START_ATTEMPTS + 1))
        start_replicator "$name" "$@" 2>"$E2E_TMP/$name.start.err" && return 0
        if kill -0 "$REPLICATOR_PID" 2>/dev/null; then
            kill -KILL "$REPLICATOR_PID"
            wait "$REPLICATOR_PID" 2>/dev/null
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "replicator $name did not start in ${seconds}s ($START_ATTEMPTS attempts):" >&2
            cat "$E2E_TMP/$name.start.err" >&2
            return 1
        fi
        mv "$E2E_TMP/$name.log" "$E2E_TMP/$name.try$START_ATTEMPTS.log"
        sleep 0.5
    done
}

# url_hostport URL: the HOST:PORT of a postgres:// or mysql:// URL with user@host:port.
url_hostport() { sed -E 's#^[a-z]+://[^@/]*@([^/?]+).*#\1#' <<<"$1"; }

# url_with_port URL PORT: URL with its port replaced (to point a client at a fault proxy).
url_with_port() { sed -E "s#^([a-z]+://[^@/]*@[^:/]+):[0-9]+#\1:$2#" <<<"$1"; }

# post URL BODY [CURL ARGS...]: sets STATUS and RESPONSE.
post() {
    local url=$1 body=$2
    shift 2
    RESPONSE=$(curl -sS -o - -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary "$body" "$@" "$url" 2>"$E2E_TMP/curl.err")
    STATUS=${RESPONSE##*$'\n'}
    RESPONSE=${RESPONSE%$'\n'*}
    RESPONSE=${RESPONSE%$'\n'}
}

check() {
    local what=$1 got=$2 want=$3
    if [ "$got" == "$want" ]; then
        echo "ok   $what"
    else
        echo "FAIL $what: got '$got', want '$want'"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
}

check_contains() {
    local what=$1 got=$2 want=$3
    if [[ "$got" == *"$want"* ]]; then
        echo "ok   $what"
    else
        echo "FAIL $what: '$got' does not contain '$want'"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
}

pg() { psql "$MOLT_TEST_PG_URL" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# own_databases PG_NAME MY_NAME: fresh databases of the test's own, for user app, so that tests
# running alongside never share a table; sets OWN_PG_URL and OWN_MY_URL (connecting as app).
own_databases() {
    psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" \
        -c "CREATE DATABASE $1 OWNER app" || return 1
    my_at "$MOLT_TEST_MYSQL_ADMIN_URL" "DROP DATABASE IF EXISTS $2; CREATE DATABASE $2;
        GRANT ALL ON $2.* TO 'app'@'%'; GRANT ALL ON $2.* TO 'app'@'localhost'" || return 1
    OWN_PG_URL=${MOLT_TEST_PG_URL/\/appdb\?/\/$1?}
    OWN_MY_URL=${MOLT_TEST_MYSQL_URL%/appdb}/$2
}

# drop_own_databases PG_NAME MY_NAME: what own_databases made.
drop_own_databases() {
    psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -c "DROP DATABASE $1 WITH (FORCE)"
    my_at "$MOLT_TEST_MYSQL_ADMIN_URL" "DROP DATABASE $2"
}

my() { my_at "$MOLT_TEST_MYSQL_URL" "$1"; }

# my_at URL SQL: runs SQL on the MySQL/MariaDB server and database of URL.
my_at() {
    local rest=${1#mysql://}
    local user=${rest%%:*} rest2=${rest#*:}
    local pass=${rest2%%@*} hostport=${rest2#*@}
    local host=${hostport%%:*} port_db=${hostport#*:}
    local port=${port_db%%/*} db=${port_db#*/}
    mariadb --no-defaults -h "$host" -P "$port" -u "$user" -p"$pass" -N -B "$db" -e "$2"
}

# json_field FILE KEY: the first value of KEY in a one-line JSON summary (quotes dropped).
json_field() { grep -o "\"$2\": *[^,}]*" "$1" | head -1 | cut -d: -f2 | tr -d " \""; }

# check_faults NAME SUMMARY FAULT...: each fault was injected at least once by crdb-emulator.
# Run it with --faults-at-least-once (and say why each fault has its opportunity): fault rates
# alone make a count above 0 likely, never certain.
check_faults() {
    local name=$1 summary=$2 f n
    shift 2
    for f in "$@"; do
        n=$(json_field "$summary" "$f")
        if [ "${n:-0}" -gt 0 ]; then
            echo "ok   $name: $n $f faults"
        else
            echo "FAIL $name: no $f fault was injected"
            E2E_FAILURES=$((E2E_FAILURES + 1))
        fi
    done
}

e2e_finish() {
    if [ "$E2E_FAILURES" -ne 0 ]; then
        echo "$E2E_FAILURES check(s) failed"
        exit 1
    fi
    echo "all checks passed"
}
