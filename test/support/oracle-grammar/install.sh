#!/usr/bin/env bash
# install.sh: the npm packages check.sh needs (package-lock.json pins them), from the npm
# registry, into node_modules/ here; Debian's nodejs and npm when node is missing. Does nothing
# when they are installed.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    sudo=()
    [ "$(id -u)" != 0 ] && sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends nodejs npm >&2
fi
if [ ! -d node_modules/antlr4ts-sql ]; then
    npm ci --no-audit --no-fund >&2
fi
