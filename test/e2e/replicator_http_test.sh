#!/usr/bin/env bash
# replicator start --immediate over real HTTP(S): every status code, TLS with client
# certificates, self-signed mode, healthz/readyz/varz (liveness vs readiness, what an unhealthy
# answer reveals), admission control (unauthenticated requests refused at their headers, the
# connection limit, the queue bound, probes answered while every worker is blocked), and SIGTERM
# during a request.
# Usage: replicator_http_test.sh REPLICATOR   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
. "$(dirname "$0")/lib.sh"
e2e_init

PG_URL=$MOLT_TEST_PG_URL

# partial_post CMD...: through CMD (a socat or openssl s_client that connects), sends the headers
# of a POST declaring a 50 MB body and the first 1 KiB of it, never the rest; prints the status
# line the server answers within 8 s (nothing when it waits for the body).
partial_post() {
    { printf 'POST /appdb/public HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n'
      head -c 1024 /dev/zero | tr '\0' ' '
      sleep 8; } | timeout 8 "$@" 2>/dev/null | head -1 | tr -d '\r'
}

# metrics_value PORT LINE_PREFIX: the value of the first /_/varz line starting with LINE_PREFIX.
metrics_value() {
    curl -s --max-time 5 "http://127.0.0.1:$1/_/varz" | awk -v p="$2 " 'index($0, p) == 1 { print $NF; exit }'
}

# get URL: sets STATUS and RESPONSE (without its final newline).
get() {
    RESPONSE=$(curl -s -w '\n%{http_code}' "$1")
    STATUS=${RESPONSE##*$'\n'}
    RESPONSE=${RESPONSE%$'\n'*}
    RESPONSE=${RESPONSE%$'\n'}
}

# wait_for WHAT CMD...: runs CMD every 0.1 s until it succeeds (at most 15 s); a check either way.
wait_for() {
    local what=$1 i
    shift
    for i in $(seq 1 150); do
        if "$@"; then
            check "$what" yes yes
            return 0
        fi
        sleep 0.1
    done
    check "$what" no yes
    return 1
}

# metrics_port NAME: the --metricsAddr port from the log of replicator NAME.
metrics_port() {
    grep 'metrics server bound to' "$E2E_TMP/$1.log" | sed 's/.*bound to [^"]*:\([0-9]*\)".*/\1/'
}

# orders_locks GRANTED MODE: how many locks on e2e_orders with that granted state (and mode).
orders_locks() {
    pg "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
        WHERE c.relname = 'e2e_orders' AND l.granted = $1 AND l.mode LIKE '$2'"
}
# blocked_on_lock: some session waits for a lock on e2e_orders.
blocked_on_lock() { [ "$(orders_locks false %)" -gt 0 ]; }
# lock_held: the ACCESS EXCLUSIVE lock of lock_orders is held.
lock_held() { [ "$(orders_locks true AccessExclusiveLock)" -gt 0 ]; }

# lock_orders SECONDS: holds an ACCESS EXCLUSIVE lock on e2e_orders for SECONDS in the
# background (LOCKER is its PID), and returns once it is held.
lock_orders() {
    psql "$PG_URL" -X -q -c "BEGIN; LOCK TABLE e2e_orders IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep($1); COMMIT;" >/dev/null &
    LOCKER=$!
    wait_for "the lock on e2e_orders is held" lock_held
}
pg "DROP TABLE IF EXISTS e2e_lines, e2e_orders"
pg "CREATE TABLE e2e_orders (id bigint PRIMARY KEY, status text)"
pg "CREATE TABLE e2e_lines (order_id bigint REFERENCES e2e_orders (id), line int, qty int, PRIMARY KEY (order_id, line))"

insert='{"payload":[{"after": {"id": 1, "status": "open"}, "key": [1], "topic": "e2e_orders", "updated": "1701102296662969433.0000000000"}],"length":1}'

echo "--- status codes (plain HTTP, authentication disabled)"
start_replicator plain --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$PG_URL" --maxBodySize 2KiB || exit 1
base="http://127.0.0.1:$REPLICATOR_PORT"
post "$base/appdb/public" "$insert"
check "200 for a good batch" "$STATUS" 200
check "200 body" "$RESPONSE" "OK"
check "row written" "$(pg "SELECT status FROM e2e_orders WHERE id = 1")" "open"
post "$base/appdb/public" '{"resolved":"1701102296662969433.0000000000"}'
check "200 for a resolved timestamp" "$STATUS" 200

post "$base/appdb/public" '{"payload":[{"after": {"id": 2}, "key": [2], "topic": "e2e_orders"}]}'
check "400 for a message without updated" "$STATUS" 400
check_contains "400 names the problem" "$RESPONSE" 'missing "updated": create the changefeed WITH updated'
post "$base/appdb/public" '{"payload":[{"after": {"id": 2}'
check "400 for broken JSON" "$STATUS" 400
check "nothing written by bad requests" "$(pg "SELECT count(*) FROM e2e_orders")" 1

post "$base/appdb/public" '{"payload":[{"after": {"id": 3, "status": "x"}, "key": [3], "topic": "e2e_orders", "updated": "2.0000000000"},{"after": {"order_id": 3, "line": 1, "qty": "many"}, "key": [3, 1], "topic": "e2e_lines", "updated": "2.0000000000"}]}'
check "400 when the second table fails" "$STATUS" 400
check_contains "the database's reason" "$RESPONSE" "invalid input syntax for type integer"
check "the first table is unchanged" "$(pg "SELECT count(*) FROM e2e_orders WHERE id = 3")" 0

post "$base/appdb" "$insert"
check "404 for a one-segment path on PostgreSQL" "$STATUS" 404
check_contains "404 says which form is expected" "$RESPONSE" "PostgreSQL targets take the path /<database>/<schema>"
post "$base/appdb/public" '{"payload":[{"after": {"id": 1}, "key": [1], "topic": "nope", "updated": "3.0000000000"}]}'
check "404 for an unknown table" "$STATUS" 404
check_contains "404 names the table" "$RESPONSE" 'unknown table "nope"'
post "$base/otherdb/public" "$insert"
check "404 for an unknown database" "$STATUS" 404

code=$(curl -s -o /dev/null -w '%{http_code}' "$base/appdb/public")
check "405 for GET on the webhook" "$code" 405
big=$(printf '{"payload":[],"length":0,"pad":"%05000d"}' 0)
post "$base/appdb/public" "$big"
check "413 over --maxBodySize" "$STATUS" 413

check "healthz" "$(curl -s "$base/_/healthz")" "OK"
varz=$(curl -s "$base/_/varz")
check_contains "varz counts status codes" "$varz" 'http_status_codes_total{code="200"}'
check_contains "varz counts upserts per table" "$varz" 'apply_upserts_total{schema="appdb.public",table="e2e_orders"} 1'
check_contains "varz has the apply latency histogram" "$varz" 'apply_duration_seconds_bucket{schema="appdb.public",le="0.001"}'
check_contains "varz has pool use" "$varz" 'pool_connections_max{pool="target"} 128'

# CREATE CHANGEFEED ... WITH compression='gzip' or 'zstd' (v25.2+) compresses the whole body.
gz="$E2E_TMP/body.gz"
printf '%s' '{"payload":[{"after": {"id": 20, "status": "gzip"}, "key": [20], "topic": "e2e_orders", "updated": "5.0000000000"}],"length":1}' | gzip -c > "$gz"
post "$base/appdb/public" "@$gz" -H 'Content-Encoding: gzip'
check "200 for a gzip body" "$STATUS" 200
check "gzip row written" "$(pg "SELECT status FROM e2e_orders WHERE id = 20")" "gzip"
zs="$E2E_TMP/body.zst"
printf '%s' '{"payload":[{"after": {"id": 21, "status": "zstd"}, "key": [21], "topic": "e2e_orders", "updated": "5.0000000000"}],"length":1}' | zstd -q -c > "$zs"
post "$base/appdb/public" "@$zs" -H 'Content-Encoding: ZSTD'
check "200 for a zstd body (the codec's name in any case)" "$STATUS" 200
check "zstd row written" "$(pg "SELECT status FROM e2e_orders WHERE id = 21")" "zstd"
printf '%s' '{"resolved":"6.0000000000"}' | gzip -c > "$gz"
post "$base/appdb/public" "@$gz" -H 'Content-Encoding: gzip'
check "200 for a gzip resolved timestamp" "$STATUS" 200
post "$base/appdb/public" "$insert" -H 'Content-Encoding: br'
check "415 for an unsupported Content-Encoding" "$STATUS" 415
check_contains "415 names it and what is supported" "$RESPONSE" 'unsupported Content-Encoding "br": the replicator reads gzip and zstd bodies'
post "$base/appdb/public" "@$gz" -H 'Content-Encoding: gzip' -H 'Content-Encoding: br'
check "415 for two Content-Encoding fields (one list: gzip, br)" "$STATUS" 415
check_contains "415 names the list" "$RESPONSE" 'unsupported Content-Encoding "gzip, br"'
head -c 20 "$zs" > "$E2E_TMP/cut.zst"
post "$base/appdb/public" "@$E2E_TMP/cut.zst" -H 'Content-Encoding: zstd'
check "400 for a truncated zstd body" "$STATUS" 400
check_contains "400 says so" "$RESPONSE" "the zstd body does not decompress: it is truncated"
post "$base/appdb/public" "$insert" -H 'Content-Encoding: gzip'
check "400 for a body that is not gzip" "$STATUS" 400
check_contains "400 names the codec" "$RESPONSE" "the gzip body does not decompress"
printf '{"payload":[],"length":0,"pad":"%05000d"}' 0 | gzip -c > "$gz"
check "the padded body compresses below the limit" "$([ "$(stat -c %s "$gz")" -lt 2048 ] && echo yes)" yes
post "$base/appdb/public" "@$gz" -H 'Content-Encoding: gzip'
check "413 when the body decompresses to more than --maxBodySize" "$STATUS" 413
check_contains "413 names the limit" "$RESPONSE" "decompresses to more than 2048 bytes (--maxBodySize)"
stop_replicator
check "exit 0 after SIGTERM" "$REPLICATOR_EXIT" 0

echo "--- 503 when the target is down; liveness vs readiness; what an unhealthy answer reveals"
start_replicator down --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --metricsAddr 127.0.0.1:0 --applyTimeout 2s \
    --targetConn "postgres://secretuser:secretpw@127.0.0.1:1/secretdb?sslmode=disable" || exit 1
post "http://127.0.0.1:$REPLICATOR_PORT/appdb/public" "$insert"
check "503 when the target is unreachable" "$STATUS" 503
get "http://127.0.0.1:$REPLICATOR_PORT/_/healthz"
check "readiness (/_/healthz on --bindAddr, also with --metricsAddr): 503 when the target is unreachable" "$STATUS" 503
check "an unhealthy answer names the part only, no host, user or database" "$RESPONSE" "health check failed for target"
down_metrics=$(metrics_port down)
check "liveness (/_/healthz on --metricsAddr) touches no database" "$(curl -s "http://127.0.0.1:$down_metrics/_/healthz")" "OK"
get "http://127.0.0.1:$down_metrics/_/readyz"
check "readiness on --metricsAddr (/_/readyz): 503" "$STATUS" 503
check "/_/readyz reveals no more" "$RESPONSE" "health check failed for target"
check_contains "the log has the cause of the failed health check" "$(grep 'health check failed' "$E2E_TMP/down.log")" '"component":"target"'
stop_replicator

echo "--- 401 without a token (JWT, the default, with no key installed)"
start_replicator noauth --immediate --tlsSelfSigned --bindAddr 127.0.0.1:0 --targetConn "$PG_URL" \
    --stagingSchema e2e_http_keys --stagingCreateSchema || exit 1
e2e_on_exit 'pg "DROP SCHEMA IF EXISTS e2e_http_keys CASCADE"'
post "https://127.0.0.1:$REPLICATOR_PORT/appdb/public" "$insert" --insecure
check "401 without a token" "$STATUS" 401
check_contains "401 says what is missing" "$RESPONSE" "missing or invalid access token: none was sent"
check_contains "startup log says how to install a key" "$(cat "$E2E_TMP/noauth.log")" "replicator make-jwt -k key.pem"
stop_replicator

echo "--- an unauthenticated request is refused at its headers, its body unread"
start_replicator unread --immediate --insecureHTTP --bindAddr 127.0.0.1:0 --targetConn "$PG_URL" \
    --stagingSchema e2e_http_keys || exit 1
check "401 after 1 KiB of a declared 50 MB body (plain HTTP)" \
    "$(partial_post socat - "TCP:127.0.0.1:$REPLICATOR_PORT")" "HTTP/1.1 401 Unauthorized"
big_file="$E2E_TMP/50mb.json"
head -c 52428800 /dev/zero | tr '\0' ' ' > "$big_file"
sent=$(curl -s -o /dev/null -w '%{http_code} %{size_upload}' -H 'Expect:' -X POST \
    --data-binary "@$big_file" "http://127.0.0.1:$REPLICATOR_PORT/appdb/public")
check "a client sending 50 MB unauthenticated is stopped long before the end" \
    "$([ "${sent#* }" -lt 52428800 ] && echo stopped || echo "read in full: $sent")" stopped
check "it is not counted as payload" "$(curl -s "http://127.0.0.1:$REPLICATOR_PORT/_/varz" | grep -c '^http_payload_in_bytes_total [1-9]')" 0
stop_replicator

echo "--- TLS with client certificates"
certs="$E2E_TMP/certs"
mkdir -p "$certs"
make_mtls_certs "$certs"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$certs/rogue.key" -out "$certs/rogue.crt" -days 2 -subj "/CN=rogue" 2>/dev/null
start_replicator mtls --immediate --tlsCertificate "$certs/server.crt" --tlsPrivateKey "$certs/server.key" \
    --tlsClientCA "$certs/ca.crt" --bindAddr 127.0.0.1:0 --targetConn "$PG_URL" || exit 1
url="https://127.0.0.1:$REPLICATOR_PORT/appdb/public"
insert2='{"payload":[{"after": {"id": 10, "status": "mtls"}, "key": [10], "topic": "e2e_orders", "updated": "4.0000000000"}]}'
post "$url" "$insert2" --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key"
check "200 with a client certificate from the CA" "$STATUS" 200
check "row written over mTLS" "$(pg "SELECT status FROM e2e_orders WHERE id = 10")" "mtls"
post "$url" "$insert2" --cacert "$certs/ca.crt"
check "401 without a client certificate" "$STATUS" 401
check "401 without a client certificate after 1 KiB of a declared 50 MB body" \
    "$(partial_post openssl s_client -quiet -connect "127.0.0.1:$REPLICATOR_PORT" -CAfile "$certs/ca.crt")" \
    "HTTP/1.1 401 Unauthorized"
post "$url" "$insert2" --cacert "$certs/ca.crt" --cert "$certs/rogue.crt" --key "$certs/rogue.key"
check "a certificate from another CA is refused in the TLS handshake" "$STATUS" 000
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$certs/ca.crt" "https://127.0.0.1:$REPLICATOR_PORT/_/healthz")
check "healthz needs no client certificate" "$code" 200
post "$url" "$insert2" --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key" --tls-max 1.1
check "TLS 1.1 is refused" "$STATUS" 000
stop_replicator

echo "--- TLS with client certificates and --metricsAddr: no certificate, no handshake"
start_replicator mtls2 --immediate --tlsCertificate "$certs/server.crt" --tlsPrivateKey "$certs/server.key" \
    --tlsClientCA "$certs/ca.crt" --bindAddr 127.0.0.1:0 --metricsAddr 127.0.0.1:0 --targetConn "$PG_URL" || exit 1
url="https://127.0.0.1:$REPLICATOR_PORT/appdb/public"
post "$url" "$insert2" --cacert "$certs/ca.crt"
check "a client without a certificate is refused in the TLS handshake" "$STATUS" 000
check_contains "curl says why" "$(cat "$E2E_TMP/curl.err")" "alert"
post "$url" "$insert2" --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key"
check "200 with a client certificate" "$STATUS" 200
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(metrics_port mtls2)/_/readyz")
check "readiness without a certificate on --metricsAddr" "$code" 200
stop_replicator

echo "--- self-signed certificate"
start_replicator selfsigned --immediate --tlsSelfSigned --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$PG_URL" || exit 1
post "https://127.0.0.1:$REPLICATOR_PORT/appdb/public" '{"payload":[{"after": {"id": 11, "status": "self"}, "key": [11], "topic": "e2e_orders", "updated": "5.0000000000"}]}' --insecure
check "self-signed mode works with curl --insecure" "$STATUS" 200
post "https://127.0.0.1:$REPLICATOR_PORT/appdb/public" "$insert"
check "and verification fails without --insecure" "$STATUS" 000
stop_replicator

echo "--- separate metrics address"
start_replicator metrics --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --metricsAddr 127.0.0.1:0 --targetConn "$PG_URL" || exit 1
metrics_port=$(metrics_port metrics)
code=$(curl -s -o "$E2E_TMP/metrics-varz.txt" -w '%{http_code}' "http://127.0.0.1:$metrics_port/_/varz")
check "varz on --metricsAddr" "$code" 200
check_contains "varz on --metricsAddr has the replicator's families" "$(cat "$E2E_TMP/metrics-varz.txt" 2>/dev/null)" 'pool_connections_max{pool="target"} 128'
check "healthz on --metricsAddr" "$(curl -s "http://127.0.0.1:$metrics_port/_/healthz")" "OK"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REPLICATOR_PORT/_/varz")
check "no /_/varz on the main port then" "$code" 404
check "readiness stays on the main port" "$(curl -s "http://127.0.0.1:$REPLICATOR_PORT/_/healthz")" "OK"
check "readiness on --metricsAddr" "$(curl -s "http://127.0.0.1:$metrics_port/_/readyz")" "OK"
stop_replicator

echo "--- --maxConnections"
start_replicator conns --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --metricsAddr 127.0.0.1:0 --maxConnections 2 --targetConn "$PG_URL" || exit 1
exec 3<>"/dev/tcp/127.0.0.1/$REPLICATOR_PORT" 4<>"/dev/tcp/127.0.0.1/$REPLICATOR_PORT"
headers=$(curl -s -D - -o /dev/null --max-time 10 -X POST --data-binary "$insert" "http://127.0.0.1:$REPLICATOR_PORT/appdb/public" | tr -d '\r')
check_contains "503 past --maxConnections" "$headers" "HTTP/1.1 503"
check_contains "with Retry-After" "$headers" "Retry-After: 1"
check "counted" "$(metrics_value "$(metrics_port conns)" 'http_overload_refusals_total{reason="max_connections"}')" 1
check_contains "and logged" "$(cat "$E2E_TMP/conns.log")" "more than 2 connections (--maxConnections)"
exec 3>&-
conns_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "$insert" "http://127.0.0.1:$REPLICATOR_PORT/appdb/public")" = 200 ]; }
wait_for "200 again once a connection closes" conns_ok
exec 4>&-
stop_replicator

echo "--- probes answer while every worker is blocked on the target"
start_replicator blocked --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --metricsAddr 127.0.0.1:0 --parallelism 1 --targetConn "$PG_URL" || exit 1
blocked_metrics=$(metrics_port blocked)
lock_orders 10
slow='{"payload":[{"after": {"id": 30, "status": "late"}, "key": [30], "topic": "e2e_orders", "updated": "8.0000000000"}]}'
curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "$slow" "http://127.0.0.1:$REPLICATOR_PORT/appdb/public" > "$E2E_TMP/blocked-a.code" &
blocked_a=$!
wait_for "the only worker is blocked on the target" blocked_on_lock
check "readiness on --bindAddr within 3 s" "$(curl -s --max-time 3 "http://127.0.0.1:$REPLICATOR_PORT/_/healthz")" "OK"
check "liveness on --metricsAddr within 3 s" "$(curl -s --max-time 3 "http://127.0.0.1:$blocked_metrics/_/healthz")" "OK"
check "readiness on --metricsAddr within 3 s" "$(curl -s --max-time 3 "http://127.0.0.1:$blocked_metrics/_/readyz")" "OK"
check "varz within 3 s" "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$blocked_metrics/_/varz")" 200
check "the request was still blocked meanwhile" "$(kill -0 "$blocked_a" 2>/dev/null && echo blocked)" blocked
wait "$blocked_a" "$LOCKER"
check "it completes once the lock is released" "$(cat "$E2E_TMP/blocked-a.code")" 200
stop_replicator

echo "--- a request whose client has gone is never applied later"
# (A deadline passing before COMMIT: test/integration/bounded_waits_test.cpp, where each
# statement is slow rather than blocked, so no statement timeout stops it first.)
# A changefeed that times out retries the request and may send newer versions meanwhile: an older
# attempt committing after that would move rows back for good.
start_replicator gone --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --metricsAddr 127.0.0.1:0 --parallelism 1 --targetConn "$PG_URL" || exit 1
gone_metrics=$(metrics_port gone)
settled() { # settled N: N requests for e2e_orders have finished, applied or not
    local ok failed
    ok=$(metrics_value "$gone_metrics" 'mutations_success_count{schema="appdb.public",table="e2e_orders"}')
    failed=$(metrics_value "$gone_metrics" 'mutations_error_count{schema="appdb.public",table="e2e_orders"}')
    [ $((${ok:-0} + ${failed:-0})) -ge "$1" ]
}
lock_orders 3
stale='{"payload":[{"after": {"id": 40, "status": "stale"}, "key": [40], "topic": "e2e_orders", "updated": "10.0000000000"}]}'
curl -s -o /dev/null --max-time 1 -X POST --data-binary "$stale" "http://127.0.0.1:$REPLICATOR_PORT/appdb/public"
check "the client gave up (curl timed out)" "$?" 28
wait "$LOCKER"
wait_for "the abandoned request finished" settled 1
check "its row was not written" "$(pg "SELECT count(*) FROM e2e_orders WHERE id = 40")" 0
check_contains "logged" "$(cat "$E2E_TMP/gone.log")" "the client closed the connection"
stop_replicator

echo "--- --maxQueuedRequests"
start_replicator queue --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --metricsAddr 127.0.0.1:0 --parallelism 1 --maxQueuedRequests 1 --targetConn "$PG_URL" || exit 1
queue_metrics=$(metrics_port queue)
lock_orders 10
for n in 31 32; do
    body="{\"payload\":[{\"after\": {\"id\": $n, \"status\": \"q\"}, \"key\": [$n], \"topic\": \"e2e_orders\", \"updated\": \"9.0000000000\"}]}"
    curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "$body" "http://127.0.0.1:$REPLICATOR_PORT/appdb/public" > "$E2E_TMP/queue-$n.code" &
    eval "queued_$n=\$!"
    if [ "$n" = 31 ]; then
        wait_for "the only worker is blocked on the target" blocked_on_lock
    fi
done
admitted() { [ "$(metrics_value "$queue_metrics" http_requests_admitted)" = 2 ]; }
wait_for "one request handled and one waiting" admitted
headers=$(curl -s -D - -o /dev/null --max-time 5 -X POST --data-binary "$insert" "http://127.0.0.1:$REPLICATOR_PORT/appdb/public" | tr -d '\r')
check_contains "503 at once when the queue is full" "$headers" "HTTP/1.1 503"
check_contains "with Retry-After: 1" "$headers" "Retry-After: 1"
check "counted" "$(metrics_value "$queue_metrics" 'http_overload_refusals_total{reason="queue_full"}')" 1
wait "$queued_31" "$queued_32" "$LOCKER"
check "the handled and the waiting request complete" "$(cat "$E2E_TMP/queue-31.code" "$E2E_TMP/queue-32.code" | tr -d '\n')" 200200
check "both rows written" "$(pg "SELECT count(*) FROM e2e_orders WHERE id IN (31, 32)")" 2
stop_replicator

echo "--- MariaDB target"
my "DROP TABLE IF EXISTS e2e_items"
my "CREATE TABLE e2e_items (id BIGINT PRIMARY KEY, name VARCHAR(20))"
start_replicator mysql --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$MOLT_TEST_MYSQL_URL" || exit 1
post "http://127.0.0.1:$REPLICATOR_PORT/appdb" '{"payload":[{"after": {"id": 1, "name": "one"}, "key": [1], "topic": "e2e_items", "updated": "1.0000000000"}]}'
check "200 on MariaDB (path /<database>)" "$STATUS" 200
check "row written to MariaDB" "$(my "SELECT name FROM e2e_items WHERE id = 1")" "one"
post "http://127.0.0.1:$REPLICATOR_PORT/appdb/public" "$insert"
check "404 for a two-segment path on MySQL" "$STATUS" 404
check_contains "it names the MySQL form" "$RESPONSE" "MySQL targets take the path /<database>"
stop_replicator
my "DROP TABLE e2e_items"

echo "--- 32 concurrent connections (as a changefeed opens), and the text log format"
start_replicator concurrent --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$PG_URL" --logFormat text -v || exit 1
pids=()
for i in $(seq 100 131); do
    body="{\"payload\":[{\"after\": {\"id\": $i, \"status\": \"c\"}, \"key\": [$i], \"topic\": \"e2e_orders\", \"updated\": \"7.0000000000\"}]}"
    (for _ in 1 2 3; do curl -s -o /dev/null -w '%{http_code}\n' -X POST --data-binary "$body" \
        "http://127.0.0.1:$REPLICATOR_PORT/appdb/public"; done) > "$E2E_TMP/c$i.out" &
    pids+=($!)
done
wait "${pids[@]}"
check "96 requests on 32 connections, all 200" "$(cat "$E2E_TMP"/c*.out | sort | uniq -c | tr -s ' ')" " 96 200"
check "32 rows written" "$(pg "SELECT count(*) FROM e2e_orders WHERE id BETWEEN 100 AND 131")" 32
check_contains "text log format" "$(cat "$E2E_TMP/concurrent.log")" "INFO   ["
check_contains "-v logs debug lines (upserted rows)" "$(cat "$E2E_TMP/concurrent.log")" "upserted rows"
stop_replicator

echo "--- SIGTERM during a request"
start_replicator sigterm --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$PG_URL" --gracePeriod 20s || exit 1
# Hold a lock so the request blocks inside the target.
psql "$PG_URL" -X -q -c "BEGIN; LOCK TABLE e2e_orders IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT;" &
locker=$!
sleep 0.5
post_async_out="$E2E_TMP/slow.out"
curl -s -o "$post_async_out" -w '%{http_code}' -X POST --data-binary \
    '{"payload":[{"after": {"id": 20, "status": "slow"}, "key": [20], "topic": "e2e_orders", "updated": "6.0000000000"}]}' \
    "http://127.0.0.1:$REPLICATOR_PORT/appdb/public" > "$E2E_TMP/slow.code" &
client=$!
sleep 0.5
kill -TERM "$REPLICATOR_PID"
wait "$client"
wait "$locker"
wait "$REPLICATOR_PID"
code=$?
E2E_PIDS=()
check "the in-flight request completes" "$(cat "$E2E_TMP/slow.code")" 200
check "its row is written" "$(pg "SELECT status FROM e2e_orders WHERE id = 20")" "slow"
check "the process exits 0" "$code" 0
check_contains "the log shows the drain" "$(cat "$E2E_TMP/sigterm.log")" '"message":"Server shutdown complete"'

pg "DROP TABLE e2e_lines, e2e_orders"
e2e_finish
