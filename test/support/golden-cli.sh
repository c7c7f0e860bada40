#!/usr/bin/env bash
# golden-cli.sh GOLDEN EXPECTED_RC PROGRAM [ARGS...]
# Runs PROGRAM, and compares "stdout + stderr + exit code" with the golden file.
# MOLT_UPDATE_GOLDEN=1 rewrites the golden file instead (the lint test then fails, so an
# update can never pass unnoticed).
set -uo pipefail
golden=$1 expected_rc=$2
shift 2
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
"$@" >"$out" 2>"$err"
rc=$?
actual=$( { printf -- '--- stdout\n'; cat "$out"; printf -- '--- stderr\n'; cat "$err"; printf -- '--- exit code %s\n' "$rc"; } )
if [ "${MOLT_UPDATE_GOLDEN:-}" = 1 ]; then
    printf '%s\n' "$actual" >"$golden"
    echo "updated $golden"
    exit 0
fi
if [ "$rc" != "$expected_rc" ]; then
    echo "exit code $rc, expected $expected_rc" >&2
fi
if ! diff -u "$golden" <(printf '%s\n' "$actual"); then
    echo "output differs from $golden (MOLT_UPDATE_GOLDEN=1 rewrites it)" >&2
    exit 1
fi
[ "$rc" = "$expected_rc" ]
