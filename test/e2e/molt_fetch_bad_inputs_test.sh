#!/usr/bin/env bash
# molt fetch --mode failback with bad input of every kind: flags, connection strings, override
# files, certificates, filters, tables, privileges, cluster settings. Each must exit 1 with a
# message that names what is wrong (and never a password), with no replicator started (only
# its --dryRun check may run) and no changefeed created.
# Usage: molt_fetch_bad_inputs_test.sh MOLT REPLICATOR CRDB_EMULATOR
MOLT=$1
REPLICATOR=$2
EMULATOR=$3
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/failback_lib.sh"
e2e_init
TLS=${MOLT_TEST_TLS_DIR:?db-up.sh exports MOLT_TEST_TLS_DIR}

own_databases bad_src bad_my || exit 1
psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -c "DROP DATABASE IF EXISTS bad_pg WITH (FORCE)" \
    -c "CREATE DATABASE bad_pg OWNER app" \
    -c "DROP ROLE IF EXISTS bad_limited" -c "CREATE ROLE bad_limited LOGIN PASSWORD 'limited'" || exit 1
psql "$OWN_PG_URL" -X -q -v ON_ERROR_STOP=1 -c "$FAILBACK_TABLES" \
    -c "CREATE TABLE migration_schema.keyless (a INT8, b TEXT)" \
    -c "CREATE TABLE migration_schema.only_source (id INT8 PRIMARY KEY)" \
    -c "CREATE TABLE migration_schema.rekeyed (a INT8, b INT8, PRIMARY KEY (a, b))" || exit 1
psql "$(pg_db bad_pg)" -X -q -v ON_ERROR_STOP=1 -c "$FAILBACK_TABLES" \
    -c "CREATE TABLE migration_schema.keyless (a INT8 PRIMARY KEY, b TEXT)" \
    -c "CREATE TABLE migration_schema.rekeyed (a INT8, b INT8, PRIMARY KEY (b, a))" \
    -c "GRANT USAGE ON SCHEMA migration_schema TO bad_limited" \
    -c "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA migration_schema TO bad_limited" || exit 1
my_at "$OWN_MY_URL" "$FAILBACK_TABLES_MYSQL" || exit 1
for host in % localhost; do
    my_at "$MOLT_TEST_MYSQL_ADMIN_URL" "DROP USER IF EXISTS 'bad_limited'@'$host';
        CREATE USER 'bad_limited'@'$host' IDENTIFIED BY 'limited';
        GRANT SELECT, INSERT, UPDATE ON bad_my.* TO 'bad_limited'@'$host'" || exit 1
done

start_standin "$OWN_PG_URL" || exit 1
crdb=$CRDB
psql "$crdb" -X -q -c "SET CLUSTER SETTING kv.rangefeed.enabled = true" || exit 1
pg_port=$(sed -E 's|.*@[^:]+:([0-9]+)/.*|\1|' <<<"$MOLT_TEST_PG_URL")
my_port=$(sed -E 's|.*@[^:]+:([0-9]+)/.*|\1|' <<<"$MOLT_TEST_MYSQL_URL")
pg_target="postgres://app:app@localhost:$pg_port/bad_pg?sslmode=verify-full&sslrootcert=$TLS/ca.crt"

# Certificates: a good set, and the bad ones the checks must name.
certs="$E2E_TMP/certs"
make_webhook_certs "$certs" || exit 1
(
    cd "$certs" || exit 1
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out expired.crt -days -1 -extfile san.ext
    printf 'subjectAltName=DNS:other.example.com' > other.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out wronghost.crt -days 2 -extfile other.ext
    openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue-ca.key -out rogue-ca.crt -days 2 -subj "/CN=rogue CA"
    openssl x509 -req -in server.csr -CA rogue-ca.crt -CAkey rogue-ca.key -CAcreateserial -out roguesigned.crt -days 2 -extfile san.ext
    openssl x509 -req -in client.csr -CA rogue-ca.crt -CAkey rogue-ca.key -CAcreateserial -out rogueclient.crt -days 2
) >/dev/null 2>&1 || exit 1
port=$(free_port)
secure_json "$port" "$E2E_TMP/good.json" "$certs"
secure_json "$port" "$E2E_TMP/rogue-client.json" "$certs" "$certs/rogueclient.crt" "$certs/client.key"
printf '{"port": %s}\n' "$port" >"$E2E_TMP/insecure.json"
printf '{"host": "localhost", "prot": 30004}\n' >"$E2E_TMP/typo.json"
printf '{"host": "localhost",\n' >"$E2E_TMP/broken.json"

# A replicator that records how it was run: only --dryRun checks are allowed here.
spy="$E2E_TMP/replicator"
printf '#!/bin/sh\necho "$*" >> "%s"\nexec "%s" "$@"\n' "$E2E_TMP/replicator-runs" "$REPLICATOR" >"$spy"
chmod +x "$spy"
: >"$E2E_TMP/replicator-runs"

good_flags="--tlsCertificate $certs/server.crt --tlsPrivateKey $certs/server.key"
base=(--mode failback --schema-filter migration_schema --table-filter 'employees|payments|orders'
    --replicator-path "$spy" --metrics-listen-addr "")
# bad NAME WANT ARGS...: molt fetch ARGS exits 1 with WANT in its error; nothing started.
cases=0
bad() {
    local name=$1 want=$2
    shift 2
    cases=$((cases + 1))
    local out rc
    out=$("$MOLT" fetch "$@" 2>&1)
    rc=$?
    if [ "$rc" != 1 ] || [[ "$out" != *"$want"* ]] || [[ "$out" == *"app:app@"* ]] ||
        [[ "$out" == *"limited@"* ]] || [[ "$out" == *"wrong@"* ]] || [[ "$out" == *"PRIVATE KEY"* ]]; then
        echo "FAIL $name: exit $rc, output:"
        sed 's/^/     /' <<<"$out"
        echo "     (wanted exit 1 and: $want)"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    else
        echo "ok   $name"
    fi
}

echo "--- flags and files"
bad "no --mode" "--mode failback is required" --source "$crdb" --target "$pg_target" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags" --replicator-path "$spy"
bad "another MOLT mode" "--mode data-load: this molt does failback only" --mode data-load \
    --source "$crdb" --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "$good_flags" --replicator-path "$spy"
bad "no --source or --target" 'required flag(s) "source", "target" not set' "${base[@]}" \
    --changefeeds-path "$E2E_TMP/good.json"
bad "source without TLS" "--source: TLS mode is set as insecure (sslmode=disable)" "${base[@]}" \
    --source "${crdb%%\?*}?sslmode=disable" --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json"
bad "MySQL target without sslmode" "--target: TLS mode is set to an insecure default" "${base[@]}" \
    --source "$crdb" --target "mysql://app:app@tcp(localhost:$my_port)/bad_my" \
    --changefeeds-path "$E2E_TMP/good.json"
bad "neither --changefeeds-path nor --allow-tls-mode-disable" \
    "failback mode needs --changefeeds-path" "${base[@]}" --source "$crdb" --target "$pg_target"
bad "a bad port in a connection string" '--target: bad port "99999": must be between 1 and 65535' "${base[@]}" --source "$crdb" \
    --target "postgres://app:app@localhost:99999/bad_pg?sslmode=verify-full" \
    --changefeeds-path "$E2E_TMP/good.json"
bad "an unknown key in the override file" '--changefeeds-path: unknown key "prot"' "${base[@]}" \
    --source "$crdb" --target "$pg_target" --changefeeds-path "$E2E_TMP/typo.json"
bad "an override file that is not JSON" "--changefeeds-path: invalid JSON" "${base[@]}" \
    --source "$crdb" --target "$pg_target" --changefeeds-path "$E2E_TMP/broken.json"
bad "a flag the replicator does not know" "unknown flag: --frobnicate" "${base[@]}" \
    --source "$crdb" --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "$good_flags --frobnicate 3"
bad "an unterminated quote in --replicator-flags" "--replicator-flags: unterminated ' quote" \
    "${base[@]}" --source "$crdb" --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "$good_flags --stagingSchema 'x"
bad "no way to authenticate the changefeed" "would refuse every changefeed request (401)" \
    "${base[@]}" --source "${crdb%%\?*}?sslmode=disable" --target "$(pg_db bad_pg)" \
    --allow-tls-mode-disable --changefeeds-path "$E2E_TMP/insecure.json" --replicator-flags "--tlsSelfSigned"
bad "an Oracle target without Oracle's ODBC driver" \
    "--target: error connect: cannot connect to oracle://C%23%23MIGRATION_USER:xxxxx@127.0.0.1:1521/ORCLPDB1: no Oracle ODBC driver is registered with unixODBC" \
    "${base[@]}" --source "$crdb" --target "oracle://C%23%23MIGRATION_USER:wrong@127.0.0.1:1521/ORCLPDB1" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"

echo "--- certificates"
bad "an expired server certificate" "--tlsCertificate $certs/expired.crt expired on" "${base[@]}" --source "$crdb" --target "$pg_target" \
    --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "--tlsCertificate $certs/expired.crt --tlsPrivateKey $certs/server.key"
bad "a server certificate for another host" "not valid for host \"localhost\"" "${base[@]}" \
    --source "$crdb" --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "--tlsCertificate $certs/wronghost.crt --tlsPrivateKey $certs/server.key"
bad "a key that does not match the certificate" \
    "--tlsPrivateKey $certs/client.key does not match --tlsCertificate $certs/server.crt" "${base[@]}" --source "$crdb" \
    --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "--tlsCertificate $certs/server.crt --tlsPrivateKey $certs/client.key"
bad "a server certificate from another CA" \
    "--tlsCertificate $certs/roguesigned.crt is not signed by the ca_cert of --changefeeds-path" "${base[@]}" --source "$crdb" \
    --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "--tlsCertificate $certs/roguesigned.crt --tlsPrivateKey $certs/server.key"
bad "a client certificate from another CA" "sink_query_parameters client_cert is not signed by" "${base[@]}" --source "$crdb" \
    --target "$pg_target" --changefeeds-path "$E2E_TMP/rogue-client.json" --replicator-flags "$good_flags"

echo "--- databases and tables"
bad "filters that match nothing" "no table(s) to be imported, exiting molt fetch" \
    --mode failback --schema-filter migration_schema --table-filter 'nothing_here' \
    --replicator-path "$spy" --metrics-listen-addr "" --source "$crdb" --target "$pg_target" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "a table missing on the target" "migration_schema.only_source: missing on the target" \
    --mode failback --schema-filter migration_schema --table-filter only_source \
    --replicator-path "$spy" --metrics-listen-addr "" --source "$crdb" --target "$pg_target" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "a table without a primary key on the source" "no primary key on the source" --mode failback \
    --schema-filter migration_schema --table-filter keyless --replicator-path "$spy" \
    --metrics-listen-addr "" --source "$crdb" --target "$pg_target" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "primary keys that differ" "primary keys differ" --mode failback \
    --schema-filter migration_schema --table-filter rekeyed --replicator-path "$spy" \
    --metrics-listen-addr "" --source "$crdb" --target "$pg_target" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "a PostgreSQL target user without DELETE" \
    "cannot DELETE on migration_schema.employees: run GRANT DELETE ON \"migration_schema\".\"employees\" TO \"bad_limited\";" \
    "${base[@]}" --source "$crdb" \
    --target "postgres://bad_limited:limited@localhost:$pg_port/bad_pg?sslmode=verify-full&sslrootcert=$TLS/ca.crt" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "a MySQL target user without DELETE" "cannot DELETE on bad_my.employees: run GRANT DELETE ON" \
    "${base[@]}" --source "$crdb" \
    --target "mysql://bad_limited:limited@localhost:$my_port/bad_my?sslmode=verify-full&sslrootcert=$(sed 's|/|%2f|g' <<<"$TLS/ca.crt")" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "a wrong target password" "password authentication failed" "${base[@]}" --source "$crdb" \
    --target "postgres://app:wrong@localhost:$pg_port/bad_pg?sslmode=verify-full&sslrootcert=$TLS/ca.crt" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "an unreachable target" "error connect" "${base[@]}" --source "$crdb" \
    --target "postgres://app:app@localhost:$(free_port)/bad_pg?sslmode=verify-full&sslrootcert=$TLS/ca.crt" \
    --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "a source that is not CockroachDB" "--source must be a CockroachDB cluster" "${base[@]}" \
    --source "postgres://app:app@localhost:$pg_port/bad_src?sslmode=verify-full&sslrootcert=$TLS/ca.crt" \
    --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json" --replicator-flags "$good_flags"
bad "a target that is CockroachDB" "--target is a CockroachDB cluster" "${base[@]}" \
    --source "$crdb" --target "$crdb" --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "$good_flags"
psql "$crdb" -X -q -c "SET CLUSTER SETTING kv.rangefeed.enabled = false" || exit 1
bad "rangefeeds off" "SET CLUSTER SETTING kv.rangefeed.enabled = true" "${base[@]}" \
    --source "$crdb" --target "$pg_target" --changefeeds-path "$E2E_TMP/good.json" \
    --replicator-flags "$good_flags"

check "at least 20 bad inputs were tried" "$([ "$cases" -ge 20 ] && echo yes)" yes
check "no replicator was started (only --dryRun checks ran)" \
    "$(grep -vc -- '--dryRun' "$E2E_TMP/replicator-runs")" 0
check "the --dryRun check ran" "$([ -s "$E2E_TMP/replicator-runs" ] && echo yes)" yes
check "no changefeed was created" "$(psql "$crdb" -X -q -At -c 'SHOW CHANGEFEED JOBS' | wc -l)" 0

stop_standin
drop_own_databases bad_src bad_my
psql "$MOLT_TEST_PG_ADMIN_URL" -X -q -c "DROP DATABASE bad_pg WITH (FORCE)" -c "DROP ROLE bad_limited"
my_at "$MOLT_TEST_MYSQL_ADMIN_URL" "DROP USER 'bad_limited'@'%'; DROP USER 'bad_limited'@'localhost'"
e2e_finish
