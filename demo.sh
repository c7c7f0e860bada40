#!/usr/bin/env bash
# ./demo.sh [--mysql] [--seconds N] — the failback demo, entirely on this machine.
#
# You migrated from PostgreSQL (or MySQL/MariaDB with --mysql) to CockroachDB; failback keeps the
# way back open. This script sets up both sides, runs the command the MOLT failback tutorial
# runs, writes to "CockroachDB" for a while, and proves the original database received every
# change:
#
#   psql ──► crdb-emulator serve ──── changefeed, HTTPS with client certificates ────► replicator
#            "CockroachDB" (TLS)                                                           │ applies
#            backend: PostgreSQL database defaultdb            PostgreSQL database molt ◄──┘
#                          ▲                                   (or MariaDB database molt)
#                          └── molt fetch --mode failback: starts the replicator, creates the
#                              changefeed, reports progress, stops cleanly on SIGTERM
#
# CockroachDB cannot be installed here, so its place is taken by crdb-emulator serve, the
# project's stand-in (test/emulator/README.md): a pgwire proxy in front of a real PostgreSQL that
# answers as CockroachDB and runs real changefeeds to real HTTPS webhooks.
#
# Steps: install what is missing (Debian 12), build molt, replicator and crdb-emulator (Release),
# start throwaway database servers on tmpfs, start the stand-in, create the tables, make
# certificates and changefeed-secure.json, run molt, write for --seconds (default 25), compare
# the tables row by row, stop molt with SIGTERM (exit 0). Everything it starts is stopped on exit,
# Ctrl-C included. Exit status 0 when every step passed.
set -euo pipefail

usage() {
    sed -n '2p' "$0" | sed 's/^# //'
    echo "  --mysql      fail back to MariaDB instead of PostgreSQL"
    echo "  --seconds N  how long to write to the CockroachDB side (default 25)"
}
MYSQL=0
SECONDS_OF_WRITES=25
while [ $# -gt 0 ]; do
    case $1 in
    --mysql) MYSQL=1 ;;
    --seconds) SECONDS_OF_WRITES=${2:?--seconds needs a number}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
[[ $SECONDS_OF_WRITES =~ ^[0-9]+$ ]] || { usage >&2; exit 2; }

REPO=$(cd "$(dirname "$0")" && pwd)
BIN="$REPO/build/bench/bin"

# ---- output helpers ------------------------------------------------------------------------
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
T0=$(now_ms)
elapsed() { local d=$(($(now_ms) - T0)); printf '%3d.%ds' $((d / 1000)) $((d % 1000 / 100)); }
bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "==> [$(elapsed)] $*"; }
say() { echo "    $*"; }
# die MESSAGE [LOG...]: the message, the end of each log, exit 1 (the EXIT trap cleans up).
die() {
    local msg=$1 f
    shift
    echo >&2
    bold "FAILED: $msg" >&2
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "---- last lines of $(basename "$f") ----" >&2
        tail -n 25 "$f" >&2
    done
    exit 1
}

# ---- 1. dependencies and build -------------------------------------------------------------
step "Installing missing Debian packages (test/support/deps.sh)"
"$REPO/test/support/deps.sh"

step "Building molt, replicator and crdb-emulator (CMake preset bench: Release, with the test tools)"
# The "release" preset leaves the tests out, and with them the CockroachDB stand-in.
(cd "$REPO" && cmake --preset bench >/dev/null && cmake --build --preset bench --target molt replicator crdb-emulator) ||
    die "the build failed"
for b in molt replicator crdb-emulator; do [ -x "$BIN/$b" ] || die "$BIN/$b was not built"; done
T0=$(now_ms) # the demo proper starts here

# ---- 2. a scratch directory and the clean-up ----------------------------------------------
# Everything lives in one directory on tmpfs; molt runs in it, so the paths in its command line
# (./certs/..., changefeed-secure.json) are the tutorial's.
parent=/dev/shm
[ -d "$parent" ] && [ -w "$parent" ] || parent=${TMPDIR:-/tmp}
WORK=$(mktemp -d "$parent/molt-demo.XXXXXX")
chmod 755 "$WORK" # the PostgreSQL server (user postgres when we are root) reads below it
DB="$WORK/db"     # test/support/db/db-up.sh puts the servers' data and TLS files here
MOLT_PID="" STANDIN_PID="" PRINTER_PID="" WRITES_PID=""

# stop PID NAME: SIGTERM, up to 60 s, then SIGKILL. Returns the process's exit status.
stop() {
    local pid=$1 name=$2 rc
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "    $name (pid $pid) did not stop within 60 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}
# finish_printer: the log printer ends by itself once molt is gone and it has shown the last
# lines; give it 5 s.
finish_printer() {
    for _ in $(seq 1 50); do kill -0 "$PRINTER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PRINTER_PID" 2>/dev/null && kill -TERM "$PRINTER_PID" 2>/dev/null
    wait "$PRINTER_PID" 2>/dev/null
    PRINTER_PID=""
}
cleanup() {
    local rc=$? keep
    trap - EXIT INT TERM
    set +e
    if [ -n "$WRITES_PID" ]; then # psql and the writer feeding it
        kill -TERM "$(cat "$WORK/writer.pid" 2>/dev/null)" 2>/dev/null
        stop "$WRITES_PID" psql
    fi
    [ -n "$MOLT_PID" ] && stop "$MOLT_PID" molt
    [ -n "$PRINTER_PID" ] && finish_printer
    [ -n "$STANDIN_PID" ] && stop "$STANDIN_PID" crdb-emulator
    "$REPO/test/support/db/db-down.sh" "$DB"
    if [ "$rc" != 0 ] && ls "$WORK"/*.log >/dev/null 2>&1; then
        keep=$(mktemp -d /tmp/molt-demo-logs.XXXXXX)
        cp "$WORK"/*.log "$keep"/
        echo "The logs are kept in $keep" >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo >&2; echo "Interrupted: stopping everything the demo started" >&2; exit 130' INT
trap 'exit 143' TERM
cd "$WORK"

# ---- 3. the database servers ----------------------------------------------------------------
step "Starting throwaway PostgreSQL 15 and MariaDB on tmpfs (test/support/db/db-up.sh)"
# db-up.sh starts both servers (on free ports, with TLS: a CA, a server certificate for
# localhost, a client certificate) and writes their connection strings to env.sh. PostgreSQL
# holds both sides of the PostgreSQL demo: the database "defaultdb" behind the CockroachDB
# stand-in, and the database "molt" we fail back to.
"$REPO/test/support/db/db-up.sh" "$DB" >"$WORK/db-up.log" 2>&1 || die "the database servers did not start" "$WORK/db-up.log"
# shellcheck disable=SC1091
. "$DB/env.sh"
port_of() { sed -E 's|.*@[^:/]+:([0-9]+)/.*|\1|' <<<"$1"; }
PG_PORT=$(port_of "$MOLT_TEST_PG_URL")
MY_PORT=$(port_of "$MOLT_TEST_MYSQL_URL")
say "PostgreSQL on localhost:$PG_PORT, MariaDB on localhost:$MY_PORT"
pg_admin() { psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "$1"; }
my_admin() { mariadb --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u molt_admin -padmin -e "$1"; }
my_app() { mariadb --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u app -papp -N -B molt -e "$1"; }
# The user "app" (password "app", with REPLICATION for the stand-in's logical decoding) owns
# the databases on both sides.
pg_admin "CREATE DATABASE defaultdb OWNER app" || die "cannot create the PostgreSQL database defaultdb"
if [ $MYSQL = 1 ]; then
    my_admin "CREATE DATABASE molt; GRANT ALL ON molt.* TO 'app'@'%'; GRANT ALL ON molt.* TO 'app'@'localhost'" ||
        die "cannot create the MariaDB database molt"
else
    pg_admin "CREATE DATABASE molt OWNER app" || die "cannot create the PostgreSQL database molt"
fi
# The clients' certificates, where the MOLT docs keep them (./source_certs).
mkdir source_certs
cp "$MOLT_TEST_TLS_DIR"/{ca.crt,client.crt,client.key} source_certs/

# ---- 4. the CockroachDB stand-in ------------------------------------------------------------
step "Starting the CockroachDB stand-in (crdb-emulator serve)"
# Clients get TLS with the servers' certificate (verify-full works); the stand-in itself reads
# changes from its backend database through logical decoding.
"$BIN/crdb-emulator" serve --backend "postgres://app:app@127.0.0.1:$PG_PORT/defaultdb?sslmode=disable" \
    --listen 127.0.0.1:0 --ready-file "$WORK/standin.addr" \
    --tls-cert "$MOLT_TEST_TLS_DIR/server.crt" --tls-key "$MOLT_TEST_TLS_DIR/server.key" \
    >"$WORK/standin.log" 2>&1 &
STANDIN_PID=$!
for _ in $(seq 1 200); do [ -s standin.addr ] && break; kill -0 "$STANDIN_PID" 2>/dev/null || break; sleep 0.05; done
[ -s standin.addr ] || die "the stand-in did not start" "$WORK/standin.log"
CRDB_PORT=$(cut -d: -f2 standin.addr)

# The two connection strings molt gets, both with sslmode=verify-full.
SOURCE="postgresql://app:app@localhost:$CRDB_PORT/defaultdb?sslmode=verify-full&sslrootcert=./source_certs/ca.crt"
if [ $MYSQL = 1 ]; then
    # The tutorial's MySQL form: certificate paths URL-encoded ("/" is %2f).
    TARGET="mysql://app:app@localhost:$MY_PORT/molt?sslcert=.%2fsource_certs%2fclient.crt&sslkey=.%2fsource_certs%2fclient.key&sslmode=verify-full&sslrootcert=.%2fsource_certs%2fca.crt"
else
    TARGET="postgres://app:app@localhost:$PG_PORT/molt?sslmode=verify-full&sslrootcert=./source_certs/ca.crt"
fi
crdb() { psql "$SOURCE" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
version=$(crdb 'SELECT version()') || die "cannot connect to the stand-in" "$WORK/standin.log"
say "$version"
say "listening on localhost:$CRDB_PORT"

# ---- 5. the tables, on both sides -----------------------------------------------------------
step "Creating migration_schema.employees, payments and orders on both sides"
# The state after a forward migration: the same tables and the same rows on CockroachDB and on
# the original database.
seed_rows() { # seed_rows PREFIX: INSERTs of the initial rows, tables named PREFIX<table>
    local i e="" p="" o=""
    for i in $(seq 1 100); do e+="${e:+,}($i, 'employee $i', $((40000 + i * 250)).00)"; done
    for i in $(seq 1 200); do p+="${p:+,}($i, $(((i - 1) % 100 + 1)), $((i * 12)).50)"; done
    for i in $(seq 1 50); do o+="${o:+,}($i, 'item $i', $((i % 7 + 1)))"; done
    echo "INSERT INTO ${1}employees VALUES $e; INSERT INTO ${1}payments VALUES $p; INSERT INTO ${1}orders VALUES $o;"
}
PG_TABLES="CREATE TABLE migration_schema.employees (id INT8 PRIMARY KEY, name TEXT NOT NULL, salary DECIMAL(12,2) NOT NULL);
CREATE TABLE migration_schema.payments (id INT8 PRIMARY KEY, employee_id INT8 NOT NULL, amount DECIMAL(12,2) NOT NULL);
CREATE TABLE migration_schema.orders (id INT8 PRIMARY KEY, item TEXT NOT NULL, qty INT8 NOT NULL);"
# (Two calls: the stand-in resolves migration_schema.employees when it reads the batch, before
# PostgreSQL has run a CREATE SCHEMA in the same batch; CockroachDB would take them in one.)
crdb "CREATE SCHEMA migration_schema" || die "cannot create the schema on CockroachDB" "$WORK/standin.log"
crdb "$PG_TABLES $(seed_rows migration_schema.)" || die "cannot create the tables on CockroachDB" "$WORK/standin.log"
if [ $MYSQL = 1 ]; then
    # MySQL has no schemas: the tables live in the target database.
    my_app "CREATE TABLE employees (id BIGINT PRIMARY KEY, name TEXT NOT NULL, salary DECIMAL(12,2) NOT NULL);
        CREATE TABLE payments (id BIGINT PRIMARY KEY, employee_id BIGINT NOT NULL, amount DECIMAL(12,2) NOT NULL);
        CREATE TABLE orders (id BIGINT PRIMARY KEY, item TEXT NOT NULL, qty BIGINT NOT NULL);
        $(seed_rows '')" || die "cannot create the tables on MariaDB"
else
    psql "$TARGET" -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA migration_schema" \
        -c "$PG_TABLES $(seed_rows migration_schema.)" >/dev/null ||
        die "cannot create the tables on PostgreSQL"
fi
say "100 employees, 200 payments, 50 orders on each side"

# The tutorial's preparation of the CockroachDB cluster.
crdb "SET CLUSTER SETTING kv.rangefeed.enabled = true" || die "SET CLUSTER SETTING failed" "$WORK/standin.log"
say "SET CLUSTER SETTING kv.rangefeed.enabled = true"

# ---- 6. certificates and changefeed-secure.json ---------------------------------------------
step "Generating the webhook certificates (./certs) and changefeed-secure.json"
# A CA; the replicator's server certificate for localhost (the changefeed checks it against
# ca_cert); the changefeed's client certificate (the replicator requires one signed by the CA).
mkdir certs
(
    cd certs
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=failback demo CA"
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=changefeed"
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2
) >"$WORK/openssl.log" 2>&1 || die "openssl failed" "$WORK/openssl.log"

# A port nothing listens on, for the replicator's webhook.
. "$REPO/test/support/free_port.sh" || die "test/support/free_port.sh is missing"
WEBHOOK_PORT=$(free_port) || die "no free port"
# The docs: client_cert, client_key and ca_cert "must be base64- and URL-encoded"
# (base64 -i ./client.crt | jq -R -r '@uri'). resolved and min_checkpoint_frequency are lowered
# from 1s so the progress shows changes within a second.
b64uri() { base64 -w0 "$1" | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g'; }
cat >changefeed-secure.json <<JSON
{
  "host": "localhost",
  "port": $WEBHOOK_PORT,
  "resolved": "250ms",
  "min_checkpoint_frequency": "250ms",
  "sink_query_parameters": "client_cert=$(b64uri certs/client.crt)&client_key=$(b64uri certs/client.key)&ca_cert=$(b64uri certs/ca.crt)"
}
JSON
say "webhook: https://localhost:$WEBHOOK_PORT (mutual TLS)"

# ---- 7. molt fetch --mode failback ----------------------------------------------------------
step "Running molt fetch --mode failback (the tutorial's secure command)"
STAGING="_replicator_$(date +%s%N)"
MOLT_ARGS=(fetch
    --source "$SOURCE"
    --target "$TARGET"
    --schema-filter 'migration_schema'
    --table-filter 'employees|payments|orders'
    --replicator-flags "--stagingSchema $STAGING --tlsCertificate ./certs/server.crt --tlsPrivateKey ./certs/server.key"
    --mode failback
    --changefeeds-path 'changefeed-secure.json'
    # Not in the tutorial: a free port for molt's /metrics and /status (the default 3030 may
    # be taken), and a progress line every 2 s (default 10 s).
    --metrics-listen-addr 127.0.0.1:0
    --progress-interval 2s)
# Shown as a command you can paste (while the servers run): one flag per line.
say "cd $WORK && $BIN/molt fetch \\"
for ((i = 1; i < ${#MOLT_ARGS[@]}; i += 2)); do
    continuation=" \\"
    [ $((i + 2)) -lt ${#MOLT_ARGS[@]} ] || continuation=""
    say "    ${MOLT_ARGS[i]} '${MOLT_ARGS[i + 1]}'$continuation"
done
echo
"$BIN/molt" "${MOLT_ARGS[@]}" >"$WORK/molt.log" 2>&1 &
MOLT_PID=$!

# molt writes JSON lines (its own and, tagged "process":"replicator", the replicator's). Show
# the ones a user looks for as they come: the tutorial's three lines as they are, the rest short.
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" <<<"$2"; }
number() { sed -n "s/.*\"$1\":\\([-0-9.e+]*\\).*/\\1/p" <<<"$2"; }
show_line() {
    local line=$1 t msg tables lag="" s
    t=$(sed -n 's/.*"time":"[^T"]*T\([0-9:]*\).*/\1/p' <<<"$line")
    msg=$(field message "$line")
    case $msg in
    "starting replicator" | "staging database name: "* | "creating changefeed on the source CRDB database")
        echo "  molt │ $line" ;;
    "changefeed created")
        echo "  molt │ $t changefeed created: job $(field job_id "$line") → $(field sink "$line")" ;;
    "reusing the changefeed"*)
        echo "  molt │ $t reusing changefeed job $(field job_id "$line")" ;;
    "failback progress"*)
        # "migration_schema.employees=12 migration_schema.orders=3" → "employees 12 · orders 3"
        tables=$(field tables "$line" | sed -E 's/[^ =]*\.//g; s/=/ /g; s/ ([a-z_]+) / · \1 /g')
        s=$(number source_lag_seconds "$line")
        [ -n "$s" ] && lag+=" source lag $(printf '%.1f' "$s")s"
        s=$(number target_lag_seconds "$line")
        [ -n "$s" ] && lag+="${lag:+,} target lag $(printf '%.1f' "$s")s"
        echo "  molt │ $t rows applied: ${tables:-none yet} │${lag:- no lag yet} │ changefeed $(field changefeed_status "$line")"
        [ "$(field level "$line")" = warn ] && echo "  molt │ $t   changefeed: $(field changefeed_running_status "$line")"
        ;;
    "the changefeed keeps running"* | "molt fetch stopped" | "the replicator stopped" | "stopping the replicator"* | "received interrupt signal")
        echo "  molt │ $t $msg$(s=$(number exit_code "$line"); [ -n "$s" ] && echo " (exit code $s)")" ;;
    *)
        case $(field level "$line") in
        warn | error | fatal | panic)
            echo "  molt │ $t $(field level "$line"): $msg $(field error "$line")" ;;
        esac ;;
    esac
    return 0
}
# tail ends by itself once molt has exited (--pid), and the printer with it.
(tail -n +1 -F --pid="$MOLT_PID" "$WORK/molt.log" 2>/dev/null | while IFS= read -r line; do show_line "$line"; done) &
PRINTER_PID=$!

# Wait for the changefeed (molt first checks both databases, the certificates and the
# replicator's command line, then starts the replicator and waits until it is healthy).
for _ in $(seq 1 600); do
    grep -q '"message":"changefeed created"' molt.log && break
    kill -0 "$MOLT_PID" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q '"message":"changefeed created"' molt.log; then
    stop "$MOLT_PID" molt || true
    MOLT_PID=""
    die "molt did not create its changefeed" "$WORK/molt.log"
fi
sleep 0.5 # let the printer show the line
METRICS=$(grep '"message":"serving /metrics' molt.log | sed -n 's/.*"address":"\([^"]*\)".*/\1/p' | head -1)

# ---- 8. writes on the CockroachDB side ------------------------------------------------------
step "Writing to CockroachDB for ${SECONDS_OF_WRITES}s: inserts, updates, deletes, multi-table transactions"
# One psql session through the stand-in, fed a transaction (or a single statement) every ~0.1 s,
# in turns: hire (three tables in one transaction), raise (a multi-row update), order changes
# (two updates in one transaction), leave (deletes across two tables in one transaction), payroll
# (a multi-row insert computed from the table).
writes() {
    local r=0 e=100 o=50 p=200 sql end=$((SECONDS + SECONDS_OF_WRITES)) next_note=$((SECONDS + 5))
    echo "$BASHPID" >"$WORK/writer.pid"
    while [ "$SECONDS" -lt "$end" ]; do
        r=$((r + 1))
        case $((r % 5)) in
        0)
            e=$((e + 1)) o=$((o + 1)) p=$((p + 2))
            sql="BEGIN;
INSERT INTO migration_schema.employees VALUES ($e, 'employee $e', $((38000 + r * 7)).00);
INSERT INTO migration_schema.payments VALUES ($((p - 1)), $e, 1500.00), ($p, $e, 250.75);
INSERT INTO migration_schema.orders VALUES ($o, 'laptop for employee $e', 1);
COMMIT;" ;;
        1) sql="UPDATE migration_schema.employees SET salary = salary + 100 WHERE id % 10 = $((r % 10));" ;;
        2)
            sql="BEGIN;
UPDATE migration_schema.orders SET qty = qty + 1 WHERE id = $((r % o + 1));
UPDATE migration_schema.orders SET item = 'item $((r % o + 1)) (revised in round $r)' WHERE id = $(((r * 7) % o + 1));
COMMIT;" ;;
        3)
            sql="BEGIN;
DELETE FROM migration_schema.payments WHERE employee_id = $(((r * 13) % e + 1));
DELETE FROM migration_schema.employees WHERE id = $(((r * 13) % e + 1));
COMMIT;" ;;
        4) sql="INSERT INTO migration_schema.payments SELECT $((r * 100000)) + id, id, round(salary / 12, 2)
FROM migration_schema.employees WHERE id % 25 = $((r % 25));" ;;
        esac
        printf '%s\n' "$sql" 2>/dev/null || return 0 # psql is gone; writes.log says why
        if [ "$SECONDS" -ge "$next_note" ]; then
            echo "  demo │ $r transactions written so far" >&2
            next_note=$((SECONDS + 5))
        fi
        sleep 0.1
    done
    echo "  demo │ $r transactions written" >&2
}
# In the background with a wait, so that Ctrl-C is handled at once (the clean-up stops both).
writes | psql "$SOURCE" -X -v ON_ERROR_STOP=1 >"$WORK/writes.log" 2>&1 &
WRITES_PID=$!
wait "$WRITES_PID" || die "the writes failed" "$WORK/writes.log" "$WORK/standin.log"
WRITES_PID=""
# psql printed one command tag per statement ("INSERT 0 3", "UPDATE 5", "DELETE 1").
read -r ins upd del < <(awk '$1 == "INSERT" {i += $3} $1 == "UPDATE" {u += $2} $1 == "DELETE" {d += $2}
    END {print i + 0, u + 0, d + 0}' "$WORK/writes.log")
say "row changes: $ins inserted, $upd updated, $del deleted"
kill -0 "$MOLT_PID" 2>/dev/null || die "molt exited during the writes" "$WORK/molt.log"

# ---- 9. verification ------------------------------------------------------------------------
step "Verifying: the target equals the source, row by row"
columns() {
    case $1 in
    employees) echo "id, name, salary" ;;
    payments) echo "id, employee_id, amount" ;;
    orders) echo "id, item, qty" ;;
    esac
}
# Each table's rows in key order, tab-separated (psql and mariadb print them alike).
source_rows() { psql "$SOURCE" -X -q -At -F $'\t' -c "SELECT $(columns "$1") FROM migration_schema.$1 ORDER BY id"; }
target_rows() {
    if [ $MYSQL = 1 ]; then
        my_app "SELECT $(columns "$1") FROM $1 ORDER BY id"
    else
        psql "$TARGET" -X -q -At -F $'\t' -c "SELECT $(columns "$1") FROM migration_schema.$1 ORDER BY id"
    fi
}
checksums() { # checksums source|target: "table rows md5" per table
    local t rows
    for t in employees payments orders; do
        rows=$("${1}_rows" "$t") || return 1
        echo "$t $(grep -c . <<<"$rows") $(md5sum <<<"$rows" | cut -c1-32)"
    done
}
# The replicator applies up to each resolved timestamp; wait until the last writes are there.
wait_start=$(now_ms)
while :; do
    src=$(checksums source) || die "cannot read the source" "$WORK/standin.log"
    dst=$(checksums target) || die "cannot read the target"
    [ "$src" = "$dst" ] && break
    [ $(($(now_ms) - wait_start)) -ge 60000 ] && break
    sleep 0.5
done
printf '    %-10s %12s %12s   %-34s %s\n' table "source rows" "target rows" "md5 of the rows in key order" ""
paste -d' ' <(echo "$src") <(echo "$dst") | while read -r t sn sm _ tn tm; do
    printf '    %-10s %12s %12s   %-34s %s\n' "$t" "$sn" "$tn" "$sm" "$([ "$sm" = "$tm" ] && echo same || echo "DIFFERS: target $tm")"
done
[ "$src" = "$dst" ] || die "the target still differs from the source 60 s after the last write" "$WORK/molt.log"
say "the target equals the source ($(($(now_ms) - wait_start)) ms after the last write, checks included)"
if [ -n "$METRICS" ]; then
    say "molt's /status (http://$METRICS/status):"
    say "$(curl -fsS "http://$METRICS/status" || echo unavailable)"
fi

# ---- 10. SIGTERM ----------------------------------------------------------------------------
step "Stopping molt with SIGTERM"
sleep 2.5 # one more progress line first
molt_rc=0
pid=$MOLT_PID
MOLT_PID=""
stop "$pid" molt || molt_rc=$?
finish_printer || true
[ "$molt_rc" = 0 ] || die "molt exited with $molt_rc after SIGTERM (0 expected)" "$WORK/molt.log"
say "molt exited 0"
# molt stopped its replicator first (the pid is in its "replicator started" line).
repl=$(grep '"message":"replicator started"' molt.log | tail -1 | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
[ -n "$repl" ] && kill -0 "$repl" 2>/dev/null && die "the replicator (pid $repl) outlived molt" "$WORK/molt.log"
say "its replicator (pid ${repl:-?}) stopped with it"
pid=$STANDIN_PID
STANDIN_PID=""
stop "$pid" crdb-emulator || die "the stand-in did not exit 0 on SIGTERM" "$WORK/standin.log"

# ---- done -------------------------------------------------------------------------------------
step "Done: every step passed"
cat <<END
    What you saw: molt fetch --mode failback, run with the MOLT tutorial's secure command
    (sslmode=verify-full to both databases, a changefeed with client certificates), started the
    replicator and created a changefeed on the CockroachDB stand-in; $ins inserts, $upd updates
    and $del deletes written there (multi-table transactions among them) reached the
    $([ $MYSQL = 1 ] && echo MariaDB || echo PostgreSQL) database "molt", which ended identical to the source; molt stopped on
    SIGTERM with exit code 0, and the demo stopped everything it started.

    Run it again:  ./demo.sh            (PostgreSQL target)
                   ./demo.sh --mysql    (MariaDB target)
                   ./demo.sh --seconds 60
    The binaries:  $BIN/{molt,replicator,crdb-emulator}
END
