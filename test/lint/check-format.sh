#!/usr/bin/env bash
# check-format.sh ROOT: every C++ file is formatted as .clang-format says (clang-format 14).
set -uo pipefail
root=$1
cd "$root" || exit 1
tool=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$tool" ]; then
    echo "clang-format is not installed (apt-get install clang-format-14)" >&2
    exit 1
fi
mapfile -t files < <(find common proto fetch replicator test -name '*.cpp' -o -name '*.hpp' | sort)
[ "${#files[@]}" -gt 0 ] || { echo "no C++ files found" >&2; exit 1; }
out=$("$tool" --dry-run --Werror "${files[@]}" 2>&1)
if [ $? -ne 0 ]; then
    printf '%s\n' "$out" | head -60 >&2
    echo "reformat with: $tool -i \$(find common proto fetch replicator test -name '*.[ch]pp')" >&2
    exit 1
fi
