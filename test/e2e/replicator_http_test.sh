#!/usr/bin/env bash
# replicator start --immediate over real HTTP(S): every status code, TLS with client
# certificates, self-signed mode, healthz/varz, and SIGTERM during a request.
# Usage: replicator_http_test.sh REPLICATOR   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
. "$(dirname "$0")/lib.sh"
e2e_init

PG_URL=$MOLT_TEST_PG_URL
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
stop_replicator
check "exit 0 after SIGTERM" "$REPLICATOR_EXIT" 0

echo "--- 503 when the target is down"
start_replicator down --immediate --insecureHTTP --disableAuthentication --bindAddr 127.0.0.1:0 \
    --applyTimeout 2s --targetConn "postgres://app:app@127.0.0.1:1/appdb?sslmode=disable" || exit 1
post "http://127.0.0.1:$REPLICATOR_PORT/appdb/public" "$insert"
check "503 when the target is unreachable" "$STATUS" 503
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REPLICATOR_PORT/_/healthz")
check "healthz 503 when the target is unreachable" "$code" 503
stop_replicator

echo "--- 401 without any credential mechanism"
start_replicator noauth --immediate --tlsSelfSigned --bindAddr 127.0.0.1:0 --targetConn "$PG_URL" || exit 1
post "https://127.0.0.1:$REPLICATOR_PORT/appdb/public" "$insert" --insecure
check "401 when no credentials are configured" "$STATUS" 401
check_contains "401 says how to configure access" "$RESPONSE" "--tlsClientCA"
check_contains "startup log says how to configure access" "$(cat "$E2E_TMP/noauth.log")" "start with --tlsClientCA"
stop_replicator

echo "--- TLS with client certificates"
certs="$E2E_TMP/certs"
mkdir -p "$certs"
(
    cd "$certs" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=e2e CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=changefeed" 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.crt -days 2 -subj "/CN=rogue" 2>/dev/null
)
start_replicator mtls --immediate --tlsCertificate "$certs/server.crt" --tlsPrivateKey "$certs/server.key" \
    --tlsClientCA "$certs/ca.crt" --bindAddr 127.0.0.1:0 --targetConn "$PG_URL" || exit 1
url="https://127.0.0.1:$REPLICATOR_PORT/appdb/public"
insert2='{"payload":[{"after": {"id": 10, "status": "mtls"}, "key": [10], "topic": "e2e_orders", "updated": "4.0000000000"}]}'
post "$url" "$insert2" --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key"
check "200 with a client certificate from the CA" "$STATUS" 200
check "row written over mTLS" "$(pg "SELECT status FROM e2e_orders WHERE id = 10")" "mtls"
post "$url" "$insert2" --cacert "$certs/ca.crt"
check "401 without a client certificate" "$STATUS" 401
post "$url" "$insert2" --cacert "$certs/ca.crt" --cert "$certs/rogue.crt" --key "$certs/rogue.key"
check "a certificate from another CA is refused in the TLS handshake" "$STATUS" 000
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$certs/ca.crt" "https://127.0.0.1:$REPLICATOR_PORT/_/healthz")
check "healthz needs no client certificate" "$code" 200
post "$url" "$insert2" --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key" --tls-max 1.1
check "TLS 1.1 is refused" "$STATUS" 000
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
metrics_port=$(grep 'metrics server bound to' "$E2E_TMP/metrics.log" | sed 's/.*bound to [^"]*:\([0-9]*\)".*/\1/')
code=$(curl -s -o "$E2E_TMP/metrics-varz.txt" -w '%{http_code}' "http://127.0.0.1:$metrics_port/_/varz")
check "varz on --metricsAddr" "$code" 200
check_contains "varz on --metricsAddr has the replicator's families" "$(cat "$E2E_TMP/metrics-varz.txt" 2>/dev/null)" 'pool_connections_max{pool="target"} 128'
check "healthz on --metricsAddr" "$(curl -s "http://127.0.0.1:$metrics_port/_/healthz")" "OK"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REPLICATOR_PORT/_/varz")
check "no /_/ endpoints on the main port then" "$code" 404
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
