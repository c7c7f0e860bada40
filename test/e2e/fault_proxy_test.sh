#!/usr/bin/env bash
# replicator start --immediate with molt-fault-proxy between it and the target, on PostgreSQL
# and on MariaDB: the proxy is in the path (latency); a black-holed target (accepts, never
# answers: a frozen server or a hung middlebox, which TCP keepalives and tcp_user_timeout cannot
# see) gets the webhook a 503 within a bounded time instead of a hang, and after `pass` the
# request applies; a reset of every target connection costs at most one 503.
# Usage: fault_proxy_test.sh REPLICATOR FAULT_PROXY   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
FAULT_PROXY=$2
. "$(dirname "$0")/lib.sh"
e2e_init

row() {
    printf '{"payload":[{"after": {"id": %s, "v": "%s"}, "key": [%s], "topic": "e2e_fault_rows", "updated": "%s.0000000000"}],"length":1}' \
        "$1" "$2" "$1" "$3"
}
# within NAME MS LIMIT: checks that MS (milliseconds) is under LIMIT.
within() { check "$1" "$([ "$2" -lt "$3" ] && echo yes || echo "no: $2 ms")" yes; }

# faults NAME SQL_FUNCTION TARGET_URL WEBHOOK_PATH: the whole sequence against one target.
faults() {
    local name=$1 sql=$2 url=$3 path=$4 accepted=0 start
    applied() { "$sql" "SELECT coalesce((SELECT v FROM e2e_fault_rows WHERE id = $1), 'none')"; }
    # timed_post BODY: sets STATUS, RESPONSE and MS; curl gives up after 60 s (a hang: 000).
    timed_post() {
        start=${EPOCHREALTIME/./}
        post "$base$path" "$1" --max-time 60
        MS=$(((${EPOCHREALTIME/./} - start) / 1000))
    }
    "$sql" "DROP TABLE IF EXISTS e2e_fault_rows"
    "$sql" "CREATE TABLE e2e_fault_rows (id bigint PRIMARY KEY, v text)"

    start_fault_proxy "$name-proxy" "$(url_hostport "$url")" || return 1
    fault_cmd "$FAULT_PROXY_CONTROL" stats
    check_contains "$name: the proxy answers stats" "$FAULT_REPLY" "accepted=0 active=0"
    # --applyTimeout 3s: each request's deadline (below --httpResponseTimeout's default).
    start_replicator "$name" --immediate --insecureHTTP --disableAuthentication \
        --bindAddr 127.0.0.1:0 --applyTimeout 3s \
        --targetConn "$(url_with_port "$url" "$FAULT_PROXY_PORT")" || return 1
    local base="http://127.0.0.1:$REPLICATOR_PORT"

    echo "--- $name: pass, then latency: the proxy is in the replicator's path"
    timed_post "$(row 1 one 10)"
    check "$name: 200 through the proxy" "$STATUS" 200
    check "$name: row 1 applied" "$(applied 1)" one
    fault_cmd "$FAULT_PROXY_CONTROL" latency 300
    timed_post "$(row 1 one-again 11)"
    check "$name: 200 with 300 ms latency each way" "$STATUS" 200
    # At least one statement: a round trip through the proxy costs 600 ms or more.
    check "$name: the request took a delayed round trip" "$([ "$MS" -ge 600 ] && echo yes || echo "no: $MS ms")" yes
    fault_cmd "$FAULT_PROXY_CONTROL" stats
    [[ "$FAULT_REPLY" =~ accepted=([0-9]+) ]] && accepted=${BASH_REMATCH[1]}
    check "$name: the replicator connects through the proxy" "$([ "$accepted" -ge 1 ] && echo yes)" yes
    fault_cmd "$FAULT_PROXY_CONTROL" pass

    echo "--- $name: black-hole: 503 within the request's deadline, not a hang"
    fault_cmd "$FAULT_PROXY_CONTROL" blackhole
    check "$name: blackhole set" "$FAULT_REPLY" ok
    timed_post "$(row 2 two 20)"
    echo "     answered $STATUS in $MS ms: $RESPONSE"
    check "$name: 503 while the target is black-holed" "$STATUS" 503
    # --applyTimeout is 3 s; 20 s leaves room for a slow machine and is far from a hang.
    within "$name: answered within 20 s" "$MS" 20000
    check "$name: row 2 not applied while black-holed" "$(applied 2)" none

    echo "--- $name: pass: the same request applies"
    fault_cmd "$FAULT_PROXY_CONTROL" pass
    check "$name: pass set" "$FAULT_REPLY" ok
    timed_post "$(row 2 two 21)"
    check "$name: 200 after pass" "$STATUS" 200
    check "$name: row 2 applied after pass" "$(applied 2)" two
    within "$name: answered within 20 s after pass" "$MS" 20000

    echo "--- $name: reset: every target connection dropped"
    fault_cmd "$FAULT_PROXY_CONTROL" reset
    check "$name: reset done" "$FAULT_REPLY" ok
    timed_post "$(row 3 three 30)"
    echo "     first request after the reset: $STATUS in $MS ms ($RESPONSE)"
    if [ "$STATUS" != 200 ]; then
        check "$name: a request failing after a reset fails as unavailable" "$STATUS" 503
        timed_post "$(row 3 three 31)"
    fi
    check "$name: 200 once the dead connection is replaced" "$STATUS" 200
    check "$name: row 3 applied after the reset" "$(applied 3)" three

    stop_replicator
    check "$name: replicator exits 0 after SIGTERM" "$REPLICATOR_EXIT" 0
    "$sql" "DROP TABLE e2e_fault_rows"
}

faults postgres pg "$MOLT_TEST_PG_URL" /appdb/public
faults mariadb my "$MOLT_TEST_MYSQL_URL" /appdb
e2e_finish
