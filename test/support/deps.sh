#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages the build and the tests need, when any is missing.
# Used by ./test.sh and ./demo.sh; safe to run repeatedly (does nothing when all are present).
set -euo pipefail

packages=(
    # toolchain
    build-essential cmake ninja-build pkg-config ccache git clang-format-14
    # fuzzing (libFuzzer comes with clang's runtime)
    clang-14 libclang-rt-14-dev
    # libraries
    libboost-dev libboost-program-options-dev libboost-system-dev libboost-filesystem-dev
    libsoci-dev libpq-dev libmariadb-dev rapidjson-dev libfmt-dev catch2 libssl-dev openssl
    zlib1g-dev libzstd-dev libjwt-dev prometheus-cpp-dev unixodbc-dev
    # userscripts: the JavaScript engine, and esbuild (run by the replicator to strip types)
    libmozjs-102-dev esbuild
    # throwaway test servers and their clients
    postgresql-15 postgresql-client-15 postgresql-15-wal2json mariadb-server mariadb-client
    # used by tests; the ODBC drivers carry the Oracle dialect's ODBC path in tests
    curl zstd odbc-postgresql odbc-mariadb
    # systemd-analyze verify (deploy/systemd); promtool (deploy/monitoring) and PyYAML
    systemd prometheus python3-yaml
    # the container tier (./test.sh -L container)
    podman debootstrap
    # an independent JWT implementation, to check ours against
    python3-jwt python3-cryptography
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
        sudo=(sudo)
    else
        echo "deps: missing packages and not root (no sudo): apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >&2
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
