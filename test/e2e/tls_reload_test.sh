#!/usr/bin/env bash
# Certificate rotation without downtime: SIGHUP (or a change of the files) makes
# `replicator start` read --tlsCertificate, --tlsPrivateKey and --tlsClientCA again. New
# connections get the new certificate, a connection opened before keeps working, bad new material
# (garbage, a key that does not match) is refused with a log line while the old certificate stays,
# a certificate near its expiry is reported (log and tls_certificate_expiry_days), and requests
# sent during reloads all succeed. SIGHUP alone is proven with a change the file poll cannot see
# (same size, inode and modification time).
# Usage: tls_reload_test.sh REPLICATOR   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
. "$(dirname "$0")/lib.sh"
e2e_init

own_databases tlspg tlsmy || exit 1
e2e_on_exit "drop_own_databases tlspg tlsmy"
PG=$OWN_PG_URL
psql "$PG" -X -q -c "CREATE TABLE t (id bigint PRIMARY KEY, v text)" || exit 1

c="$E2E_TMP/certs"
live="$E2E_TMP/live"
mkdir -p "$c" "$live"
(
    cd "$c" || exit 1
    for ca in ca1 ca2; do
        openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key -out $ca.crt -days 2 -subj "/CN=$ca" 2>/dev/null
    done
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
    # server A and B (2 days), server C (10 days: near its expiry), clients of ca1 and ca2
    for s in A:2 B:2 C:10; do
        n=${s%%:*} d=${s#*:}
        openssl req -newkey rsa:2048 -nodes -keyout server$n.key -out server$n.csr -subj "/CN=server$n" 2>/dev/null
        openssl x509 -req -in server$n.csr -CA ca1.crt -CAkey ca1.key -CAcreateserial -out server$n.crt -days "$d" -extfile san.ext 2>/dev/null
    done
    for ca in ca1 ca2; do
        openssl req -newkey rsa:2048 -nodes -keyout client-$ca.key -out client-$ca.csr -subj "/CN=client-$ca" 2>/dev/null
        openssl x509 -req -in client-$ca.csr -CA $ca.crt -CAkey $ca.key -CAcreateserial -out client-$ca.crt -days 2 2>/dev/null
    done
)
# put_live SOURCE NAME: SOURCE becomes the live file NAME, replaced atomically (a rename over it,
# as certificate tools do).
put_live() { cp "$1" "$live/$2.new" && mv "$live/$2.new" "$live/$2"; }
# install NAME: serverNAME's certificate and key become the live files, each replaced atomically.
install() {
    put_live "$c/server$1.key" server.key
    put_live "$c/server$1.crt" server.crt
}
install A
cp "$c/ca1.crt" "$live/ca.crt"

start_replicator tls --immediate --tlsCertificate "$live/server.crt" --tlsPrivateKey "$live/server.key" \
    --tlsClientCA "$live/ca.crt" --bindAddr 127.0.0.1:0 --metricsAddr 127.0.0.1:0 --targetConn "$PG" || exit 1
metrics=$(grep 'metrics server bound to' "$E2E_TMP/tls.log" | sed 's/.*bound to [^"]*:\([0-9]*\)".*/\1/')
client=(--cert "$c/client-ca1.crt" --key "$c/client-ca1.key")
# served: the subject of the certificate a new connection gets.
served() {
    echo | openssl s_client -connect "127.0.0.1:$REPLICATOR_PORT" -cert "$c/client-ca1.crt" \
        -key "$c/client-ca1.key" 2>/dev/null | openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}
row() { printf '{"payload":[{"after": {"id": %s, "v": "%s"}, "key": [%s], "topic": "t", "updated": "%s.0000000000"}],"length":1}' "$1" "$2" "$1" "$1"; }
send() { post "https://127.0.0.1:$REPLICATOR_PORT/tlspg/public" "$(row "$1" "$2")" --cacert "$c/ca1.crt" "${client[@]}"; }
# count_in FILE TEXT: lines of FILE holding TEXT.
count_in() { grep -c "$2" "$1" 2>/dev/null || true; }
# A reload may come from the signal, from the file poll, or both (the poll can see a change
# before the signal arrives): wait for one more log line than before the change, not a number.
# since_mark TEXT: the log lines holding TEXT written after the last mark.
since_mark() { grep "$1" "$E2E_TMP/tls.log" | tail -n +$((MARK + 1)); }
# mark TEXT: remembers how many log lines hold TEXT (MARK). wait_more TEXT: waits (10 s at most)
# until more do.
mark() { MARK=$(count_in "$E2E_TMP/tls.log" "$1"); }
wait_more() {
    for _ in $(seq 1 200); do
        [ "$(count_in "$E2E_TMP/tls.log" "$1")" -gt "$MARK" ] && return 0
        sleep 0.05
    done
    return 1
}

echo "--- the certificate it started with"
check "a new connection gets server A" "$(served)" serverA
send 1 a
check "200 over mTLS" "$STATUS" 200
days=$(curl -s "http://127.0.0.1:$metrics/_/varz" | awk '/^tls_certificate_expiry_days /{print int($2)}')
check "tls_certificate_expiry_days of a 2-day certificate is 1" "$days" 1

echo "--- a connection opened before the reload keeps working"
mkfifo "$E2E_TMP/keep.in"
openssl s_client -quiet -connect "127.0.0.1:$REPLICATOR_PORT" -CAfile "$c/ca1.crt" "${client[@]}" \
    <"$E2E_TMP/keep.in" >"$E2E_TMP/keep.out" 2>/dev/null &
keeper=$!
E2E_PIDS+=("$keeper")
exec 3>"$E2E_TMP/keep.in"
raw() {
    local body
    body=$(row "$1" "$2")
    printf 'POST /tlspg/public HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' "${#body}" "$body" >&3
}
raw 2 kept
for _ in $(seq 1 100); do [ "$(count_in "$E2E_TMP/keep.out" 'HTTP/1.1 200')" -ge 1 ] && break; sleep 0.05; done
check "the kept connection: first request 200" "$(count_in "$E2E_TMP/keep.out" 'HTTP/1.1 200')" 1

mark 'TLS certificate reloaded'
install B
kill -HUP "$REPLICATOR_PID"
wait_more 'TLS certificate reloaded'
check "SIGHUP reloads the certificate" "$?" 0
check "a new connection gets server B" "$(served)" serverB
raw 3 kept
for _ in $(seq 1 100); do [ "$(count_in "$E2E_TMP/keep.out" 'HTTP/1.1 200')" -ge 2 ] && break; sleep 0.05; done
check "the connection opened before the reload: second request 200" "$(count_in "$E2E_TMP/keep.out" 'HTTP/1.1 200')" 2
check "both rows of the kept connection are written" "$(psql "$PG" -X -At -c 'SELECT count(*) FROM t WHERE id IN (2, 3)')" 2
exec 3>&-
kill "$keeper" 2>/dev/null

echo "--- SIGHUP alone reloads: a change the file poll cannot see"
# Server D: server B's key, another name. Written in place while the replicator is stopped
# (SIGSTOP), with the same size, inode and modification time as the file it replaces, so only
# the signal can make the replicator read it.
openssl req -new -key "$c/serverB.key" -out "$c/serverD.csr" -subj "/CN=serverD" 2>/dev/null
openssl x509 -req -in "$c/serverD.csr" -CA "$c/ca1.crt" -CAkey "$c/ca1.key" -CAcreateserial \
    -out "$c/serverD.crt" -days 2 -extfile "$c/san.ext" 2>/dev/null
check "server D's certificate has server B's size (so the poll sees no change)" \
    "$(stat -c %s "$c/serverD.crt")" "$(stat -c %s "$live/server.crt")"
stamp_before=$(stat -c '%s %i %y' "$live/server.crt")
touch -r "$live/server.crt" "$E2E_TMP/stamp"
kill -STOP "$REPLICATOR_PID"
for _ in $(seq 1 100); do [ "$(cut -d' ' -f3 "/proc/$REPLICATOR_PID/stat")" = T ] && break; sleep 0.02; done
check "the replicator is stopped" "$(cut -d' ' -f3 "/proc/$REPLICATOR_PID/stat")" T
cat "$c/serverD.crt" > "$live/server.crt"
touch -r "$E2E_TMP/stamp" "$live/server.crt"
kill -CONT "$REPLICATOR_PID"
check "size, inode and modification time are unchanged" "$(stat -c '%s %i %y' "$live/server.crt")" "$stamp_before"
sleep 3 # more than the poll's 2 s
check "without a signal, new connections still get server B" "$(served)" serverB
mark 'TLS certificate reloaded'
kill -HUP "$REPLICATOR_PID"
wait_more 'TLS certificate reloaded'
check "SIGHUP reloads" "$?" 0
check_contains "the reload says the signal caused it" "$(since_mark 'TLS certificate reloaded' | tail -1)" '"reason":"SIGHUP"'
check "new connections get server D" "$(served)" serverD
mark 'TLS certificate reloaded'
put_live "$c/serverB.crt" server.crt # the key is B's already
wait_more 'TLS certificate reloaded'
check "server B back (noticed by the poll)" "$(served)" serverB

echo "--- bad new material is refused; the certificate in use stays"
mark 'new TLS certificate refused'
printf 'not a certificate\n' > "$E2E_TMP/garbage.crt"
put_live "$E2E_TMP/garbage.crt" server.crt
wait_more 'new TLS certificate refused'
check "garbage is refused (noticed without a signal)" "$?" 0
check_contains "the refusal names the file" "$(grep 'new TLS certificate refused' "$E2E_TMP/tls.log" | head -1)" "holds no PEM certificate"
check "new connections still get server B" "$(served)" serverB
send 4 after-garbage
check "200 after a refused reload" "$STATUS" 200
mark 'new TLS certificate refused'
# server A's certificate with server B's key
put_live "$c/serverA.crt" server.crt
kill -HUP "$REPLICATOR_PID"
wait_more 'new TLS certificate refused'
check "a key that does not match is refused" "$?" 0
check_contains "the refusal says why" "$(grep 'new TLS certificate refused' "$E2E_TMP/tls.log" | tail -1)" "does not match"
check "new connections still get server B" "$(served)" serverB
# (at least: the poll and the signal may both see a change, and the poll may catch a certificate
# and key pair half replaced)
check "refusals are counted" \
    "$(curl -s "http://127.0.0.1:$metrics/_/varz" | awk '/^tls_reloads_total\{outcome="refused"\} /{print ($2 >= 2) ? "at least 2" : $2}')" "at least 2"

# An expired certificate (made with Python's cryptography: openssl 3.0 cannot back-date one)
# for server B's key: a stale copy put back must not replace a good certificate.
/usr/bin/python3 - "$c" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
d = sys.argv[1]
ca_key = serialization.load_pem_private_key(open(f"{d}/ca1.key", "rb").read(), None)
ca = x509.load_pem_x509_certificate(open(f"{d}/ca1.crt", "rb").read())
key = serialization.load_pem_private_key(open(f"{d}/serverB.key", "rb").read(), None)
now = datetime.datetime.utcnow()
cert = (x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "serverExpired")]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256()))
open(f"{d}/serverExpired.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
# RFC 5280's "no expiry" (9999-12-31), and one valid from 6 s from now, for server B's key too.
for name, start, end in (("serverForever", now - datetime.timedelta(days=1), datetime.datetime(9999, 12, 31, 23, 59, 59)),
                         ("serverSoon", now + datetime.timedelta(seconds=6), now + datetime.timedelta(days=2))):
    c = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(ca.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .sign(ca_key, hashes.SHA256()))
    open(f"{d}/{name}.crt", "wb").write(c.public_bytes(serialization.Encoding.PEM))
PY
# (the live key is server B's already)
mark 'new TLS certificate refused'
put_live "$c/serverExpired.crt" server.crt
kill -HUP "$REPLICATOR_PID"
wait_more 'new TLS certificate refused'
check "an expired certificate is refused" "$?" 0
check_contains "the refusal says it has expired" "$(since_mark 'new TLS certificate refused')" "has expired"
check "new connections still get server B" "$(served)" serverB

echo "--- a certificate valid until 9999; one not valid yet is taken once it is"
mark 'TLS certificate reloaded'
put_live "$c/serverForever.crt" server.crt
wait_more 'TLS certificate reloaded'
check "a certificate valid until 9999-12-31 is taken" "$?" 0
check "new connections get it" "$(served)" serverForever
days=$(curl -s "http://127.0.0.1:$metrics/_/varz" | awk '/^tls_certificate_expiry_days /{print ($2 > 36500) ? "over a century" : $2}')
check "tls_certificate_expiry_days: over a century (clamped to 2262), not negative" "$days" "over a century"
mark 'TLS certificate reloaded'
put_live "$c/serverSoon.crt" server.crt
for _ in $(seq 1 100); do grep -q 'is not valid yet' "$E2E_TMP/tls.log" && break; sleep 0.05; done
check_contains "a certificate not valid yet is refused" "$(grep 'new TLS certificate refused' "$E2E_TMP/tls.log" | tail -1)" "is not valid yet"
for _ in $(seq 1 300); do [ "$(count_in "$E2E_TMP/tls.log" 'TLS certificate reloaded')" -gt "$MARK" ] && break; sleep 0.05; done
check_contains "and taken once it is, with no change or signal" "$(grep 'TLS certificate reloaded' "$E2E_TMP/tls.log" | tail -1)" "the new certificate is valid now"
check "new connections get it" "$(served)" serverSoon

echo "--- a changed file is noticed without a signal; near expiry is reported"
mark 'TLS certificate reloaded'
install C
wait_more 'TLS certificate reloaded'
check "the change is picked up" "$?" 0
check_contains "the log says a file changed" "$(grep 'TLS certificate reloaded' "$E2E_TMP/tls.log" | tail -1)" "a file changed"
check "a new connection gets server C" "$(served)" serverC
check_contains "a certificate with 10 days left is reported" "$(grep 'expires soon' "$E2E_TMP/tls.log")" '"daysLeft":9'
days=$(curl -s "http://127.0.0.1:$metrics/_/varz" | awk '/^tls_certificate_expiry_days /{print int($2)}')
check "tls_certificate_expiry_days says 9 (and some hours)" "$days" 9

echo "--- the client CA is reloaded too"
mark 'TLS certificate reloaded'
put_live "$c/ca2.crt" ca.crt
kill -HUP "$REPLICATOR_PID"
wait_more 'TLS certificate reloaded'
client=(--cert "$c/client-ca2.crt" --key "$c/client-ca2.key")
send 5 ca2
check "a client of the new CA: 200" "$STATUS" 200
client=(--cert "$c/client-ca1.crt" --key "$c/client-ca1.key")
send 6 ca1
check "a client of the old CA is refused in the handshake" "$STATUS" 000
mark 'TLS certificate reloaded'
put_live "$c/ca1.crt" ca.crt
kill -HUP "$REPLICATOR_PID"
wait_more 'TLS certificate reloaded'

echo "--- requests during reloads all succeed"
(
    for i in $(seq 100 219); do
        curl -s -o /dev/null -w '%{http_code}\n' -X POST --cacert "$c/ca1.crt" "${client[@]}" \
            --data-binary "$(row "$i" load)" "https://127.0.0.1:$REPLICATOR_PORT/tlspg/public"
    done > "$E2E_TMP/load.codes"
) &
loader=$!
for n in A B A B A B A B A B; do install $n; kill -HUP "$REPLICATOR_PID"; sleep 0.15; done
wait "$loader"
check "120 requests on new connections during 10 reloads: all 200" "$(sort "$E2E_TMP/load.codes" | uniq -c | tr -s ' ')" " 120 200"
check "and their rows are written" "$(psql "$PG" -X -At -c 'SELECT count(*) FROM t WHERE id >= 100')" 120
stop_replicator
check "exit 0 after SIGTERM" "$REPLICATOR_EXIT" 0

[ "$E2E_FAILURES" -eq 0 ] && echo "PASS" || { echo "$E2E_FAILURES FAILED"; exit 1; }
