#!/usr/bin/env bash
# db-down.sh BASE: stop the servers db-up.sh started under BASE, by the PIDs in their own pid
# files, and delete BASE. Safe to call twice, and on a half-started BASE.
set -uo pipefail
BASE=${1:?usage: db-down.sh BASE}
[ -d "$BASE" ] || exit 0

# stop_pid PID NAME: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
    local pid=$1 name=$2
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "db-down: $name (pid $pid) did not stop in 30 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
}

if [ -f "$BASE/pg/data/postmaster.pid" ]; then
    # SIGINT is PostgreSQL's "fast shutdown"; the postmaster PID is the first line of its pid file.
    pgpid=$(head -1 "$BASE/pg/data/postmaster.pid")
    kill -INT "$pgpid" 2>/dev/null
    stop_pid "$pgpid" PostgreSQL
fi
if [ -f "$BASE/my/run/mysqld.pid" ]; then
    stop_pid "$(cat "$BASE/my/run/mysqld.pid")" MariaDB
fi
rm -rf "$BASE"
