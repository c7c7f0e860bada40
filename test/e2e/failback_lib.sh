# Helpers for the molt fetch --mode failback e2e tests. Source after lib.sh and e2e_init.

# make_webhook_certs DIR: a CA, the replicator's server certificate for localhost and 127.0.0.1,
# and the changefeed's client certificate, as the failback tutorial makes them.
make_webhook_certs() {
    mkdir -p "$1"
    (
        cd "$1" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=failback CA"
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=changefeed"
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2
    ) >/dev/null 2>&1
}

# base64, then URL-encoded (the docs: base64 -i ./client.crt | jq -R -r '@uri').
b64uri() { base64 -w0 "$1" | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g'; }

# secure_json PORT FILE CERT_DIR [CLIENT_CERT CLIENT_KEY CA]: a --changefeeds-path file for the
# webhook on localhost:PORT with the changefeed's certificates (defaults from CERT_DIR).
secure_json() {
    local dir=$3
    printf '{"host": "localhost", "port": %s, "resolved": "250ms", "min_checkpoint_frequency": "250ms",
 "webhook_sink_config": "{\\"Flush\\":{\\"Messages\\":100,\\"Frequency\\":\\"100ms\\"}}",
 "sink_query_parameters": "client_cert=%s&client_key=%s&ca_cert=%s"}\n' "$1" \
        "$(b64uri "${4:-$dir/client.crt}")" "$(b64uri "${5:-$dir/client.key}")" \
        "$(b64uri "${6:-$dir/ca.crt}")" >"$2"
}

. "$(dirname "${BASH_SOURCE[0]}")/../support/free_port.sh" || {
    echo "FAIL: test/support/free_port.sh is missing" >&2
    exit 1
}

# start_standin BACKEND_URL: crdb-emulator serve with TLS (the test servers' certificate) in
# front of BACKEND_URL; sets SERVE_PID and CRDB (verify-full through the stand-in, same database).
start_standin() {
    local db=${1##*/}
    db=${db%%\?*}
    "$EMULATOR" serve --backend "$1" --listen 127.0.0.1:0 --ready-file "$E2E_TMP/ready" \
        --tls-cert "$TLS/server.crt" --tls-key "$TLS/server.key" >"$E2E_TMP/serve.log" 2>&1 &
    SERVE_PID=$!
    E2E_PIDS+=("$SERVE_PID")
    for _ in $(seq 1 100); do [ -s "$E2E_TMP/ready" ] && break; sleep 0.05; done
    [ -s "$E2E_TMP/ready" ] || { cat "$E2E_TMP/serve.log"; return 1; }
    CRDB="postgresql://app:app@localhost:$(cut -d: -f2 "$E2E_TMP/ready")/$db?sslmode=verify-full&sslrootcert=$TLS/ca.crt"
}

# stop_standin: SIGTERM, exit 0 expected.
stop_standin() {
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID"
    check "crdb-emulator exits 0 on SIGTERM" "$?" 0
    E2E_PIDS=()
}

# The failback tutorial's tables (plus audit, which no test selects).
FAILBACK_TABLES="CREATE SCHEMA migration_schema;
    CREATE TABLE migration_schema.employees (id INT8 PRIMARY KEY, name TEXT, salary NUMERIC(12,2));
    CREATE TABLE migration_schema.payments (id INT8 PRIMARY KEY, employee_id INT8, amount NUMERIC(12,2));
    CREATE TABLE migration_schema.orders (id INT8 PRIMARY KEY, item TEXT, qty INT8);
    CREATE TABLE migration_schema.audit (id INT8 PRIMARY KEY, note TEXT);"
FAILBACK_TABLES_MYSQL="CREATE TABLE employees (id BIGINT PRIMARY KEY, name TEXT NOT NULL, salary DECIMAL(12,2));
    CREATE TABLE payments (id BIGINT PRIMARY KEY, employee_id BIGINT, amount DECIMAL(12,2));
    CREATE TABLE orders (id BIGINT PRIMARY KEY, item TEXT, qty BIGINT);
    CREATE TABLE audit (id BIGINT PRIMARY KEY, note TEXT)"

# pg_db NAME: the test PostgreSQL URL for database NAME (user app, no TLS).
pg_db() { echo "${MOLT_TEST_PG_URL/\/appdb\?/\/$1?}"; }
