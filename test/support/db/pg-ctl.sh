#!/usr/bin/env bash
# pg-ctl.sh BASE stop|start: stops the PostgreSQL that db-up.sh started under BASE, or starts it
# again with the same data, port and settings (those recorded in postmaster.opts). For tests
# that take a target down and bring it back; other servers are never touched.
set -euo pipefail
BASE=${1:?usage: pg-ctl.sh BASE stop|start}
action=${2:?usage: pg-ctl.sh BASE stop|start}
PGBIN=/usr/lib/postgresql/15/bin
data="$BASE/pg/data"
[ -d "$data" ] || { echo "pg-ctl: no PostgreSQL data under $BASE" >&2; exit 1; }
pg_run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case $action in
stop)
    pg_run "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    ;;
start)
    # postmaster.opts: the binary, then its quoted arguments; pg_ctl adds -D itself.
    opts=$(cut -d' ' -f2- "$data/postmaster.opts" | sed 's/"-D" "[^"]*" //')
    pg_run "$PGBIN/pg_ctl" -D "$data" -l "$BASE/pg/server.log" -w -t 60 -o "$opts" start >/dev/null
    ;;
*)
    echo "pg-ctl: unknown action $action (stop or start)" >&2
    exit 1
    ;;
esac
