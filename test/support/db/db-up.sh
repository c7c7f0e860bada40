#!/usr/bin/env bash
# db-up.sh BASE: start throwaway PostgreSQL 15 and MariaDB 10.11 on 127.0.0.1, data under BASE
# (use tmpfs), on free ports, without systemd. Writes BASE/env.sh with the connection strings
# (MOLT_TEST_*) and the server PIDs. Stop them with db-down.sh BASE. Never touches a server it
# did not start: BASE must be new or empty.
set -euo pipefail
BASE=${1:?usage: db-up.sh BASE}
PGBIN=/usr/lib/postgresql/15/bin
log() { echo "db-up: $*" >&2; }

if [ -e "$BASE" ] && [ -n "$(ls -A "$BASE" 2>/dev/null)" ]; then
    log "$BASE is not empty; refusing to reuse it"; exit 1
fi
mkdir -p "$BASE"
chmod 755 "$BASE"

as_root=0; [ "$(id -u)" = 0 ] && as_root=1
# PostgreSQL refuses to run as root: run its tools as the postgres user when we are root.
pg_run() { if [ $as_root = 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A port nothing answers on (the server's own bind is the final check; we retry on failure).
. "$(dirname "${BASH_SOURCE[0]}")/../free_port.sh"

# ---- TLS: one CA, a server certificate for localhost and 127.0.0.1, a client certificate --------
# Both servers accept TLS (and plain connections, which most tests use); tests that connect with
# sslmode=verify-full use MOLT_TEST_TLS_DIR/ca.crt (and client.crt/client.key for MySQL's form).
TLS="$BASE/tls"
mkdir -p "$TLS"
(
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3 -subj "/CN=molt test CA"
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 3 -extfile san.ext
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=app"
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 3
    chmod 644 ./*.crt client.key
    chmod 600 server.key ca.key
) > "$BASE/tls.log" 2>&1 || { cat "$BASE/tls.log" >&2; exit 1; }
install -d "$BASE/pg-tls"
cp "$TLS/server.crt" "$TLS/server.key" "$BASE/pg-tls/"
chmod 600 "$BASE/pg-tls/server.key"
[ $as_root = 1 ] && chown -R postgres "$BASE/pg-tls"

# ---- PostgreSQL 15 ------------------------------------------------------------------------
if [ $as_root = 1 ]; then install -d -o postgres -g postgres "$BASE/pg" "$BASE/pg/sock"; else mkdir -p "$BASE/pg/sock"; fi
PGSUPER_PASSWORD=pgsuper
echo "$PGSUPER_PASSWORD" > "$BASE/pg/pw"
[ $as_root = 1 ] && chown postgres "$BASE/pg/pw"
pg_run "$PGBIN/initdb" -D "$BASE/pg/data" -U postgres -E UTF8 --locale=C.UTF-8 --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="$BASE/pg/pw" > "$BASE/pg/initdb.log" 2>&1 \
    || { cat "$BASE/pg/initdb.log" >&2; exit 1; }
# PostgreSQL >= 15.20 only loads output plugins listed in output_plugin_libraries; 15.18 has no
# such setting and refuses to start with it.
plugins=""
if "$PGBIN/postgres" --describe-config 2>/dev/null | grep '^output_plugin_libraries' >/dev/null; then
    plugins="-c output_plugin_libraries=pgoutput,test_decoding,wal2json"
fi
PGPORT=""
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if pg_run "$PGBIN/pg_ctl" -D "$BASE/pg/data" -l "$BASE/pg/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $BASE/pg/sock -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c ssl=on -c ssl_cert_file=$BASE/pg-tls/server.crt -c ssl_key_file=$BASE/pg-tls/server.key $plugins" \
        start > "$BASE/pg/pg_ctl.log" 2>&1; then
        PGPORT=$port; break
    fi
    log "PostgreSQL did not start on port $port (attempt $attempt)"
done
[ -n "$PGPORT" ] || { cat "$BASE/pg/server.log" >&2; exit 1; }
PGPID=$(head -1 "$BASE/pg/data/postmaster.pid")
psql -X -q -h "$BASE/pg/sock" -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE app LOGIN PASSWORD 'app' REPLICATION" \
    -c "CREATE DATABASE appdb OWNER app" >&2
# wal2json must load: create and drop a slot with it.
psql -X -q -h "$BASE/pg/sock" -p "$PGPORT" -U postgres -d appdb -v ON_ERROR_STOP=1 -At \
    -c "SELECT 'wal2json ok' FROM pg_create_logical_replication_slot('molt_probe', 'wal2json')" \
    -c "SELECT pg_drop_replication_slot('molt_probe')" >/dev/null

# ---- MariaDB 10.11 ------------------------------------------------------------------------
mkdir -p "$BASE/my/data" "$BASE/my/run"
user_opt=(); [ $as_root = 1 ] && user_opt=(--user=root)
mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$BASE/my/data" \
    --auth-root-authentication-method=socket --skip-test-db > "$BASE/my/install.log" 2>&1 \
    || { cat "$BASE/my/install.log" >&2; exit 1; }
MYPORT=""
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    mariadbd --no-defaults "${user_opt[@]}" --datadir="$BASE/my/data" \
        --socket="$BASE/my/run/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
        --pid-file="$BASE/my/run/mysqld.pid" --log-error="$BASE/my/error.log" \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --max-connections=500 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --ssl-ca="$TLS/ca.crt" --ssl-cert="$TLS/server.crt" --ssl-key="$TLS/server.key" \
        > "$BASE/my/stdout.log" 2>&1 &
    mypid=$!
    for _ in $(seq 1 300); do
        if mariadb-admin --no-defaults --socket="$BASE/my/run/mysqld.sock" -uroot ping >/dev/null 2>&1; then
            MYPORT=$port; break
        fi
        kill -0 "$mypid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$MYPORT" ] && break
    log "MariaDB did not start on port $port (attempt $attempt)"
    kill -TERM "$mypid" 2>/dev/null || true
    wait "$mypid" 2>/dev/null || true
done
[ -n "$MYPORT" ] || { cat "$BASE/my/error.log" >&2; exit 1; }
MYPID=$(cat "$BASE/my/run/mysqld.pid")
mariadb --no-defaults --socket="$BASE/my/run/mysqld.sock" -uroot -e "
  CREATE DATABASE appdb;
  CREATE USER 'app'@'%' IDENTIFIED BY 'app'; CREATE USER 'app'@'localhost' IDENTIFIED BY 'app';
  GRANT ALL ON appdb.* TO 'app'@'%'; GRANT ALL ON appdb.* TO 'app'@'localhost';
  CREATE USER 'molt_admin'@'%' IDENTIFIED BY 'admin'; CREATE USER 'molt_admin'@'localhost' IDENTIFIED BY 'admin';
  GRANT ALL ON *.* TO 'molt_admin'@'%' WITH GRANT OPTION; GRANT ALL ON *.* TO 'molt_admin'@'localhost' WITH GRANT OPTION;"

cat > "$BASE/env.sh" <<ENV
export MOLT_TEST_PG_URL='postgres://app:app@127.0.0.1:$PGPORT/appdb?sslmode=disable'
export MOLT_TEST_PG_ADMIN_URL='postgres://postgres:$PGSUPER_PASSWORD@127.0.0.1:$PGPORT/postgres?sslmode=disable'
export MOLT_TEST_MYSQL_URL='mysql://app:app@127.0.0.1:$MYPORT/appdb'
export MOLT_TEST_MYSQL_ADMIN_URL='mysql://molt_admin:admin@127.0.0.1:$MYPORT/appdb'
export MOLT_TEST_TLS_DIR='$TLS'
export MOLT_TEST_PG_PID=$PGPID
export MOLT_TEST_MYSQL_PID=$MYPID
ENV
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (pid $PGPID), MariaDB on 127.0.0.1:$MYPORT (pid $MYPID), data in $BASE"
