#!/usr/bin/env bash
# check-version.sh MOLT REPLICATOR VERSION: both executables print "<name> version VERSION"
# first, as cobra does, then commit, build and dialect lines; exit 0.
set -euo pipefail
molt=$1 replicator=$2 version=$3
for pair in "molt:$molt" "replicator:$replicator"; do
    name=${pair%%:*} bin=${pair#*:}
    out=$("$bin" --version)
    first=$(printf '%s\n' "$out" | head -1)
    [ "$first" = "$name version $version" ] || { echo "$name --version printed '$first'" >&2; exit 1; }
    printf '%s\n' "$out" | grep -q '^commit: ' || { echo "$name --version has no commit line" >&2; exit 1; }
    printf '%s\n' "$out" | grep -q '^target dialects: postgres, mysql, oracle (oracle through' || { echo "$name --version has no dialect line naming oracle" >&2; exit 1; }
done
# `replicator version` is the original's subcommand spelling.
[ "$("$replicator" version | head -1)" = "replicator version $version" ]
