#!/usr/bin/env bash
# deploy/Containerfile, tested as far as these machines allow: `podman build --isolation chroot`
# works here, `podman run` does not (no user namespaces) and no registry is reachable. So the
# test builds a Debian 12 base image with debootstrap (from the Debian mirror), builds the image
# from it (both stages), exports the image's filesystem, and runs through chroot, as the image's
# user (10001): `replicator --version`, `molt --version`, the dynamic linker's view of both
# binaries (no library missing), and a short `replicator start` against the throwaway PostgreSQL
# that writes a row, answers the image's HEALTHCHECK command and stops on SIGTERM with exit 0.
# It takes about 8 minutes (most of it a release build inside the image), so it is a tier of its
# own that ./test.sh runs only when asked: ./test.sh -L container (or, with servers running,
#   test/support/db/with-dbs.sh test/e2e/deploy_container_test.sh)
# MOLT_CONTAINER_BASE=DIR keeps the debootstrap tarball there between runs.
. "$(dirname "$0")/lib.sh"
e2e_init
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
for tool in podman debootstrap; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL: $tool is missing (apt-get install podman debootstrap)" >&2
        exit 1
    fi
done
[ "$(id -u)" = 0 ] || { echo "FAIL: run as root (debootstrap, chroot)" >&2; exit 1; }
storage=(--root "$E2E_TMP/storage" --runroot "$E2E_TMP/run" --storage-driver vfs)
e2e_on_exit "podman ${storage[*]} rm -a -f >/dev/null 2>&1; podman ${storage[*]} rmi -a -f >/dev/null 2>&1; umount -R '$E2E_TMP/rootfs/proc' '$E2E_TMP/rootfs/dev' 2>/dev/null"

echo "--- a Debian 12 base image (debootstrap)"
cache=${MOLT_CONTAINER_BASE:-$E2E_TMP}
base_tar="$cache/debian12-minbase.tar"
if [ ! -s "$base_tar" ]; then
    debootstrap --variant=minbase bookworm "$E2E_TMP/base" http://deb.debian.org/debian >"$E2E_TMP/debootstrap.log" 2>&1
    check "debootstrap bookworm" "$?" 0
    # apt inside the image reaches the mirror; the image's own sources.list says where.
    echo "deb http://deb.debian.org/debian bookworm main" > "$E2E_TMP/base/etc/apt/sources.list"
    echo "deb http://deb.debian.org/debian-security bookworm-security main" >> "$E2E_TMP/base/etc/apt/sources.list"
    rm -rf "$E2E_TMP/base/var/cache/apt/archives/"*.deb
    tar -C "$E2E_TMP/base" -cf "$base_tar" .
    rm -rf "$E2E_TMP/base"
fi
podman "${storage[@]}" import "$base_tar" localhost/molt-debian:12 >/dev/null
check "the base image is imported" "$?" 0

echo "--- podman build --isolation chroot (both stages)"
started=$(date +%s)
podman "${storage[@]}" build --isolation chroot --format docker -f "$ROOT/deploy/Containerfile" \
    --build-arg BASE=localhost/molt-debian:12 --build-arg RUNTIME_BASE=localhost/molt-debian:12 \
    -t localhost/molt-failback:test "$ROOT" >"$E2E_TMP/build.log" 2>&1
built=$?
check "the image builds" "$built" 0
echo "    (built in $(( $(date +%s) - started )) s)"
if [ "$built" != 0 ]; then
    tail -30 "$E2E_TMP/build.log"
    exit 1
fi
inspect() { podman "${storage[@]}" image inspect --format "$1" localhost/molt-failback:test; }
check "it runs as user 10001, not root" "$(inspect '{{.Config.User}}')" "10001:10001"
check_contains "its HEALTHCHECK calls /_/healthz" "$(inspect '{{json .Config.Healthcheck}}')" "/_/healthz"
check "its entry point is the replicator" "$(inspect '{{json .Config.Entrypoint}}')" '["/usr/local/bin/replicator"]'

echo "--- the image's filesystem, through chroot"
rootfs="$E2E_TMP/rootfs"
mkdir -p "$rootfs"
ctr=$(podman "${storage[@]}" create localhost/molt-failback:test)
podman "${storage[@]}" export "$ctr" | tar -x -C "$rootfs"
check "the build tools are not in the runtime image" "$([ -e "$rootfs/usr/bin/cmake" ] || [ -e "$rootfs/usr/bin/g++" ] && echo present || echo absent)" absent
mkdir -p "$rootfs/proc" "$rootfs/dev"
mount -t proc proc "$rootfs/proc" && mount --rbind /dev "$rootfs/dev"
as_user=(chroot --userspec=10001:10001 "$rootfs")
check_contains "replicator --version" "$("${as_user[@]}" /usr/local/bin/replicator --version 2>&1)" "replicator"
check_contains "molt --version" "$("${as_user[@]}" /usr/local/bin/molt --version 2>&1)" "molt"
missing=$(chroot "$rootfs" /bin/sh -c 'ldd /usr/local/bin/replicator /usr/local/bin/molt' 2>&1 | grep -c 'not found')
check "every library the binaries need is in the image" "$missing" 0

own_databases ctrpg ctrmy || exit 1
e2e_on_exit "drop_own_databases ctrpg ctrmy"
psql "$OWN_PG_URL" -X -q -c "CREATE TABLE t (id bigint PRIMARY KEY, v text)" || exit 1
REPLICATOR=/nonexistent  # start by hand: the binary is the image's
"${as_user[@]}" /usr/local/bin/replicator start --immediate --tlsSelfSigned --disableAuthentication \
    --bindAddr 127.0.0.1:0 --metricsAddr 127.0.0.1:0 --targetConn "$OWN_PG_URL" >"$E2E_TMP/ctr.log" 2>&1 &
REPLICATOR_PID=$!
E2E_PIDS+=("$REPLICATOR_PID")
for _ in $(seq 1 200); do grep -q 'Server listening' "$E2E_TMP/ctr.log" && break; sleep 0.05; done
REPLICATOR_PORT=$(grep 'Server listening' "$E2E_TMP/ctr.log" | grep -o 'address[=":]*[^ ",]*' | head -1 | sed 's/.*:\([0-9]*\)$/\1/')
metrics=$(grep 'metrics server bound to' "$E2E_TMP/ctr.log" | sed 's/.*bound to [^"]*:\([0-9]*\)".*/\1/')
check "the image's replicator starts" "$([ -n "$REPLICATOR_PORT" ] && echo yes)" yes
post "https://127.0.0.1:$REPLICATOR_PORT/ctrpg/public" \
    '{"payload":[{"after": {"id": 1, "v": "from the image"}, "key": [1], "topic": "t", "updated": "1.0000000000"}],"length":1}' --insecure
check "a changefeed request is applied: 200" "$STATUS" 200
check "the row is in PostgreSQL" "$(psql "$OWN_PG_URL" -X -At -c 'SELECT v FROM t WHERE id = 1')" "from the image"
# The HEALTHCHECK command as the image declares it, run inside the image's filesystem.
health=$(inspect '{{json .Config.Healthcheck.Test}}' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[-1])')
REPLICATOR_HEALTH_PORT=$metrics "${as_user[@]}" /bin/bash -c "$health"
check "the HEALTHCHECK command passes against the running replicator" "$?" 0
kill -TERM "$REPLICATOR_PID"
wait "$REPLICATOR_PID"
check "exit 0 after SIGTERM" "$?" 0
E2E_PIDS=()
REPLICATOR_HEALTH_PORT=$metrics "${as_user[@]}" /bin/bash -c "$health" 2>/dev/null
check "and the HEALTHCHECK fails once it is gone" "$?" 1

[ "$E2E_FAILURES" -eq 0 ] && echo "PASS" || { echo "$E2E_FAILURES FAILED"; exit 1; }
