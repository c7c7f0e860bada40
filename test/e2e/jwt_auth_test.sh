#!/usr/bin/env bash
# JWT authentication of `replicator start` over real HTTPS (replicator.md §5): the workflow the
# README gives (make-jwt, the INSERT it prints, SIGHUP), the accept/reject matrix with tokens
# signed by PyJWT (an independent implementation: ours must interoperate), make-jwt's token
# verified by PyJWT, revocation by SIGHUP and by --jwtRefresh, ?access_token= (never logged),
# JWT with client certificates, a MySQL target with its keys on --stagingConn, the consistent
# mode, and key reloads under load with no failed request.
# Usage: jwt_auth_test.sh REPLICATOR   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
. "$(dirname "$0")/lib.sh"
e2e_init
FAULT_PROXY=${FAULT_PROXY:-$(dirname "$REPLICATOR")/molt-fault-proxy}
if [ ! -x "$FAULT_PROXY" ]; then
    echo "FAIL: molt-fault-proxy not found at $FAULT_PROXY (build it, or set FAULT_PROXY)"
    exit 1
fi
# proxy_cmd COMMAND...: a fault proxy command that must be obeyed (or the test stops).
proxy_cmd() { fault_cmd "$FAULT_PROXY_CONTROL" "$@" || { echo "FAIL: the proxy answered '$FAULT_REPLY' to '$*'"; exit 1; }; }
SIGN="/usr/bin/python3 $(dirname "$0")/jwt_sign.py"
if ! /usr/bin/python3 -c 'import jwt' 2>/dev/null; then
    echo "FAIL: PyJWT is missing (apt-get install python3-jwt; test/support/deps.sh installs it)" >&2
    exit 1
fi

own_databases jwtpg jwtmy || exit 1
e2e_on_exit "drop_own_databases jwtpg jwtmy"
PG=$OWN_PG_URL
MY=$OWN_MY_URL
pgo() { psql "$PG" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
pgo "CREATE TABLE t (id bigint PRIMARY KEY, v text)"
my_at "$MY" "CREATE TABLE t (id bigint PRIMARY KEY, v text)"

keys="$E2E_TMP/keys"
mkdir -p "$keys"
openssl ecparam -genkey -name prime256v1 -noout -out "$keys/ec.pem" 2>/dev/null
openssl ec -in "$keys/ec.pem" -pubout -out "$keys/ec.pub" 2>/dev/null
openssl genrsa -out "$keys/rsa.pem" 2048 2>/dev/null
openssl rsa -in "$keys/rsa.pem" -pubout -out "$keys/rsa.pub" 2>/dev/null
openssl ecparam -genkey -name prime256v1 -noout -out "$keys/other.pem" 2>/dev/null

row() { printf '{"payload":[{"after": {"id": %s, "v": "%s"}, "key": [%s], "topic": "t", "updated": "%s.0000000000"}],"length":1}' "$1" "$2" "$1" "$3"; }
NS=https://github.com/cockroachdb/replicator
now=$(date +%s)
# claims [SCHEMAS_JSON] [EXTRA] [JTI] [NAMESPACE]
claims() { printf '{"jti":"%s","%s":{"schemas":%s}%s}' "${3:-pyjwt-1}" "${4:-$NS}" "${1:-[[\"jwtpg\",\"public\"]]}" "${2:-}"; }
# send NAME TOKEN [PATH] [CURL ARGS...]: posts a row as a changefeed would, the token in the
# Authorization header (none when empty); sets STATUS and RESPONSE.
next_id=100
send() {
    local token=$1 path=${2:-/jwtpg/public}
    shift
    [ $# -gt 0 ] && shift
    next_id=$((next_id + 1))
    local auth=()
    [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
    post "https://127.0.0.1:$REPLICATOR_PORT$path" "$(row $next_id jwt $next_id)" --insecure "${auth[@]}" "$@"
}
# sighup_and_wait KEYS: SIGHUP, then waits for the log line saying KEYS keys are loaded.
sighup_and_wait() {
    kill -HUP "$REPLICATOR_PID"
    for _ in $(seq 1 100); do
        [ "$(grep -c 'SIGHUP received' "$E2E_TMP/$LOG.log")" -gt "${HUPS:-0}" ] && break
        sleep 0.05
    done
    HUPS=$(grep -c 'SIGHUP received' "$E2E_TMP/$LOG.log")
    # The reload logs only when the counts change; give it a moment either way.
    for _ in $(seq 1 100); do
        if grep 'JWT public keys loaded' "$E2E_TMP/$LOG.log" | tail -1 | grep -q "\"keys\":$1,"; then
            return 0
        fi
        sleep 0.05
    done
    echo "keys after SIGHUP: $(grep 'JWT public keys loaded' "$E2E_TMP/$LOG.log" | tail -1)"
    return 1
}

echo "--- JWT is the default: without a staging schema for the keys, startup stops"
"$REPLICATOR" start --immediate --tlsSelfSigned --bindAddr 127.0.0.1:0 --targetConn "$PG" \
    >"$E2E_TMP/noschema.log" 2>&1
check "exit 1 when the staging schema holding the keys is missing" "$?" 1
check_contains "it names the flag that creates it" "$(cat "$E2E_TMP/noschema.log")" "--stagingCreateSchema"
check_contains "it says why (the keys live there)" "$(cat "$E2E_TMP/noschema.log")" "jwt_public_keys"
"$REPLICATOR" start --immediate --tlsSelfSigned --targetConn "$MY" --dryRun 2>"$E2E_TMP/mynokeys.err"
check "a MySQL target without --stagingConn: exit 1 at the flags" "$?" 1
check_contains "it says where JWT keys can live" "$(cat "$E2E_TMP/mynokeys.err")" "pass --stagingConn"

echo "--- the README's workflow: no keys, make-jwt, the INSERT it prints, SIGHUP"
LOG=imm HUPS=0
start_replicator imm --immediate --tlsSelfSigned --bindAddr 127.0.0.1:0 --metricsAddr 127.0.0.1:0 \
    --targetConn "$PG" --stagingCreateSchema --jwtRefresh 1h || exit 1
check_contains "startup warns that no key is installed" "$(grep 'no active JWT public keys' "$E2E_TMP/imm.log")" "replicator make-jwt"
check "the JWT tables exist" "$(pgo "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_replicator' AND table_name IN ('jwt_public_keys', 'jwt_revoked_ids')")" 2
send ""
check "401 without a token" "$STATUS" 401
check_contains "401 says what is missing" "$RESPONSE" "missing or invalid access token"

"$REPLICATOR" make-jwt -k "$keys/ec.pem" -a jwtpg.public -a jwtmy -o "$keys/made.jwt" 2>"$keys/made.txt"
check "make-jwt exits 0" "$?" 0
check "the token file is mode 0600" "$(stat -c %a "$keys/made.jwt")" 600
MADE=$(cat "$keys/made.jwt")
check "PyJWT verifies make-jwt's token with the public key (ES256)" \
    "$($SIGN --verify "$MADE" "$keys/ec.pub" ES256 | grep -o '"schemas": \[\[[^]]*\], \[[^]]*\]\]')" \
    '"schemas": [["jwtpg", "public"], ["jwtmy"]]'
send "$MADE"
check "401 before the key is installed" "$STATUS" 401
sed -n '/^INSERT INTO _replicator.jwt_public_keys/,/^.);$/p' "$keys/made.txt" > "$keys/insert.sql"
psql "$PG" -X -q -v ON_ERROR_STOP=1 -f "$keys/insert.sql"
check "the printed INSERT runs as printed" "$?" 0
send "$MADE"
check "still 401 until the keys are read again (--jwtRefresh 1h)" "$STATUS" 401
sighup_and_wait 1
check "SIGHUP reads the key" "$?" 0
send "$MADE"
check "200 with make-jwt's token after SIGHUP" "$STATUS" 200
check "the row is written" "$(pgo "SELECT v FROM t WHERE id = $next_id")" jwt
metrics=$(grep 'metrics server bound to' "$E2E_TMP/imm.log" | sed 's/.*bound to [^"]*:\([0-9]*\)".*/\1/')
check_contains "jwt_last_refresh_time is exposed" "$(curl -s "http://127.0.0.1:$metrics/_/varz" | grep '^jwt_last_refresh_time ')" "jwt_last_refresh_time 1"

echo "--- the accept/reject matrix, tokens signed by PyJWT"
psql "$PG" -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO _replicator.jwt_public_keys (public_key) VALUES ('$(cat "$keys/rsa.pub")')"
sighup_and_wait 2
send "$($SIGN ES256 "$keys/ec.pem" "$(claims)")"
check "ES256 by PyJWT: 200" "$STATUS" 200
send "$($SIGN RS256 "$keys/rsa.pem" "$(claims)")"
check "RS256 by PyJWT: 200" "$STATUS" 200
send "$($SIGN RS512 "$keys/rsa.pem" "$(claims)")"
check "RS512 by PyJWT: 200" "$STATUS" 200
send "$($SIGN RS384 "$keys/rsa.pem" "$(claims)")"
check "RS384 by PyJWT: 200" "$STATUS" 200
# P-384 and P-521: make-jwt's tokens verified by PyJWT, PyJWT's tokens by the replicator.
for curve in secp384r1:ES384 secp521r1:ES512; do
    name=${curve%%:*} alg=${curve#*:}
    openssl ecparam -genkey -name "$name" -noout -out "$keys/$name.pem" 2>/dev/null
    openssl ec -in "$keys/$name.pem" -pubout -out "$keys/$name.pub" 2>/dev/null
    made=$("$REPLICATOR" make-jwt -k "$keys/$name.pem" -a jwtpg.public 2>/dev/null)
    check "PyJWT verifies make-jwt's token with the public key ($alg)" \
        "$($SIGN --verify "$made" "$keys/$name.pub" "$alg" | grep -o '"schemas": \[\[[^]]*\]\]')" \
        '"schemas": [["jwtpg", "public"]]'
    pgo "INSERT INTO _replicator.jwt_public_keys (public_key) VALUES ('$(cat "$keys/$name.pub")')"
done
sighup_and_wait 4
for curve in secp384r1:ES384 secp521r1:ES512; do
    name=${curve%%:*} alg=${curve#*:}
    send "$($SIGN "$alg" "$keys/$name.pem" "$(claims)")"
    check "$alg by PyJWT: 200" "$STATUS" 200
done
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '[["jwtpg","*"]]')")"
check "a wildcard part: 200" "$STATUS" 200
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '' '' pyjwt-legacy https://github.com/cockroachdb/cdc-sink)")"
check "the legacy cdc-sink claim: 200" "$STATUS" 200
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '' ",\"exp\":$((now + 600)),\"nbf\":$((now - 600))")")"
check "exp ahead and nbf behind: 200" "$STATUS" 200
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '' ",\"exp\":$((now - 60))")")"
check "expired: 401" "$STATUS" 401
check_contains "expired: says so" "$RESPONSE" "expired"
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '' ",\"nbf\":$((now + 600))")")"
check "not yet valid: 401" "$STATUS" 401
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '[["jwtpg","other"]]')")"
check "a good token for another schema: 403" "$STATUS" 403
check_contains "403 names the schema" "$RESPONSE" "does not allow writing to jwtpg.public"
send "$($SIGN ES256 "$keys/other.pem" "$(claims)")"
check "signed by an unknown key: 401" "$STATUS" 401
send "$($SIGN HS256 "hmac-with-file:$keys/ec.pub" "$(claims)")"
check "HS256 with the public key's PEM as the secret (algorithm confusion): 401" "$STATUS" 401
check_contains "HMAC: says the algorithm is refused" "$RESPONSE" 'algorithm "HS256" is refused'
send "$($SIGN HS512 "secret:s3cret" "$(claims)")"
check "HS512: 401" "$STATUS" 401
send "$($SIGN none - "$(claims)")"
check "alg none: 401" "$STATUS" 401
send "$($SIGN ES256 "$keys/ec.pem" '{"https://github.com/cockroachdb/replicator":{"schemas":[["jwtpg","public"]]}}')"
check "no jti: 401" "$STATUS" 401
send "not.a.jwt"
check "malformed: 401" "$STATUS" 401
post "https://127.0.0.1:$REPLICATOR_PORT/jwtpg/public" "$(row 90 basic 90)" --insecure -H 'Authorization: Basic dXNlcjpwdw=='
check "another scheme (Basic): 401" "$STATUS" 401
query_token=$($SIGN ES256 "$keys/ec.pem" "$(claims '' '' pyjwt-query)")
send "" "/jwtpg/public?access_token=$query_token"
check "?access_token= instead of the header: 200" "$STATUS" 200
send "" "/jwtpg/other?access_token=$query_token"
check "?access_token= for another schema: 403" "$STATUS" 403
check "the token in the URL is not logged" "$(grep -c "$query_token" "$E2E_TMP/imm.log")" 0
check "a token is never logged" "$(grep -c "$MADE" "$E2E_TMP/imm.log")" 0

echo "--- revocation: SIGHUP, then --jwtRefresh without a signal"
revoked=$($SIGN ES256 "$keys/ec.pem" "$(claims '' '' pyjwt-revoked)")
send "$revoked"
check "200 before revocation" "$STATUS" 200
pgo "INSERT INTO _replicator.jwt_revoked_ids (id) VALUES ('pyjwt-revoked')"
kill -HUP "$REPLICATOR_PID"
for _ in $(seq 1 100); do send "$revoked"; [ "$STATUS" = 401 ] && break; sleep 0.05; done
check "a revoked jti: 401 after SIGHUP" "$STATUS" 401
check_contains "401 says it is revoked" "$RESPONSE" "revoked"

echo "--- a key made inactive is no longer used"
rs=$($SIGN RS256 "$keys/rsa.pem" "$(claims '' '' pyjwt-rs-inactive)")
send "$rs"
check "RS256 while its key is active: 200" "$STATUS" 200
pgo "UPDATE _replicator.jwt_public_keys SET active = false WHERE public_key = '$(cat "$keys/rsa.pub")'"
sighup_and_wait 3
check "SIGHUP reads the change" "$?" 0
send "$rs"
check "RS256 once its key is inactive: 401" "$STATUS" 401
check_contains "401 says no key can verify it" "$RESPONSE" "no active public key can verify RS256"

echo "--- reloads under load: no request fails"
good=$($SIGN ES256 "$keys/ec.pem" "$(claims '' '' pyjwt-load)")
(
    for i in $(seq 1 150); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --insecure -X POST -H "Authorization: Bearer $good" \
            --data-binary "$(row $((5000 + i)) load 5000)" "https://127.0.0.1:$REPLICATOR_PORT/jwtpg/public")
        echo "$code"
    done > "$E2E_TMP/load.codes"
) &
loader=$!
# Each reload reads a changed key set (the RSA key in and out), as a key rotation does.
loads_before=$(grep -c 'JWT public keys loaded' "$E2E_TMP/imm.log")
for _ in $(seq 1 20); do
    pgo "UPDATE _replicator.jwt_public_keys SET active = NOT active WHERE public_key = '$(cat "$keys/rsa.pub")'"
    kill -HUP "$REPLICATOR_PID"
    sleep 0.1
done
wait "$loader"
check "150 requests during 20 reloads of a changing key set: all 200" "$(sort "$E2E_TMP/load.codes" | uniq -c | tr -s ' ')" " 150 200"
check "the key set did change under load" "$(($(grep -c 'JWT public keys loaded' "$E2E_TMP/imm.log") >= loads_before + 5))" 1
stop_replicator
check "exit 0 after SIGTERM" "$REPLICATOR_EXIT" 0

echo "--- --jwtRefresh reads the keys without a signal; a staging outage keeps the keys read before"
# The keys come through a fault proxy (--stagingConn), so that their database can fail alone.
start_fault_proxy jwt-staging-proxy "$(url_hostport "$PG")" || exit 1
LOG=refresh HUPS=0
start_replicator refresh --immediate --tlsSelfSigned --bindAddr 127.0.0.1:0 --targetConn "$PG" \
    --stagingConn "$(url_with_port "$PG" "$FAULT_PROXY_PORT")" --jwtRefresh 1s || exit 1
later=$($SIGN ES256 "$keys/ec.pem" "$(claims '' '' pyjwt-later)")
send "$later"
check "200 before revocation" "$STATUS" 200
pgo "INSERT INTO _replicator.jwt_revoked_ids (id) VALUES ('pyjwt-later')"
for _ in $(seq 1 60); do send "$later"; [ "$STATUS" = 401 ] && break; sleep 0.1; done
check "401 within --jwtRefresh, no SIGHUP" "$STATUS" 401
check "no SIGHUP was sent" "$(grep -c 'SIGHUP received' "$E2E_TMP/refresh.log")" 0
# A row that is no key: named once, not at every refresh.
pgo "INSERT INTO _replicator.jwt_public_keys (public_key) VALUES ('not a key')"
for _ in $(seq 1 60); do grep -q 'is not a PEM public key' "$E2E_TMP/refresh.log" && break; sleep 0.1; done
sleep 3.5 # three more refreshes
check "a bad key row is warned of once, not at every refresh" \
    "$(grep -c 'is not a PEM public key' "$E2E_TMP/refresh.log")" 1
pgo "DELETE FROM _replicator.jwt_public_keys WHERE public_key = 'not a key'"
proxy_cmd reset refuse
for _ in $(seq 1 60); do grep -q 'cannot read the JWT public keys' "$E2E_TMP/refresh.log" && break; sleep 0.1; done
check_contains "staging unreachable: the refresh fails and says the old keys stay" \
    "$(grep 'cannot read the JWT public keys' "$E2E_TMP/refresh.log" | head -1)" "the keys read before stay in use"
send "$MADE"
check "a good token while the keys cannot be read: 200" "$STATUS" 200
send "$later"
check "a token revoked before the outage: still 401" "$STATUS" 401
proxy_cmd pass
mark_loaded=$(grep -c 'JWT public keys loaded' "$E2E_TMP/refresh.log")
pgo "DELETE FROM _replicator.jwt_revoked_ids WHERE id = 'pyjwt-later'"
for _ in $(seq 1 60); do send "$later"; [ "$STATUS" = 200 ] && break; sleep 0.1; done
check "staging back: the next refresh reads the keys (an unrevoked token: 200)" "$STATUS" 200
check "and logs them" "$(($(grep -c 'JWT public keys loaded' "$E2E_TMP/refresh.log") > mark_loaded))" 1
stop_replicator

echo "--- staging unreachable at startup: exit 1, naming it"
proxy_cmd reset refuse
timeout 60 "$REPLICATOR" start --immediate --tlsSelfSigned --bindAddr 127.0.0.1:0 --targetConn "$PG" \
    --stagingConn "$(url_with_port "$PG" "$FAULT_PROXY_PORT")" >"$E2E_TMP/nostaging.log" 2>&1
check "exit 1 when the database holding the keys cannot be reached" "$?" 1
check_contains "it names the staging database" "$(cat "$E2E_TMP/nostaging.log")" "cannot connect to the staging database"
proxy_cmd pass

echo "--- keys that cannot be read at startup: the log says so (not that there are none)"
# A key table of the wrong shape (no 'active' column): the schema opens, reading the keys fails.
pgo "CREATE SCHEMA badkeys; CREATE TABLE badkeys.jwt_public_keys (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), public_key TEXT NOT NULL)"
LOG=unread HUPS=0
start_replicator unread --immediate --tlsSelfSigned --bindAddr 127.0.0.1:0 --targetConn "$PG" \
    --stagingSchema badkeys --jwtRefresh 1s || exit 1
# (logged after "Server listening", where start_replicator returns)
for _ in $(seq 1 100); do grep -q 'could not be read yet' "$E2E_TMP/unread.log" && break; sleep 0.05; done
check_contains "the warning says writes are refused until the keys are read" \
    "$(grep 'could not be read yet' "$E2E_TMP/unread.log")" "every write is refused (401) until they are"
check "it does not claim the table is empty" "$(grep -c 'no active JWT public keys' "$E2E_TMP/unread.log")" 0
send "$MADE"
check "a good token while no key could be read: 401" "$STATUS" 401
sleep 2.5 # two more refreshes, failing the same way
check_contains "the refresh's warning says none has been read" \
    "$(grep 'cannot read the JWT public keys' "$E2E_TMP/unread.log")" "none has been read yet"
check "and is logged once while the error stays the same" \
    "$(grep -c 'cannot read the JWT public keys' "$E2E_TMP/unread.log")" 1
pgo "ALTER TABLE badkeys.jwt_public_keys ADD COLUMN active BOOL NOT NULL DEFAULT true"
sed 's/_replicator\.jwt_public_keys/badkeys.jwt_public_keys/' "$keys/insert.sql" | psql "$PG" -X -q -v ON_ERROR_STOP=1 >/dev/null
for _ in $(seq 1 60); do send "$MADE"; [ "$STATUS" = 200 ] && break; sleep 0.1; done
check "once the table is fixed, the next refresh reads the keys: 200" "$STATUS" 200
stop_replicator

echo "--- the consistent mode keeps its keys in its staging schema"
start_replicator cons --tlsSelfSigned --bindAddr 127.0.0.1:0 --targetConn "$PG" || exit 1
send "$MADE"
check "consistent mode: 200 with make-jwt's token" "$STATUS" 200
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '[["jwtpg","other"]]')")"
check "consistent mode: 403 for another schema" "$STATUS" 403
stop_replicator

echo "--- a MySQL target, its keys on --stagingConn (one-part schemas)"
start_replicator my --immediate --tlsSelfSigned --bindAddr 127.0.0.1:0 --targetConn "$MY" \
    --stagingConn "$PG" || exit 1
send "$MADE" /jwtmy
check "MySQL: 200 with a token allowing jwtmy" "$STATUS" 200
check "MySQL: the row is written" "$(my_at "$MY" "SELECT v FROM t WHERE id = $next_id")" jwt
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '[["jwtpg","public"]]')")" /jwtmy
check "MySQL: 403 for a token allowing a two-part schema only" "$STATUS" 403
stop_replicator

echo "--- client certificates and JWT together"
certs="$E2E_TMP/certs"
mkdir -p "$certs"
make_mtls_certs "$certs"
start_replicator mtls --immediate --tlsCertificate "$certs/server.crt" --tlsPrivateKey "$certs/server.key" \
    --tlsClientCA "$certs/ca.crt" --bindAddr 127.0.0.1:0 --targetConn "$PG" || exit 1
cert=(--cert "$certs/client.crt" --key "$certs/client.key")
send "" /jwtpg/public "${cert[@]}"
check "a client certificate and no token: 200" "$STATUS" 200
send "$MADE" /jwtpg/public "${cert[@]}"
check "a client certificate and a good token: 200" "$STATUS" 200
send "$($SIGN ES256 "$keys/ec.pem" "$(claims '[["jwtpg","other"]]')")" /jwtpg/public "${cert[@]}"
check "a client certificate and a token for another schema: 403" "$STATUS" 403
send "$($SIGN ES256 "$keys/other.pem" "$(claims)")" /jwtpg/public "${cert[@]}"
check "a client certificate and a bad token: 401" "$STATUS" 401
send "$MADE"
check "a good token without a client certificate: 401" "$STATUS" 401
stop_replicator

echo "--- --disableAuthentication turns both off"
start_replicator open --immediate --tlsSelfSigned --disableAuthentication --bindAddr 127.0.0.1:0 \
    --targetConn "$PG" || exit 1
send "$($SIGN ES256 "$keys/other.pem" "$(claims)")"
check "any token (or none) is accepted" "$STATUS" 200
stop_replicator
# With --tlsClientCA too: no client certificate is asked for, and a stranger's one is no reason
# to fail the handshake.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$certs/stranger.key" -out "$certs/stranger.crt" \
    -days 2 -subj "/CN=stranger" 2>/dev/null
start_replicator open-ca --immediate --tlsCertificate "$certs/server.crt" --tlsPrivateKey "$certs/server.key" \
    --tlsClientCA "$certs/ca.crt" --disableAuthentication --bindAddr 127.0.0.1:0 --targetConn "$PG" || exit 1
check_contains "it says --tlsClientCA is ignored" "$(grep 'tlsClientCA is ignored' "$E2E_TMP/open-ca.log")" "--disableAuthentication"
send "" /jwtpg/public
check "no certificate, no token: 200" "$STATUS" 200
"$REPLICATOR" start --immediate --tlsSelfSigned --targetConn "$PG" --disableAuthentication \
    --tlsClientCA /nonexistent/ca.crt --dryRun 2>"$E2E_TMP/ignored-ca.err"
check "an ignored --tlsClientCA's file is not read: --dryRun exits 0" "$?" 0
send "" /jwtpg/public --cert "$certs/stranger.crt" --key "$certs/stranger.key"
check "a certificate of another CA: 200" "$STATUS" 200
stop_replicator

[ "$E2E_FAILURES" -eq 0 ] && echo "PASS" || { echo "$E2E_FAILURES FAILED"; exit 1; }
