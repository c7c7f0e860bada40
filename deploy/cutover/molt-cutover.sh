#!/usr/bin/env bash
# molt-cutover.sh: the last step of a failback, driven by signals as cutover runbooks are.
#
# Run it after writes to CockroachDB have stopped. It takes the cluster's current timestamp
# (SELECT cluster_logical_timestamp()), waits until the replicator's applied checkpoint has
# passed it (every change made before it is then on the original database), stops
# `molt fetch --mode failback` with SIGTERM, checks that molt exited 0, and prints a summary.
#
#   molt-cutover.sh --source 'postgres://root@crdb:26257/defaultdb?sslmode=verify-full' \
#       --molt-pid 12345 [--metrics-addr 127.0.0.1:3030] [--molt-log fetch.log] [--timeout 600]
#
# --metrics-addr: molt's --metrics-listen-addr (default: read from molt's command line, else
#   127.0.0.1:3030); the script reads http://<addr>/status.
# --molt-log: molt's log (its --log-file, or the file its stdout goes to): molt is not this
#   script's child, so its exit code is read from the "molt fetch stopped" line it writes last.
#   Default: molt's --log-file, else its stdout when that is a file; without either the script
#   refuses to start (it could not check the exit code).
# Needs psql, curl and awk. Exit codes: 0 cut over; 1 a step failed (nothing was stopped unless
# the message says so); 2 usage.
set -uo pipefail

source_url="" molt_pid="" metrics_addr="" molt_log="" timeout=600
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --source) source_url=${2:-}; shift 2 ;;
        --molt-pid) molt_pid=${2:-}; shift 2 ;;
        --metrics-addr) metrics_addr=${2:-}; shift 2 ;;
        --molt-log) molt_log=${2:-}; shift 2 ;;
        --timeout) timeout=${2:-}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "molt-cutover: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$source_url" ] && [ -n "$molt_pid" ] || usage
[[ "$molt_pid" =~ ^[0-9]+$ ]] || { echo "molt-cutover: --molt-pid must be a process id" >&2; exit 2; }
[[ "$timeout" =~ ^[0-9]+$ ]] || { echo "molt-cutover: --timeout is in seconds" >&2; exit 2; }
say() { echo "molt-cutover: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

kill -0 "$molt_pid" 2>/dev/null || fail "no process $molt_pid (is molt fetch running?)"
if [ -z "$metrics_addr" ]; then
    # molt's own command line says where its metrics are, if it was given.
    metrics_addr=$(tr '\0' '\n' < "/proc/$molt_pid/cmdline" 2>/dev/null |
        awk 'f { print; exit } /^--metrics-listen-addr=/ { sub(/^[^=]*=/, ""); print; exit }
             /^--metrics-listen-addr$/ { f = 1 }')
    metrics_addr=${metrics_addr:-127.0.0.1:3030}
fi
if [ -z "$molt_log" ]; then
    molt_log=$(tr '\0' '\n' < "/proc/$molt_pid/cmdline" 2>/dev/null |
        awk 'f { print; exit } /^--log-file=/ { sub(/^[^=]*=/, ""); print; exit } /^--log-file$/ { f = 1 }')
    if [ -n "$molt_log" ] && [ "${molt_log#/}" = "$molt_log" ]; then
        molt_log="$(readlink "/proc/$molt_pid/cwd")/$molt_log"
    fi
    [ -z "$molt_log" ] && [ -f "$(readlink "/proc/$molt_pid/fd/1")" ] && molt_log=$(readlink "/proc/$molt_pid/fd/1")
fi
[ -n "$molt_log" ] && [ -r "$molt_log" ] ||
    { echo "molt-cutover: cannot find molt's log to check its exit code: pass --molt-log FILE" >&2; exit 2; }
status() { curl -fsS --max-time 5 "http://$metrics_addr/status"; }
field() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | tr -d '"'; }
status >/dev/null || fail "molt's status endpoint http://$metrics_addr/status does not answer (pass --metrics-addr)"

cutover=$(psql "$source_url" -X -q -At -v ON_ERROR_STOP=1 -c "SELECT cluster_logical_timestamp()") ||
    fail "cannot read the source's clock"
# As Unix seconds; the applied checkpoint must be later by more than a float's rounding.
cutover_seconds=$(awk -v t="$cutover" 'BEGIN { split(t, p, "."); printf "%.9f", p[1] / 1e9 }')
say "cutover timestamp $cutover ($(date -u -d "@${cutover_seconds%.*}" +%FT%TZ)); waiting for the target to hold every change before it"

start=$(date +%s)
last_report=0
applied=""
while :; do
    doc=$(status) || fail "molt's status endpoint stopped answering"
    applied=$(field applied_checkpoint_seconds <<<"$doc")
    if [ -n "$applied" ] && [ "$applied" != null ] &&
        awk -v a="$applied" -v c="$cutover_seconds" 'BEGIN { exit !(a > c + 0.00001) }'; then
        break
    fi
    now=$(date +%s)
    [ $((now - start)) -ge "$timeout" ] &&
        fail "the applied checkpoint did not pass the cutover timestamp within ${timeout}s (last: ${applied:-none}); molt was not stopped"
    if [ $((now - last_report)) -ge 5 ]; then
        behind=$( [ -n "$applied" ] && [ "$applied" != null ] &&
            awk -v a="$applied" -v c="$cutover_seconds" 'BEGIN { printf "%.1fs behind", c - a }' || echo "no checkpoint yet")
        say "waiting: applied checkpoint ${applied:-none} ($behind); changefeed $(field changefeed_status <<<"$doc"): $(field changefeed_running_status <<<"$doc")"
        last_report=$now
    fi
    sleep 1
done
waited=$(( $(date +%s) - start ))
say "the target holds every change up to $applied (after ${waited}s); stopping molt (SIGTERM to $molt_pid)"
rows=$(sed -n 's/.*"rows_applied":{\([^}]*\)}.*/\1/p' <<<"$doc" | tr -d '"' | sed 's/:/=/g; s/,/ /g')

log_size=$(stat -c %s "$molt_log")  # only what molt writes from now on counts
kill -TERM "$molt_pid" || fail "cannot signal $molt_pid"
for _ in $(seq 1 $((timeout * 10))); do
    kill -0 "$molt_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$molt_pid" 2>/dev/null && fail "molt ($molt_pid) is still running ${timeout}s after SIGTERM"

last=$(tail -c +$((log_size + 1)) "$molt_log" | grep '"message":"molt fetch stopped"' | tail -1)
code=$(field exit_code <<<"$last")
[ -n "$code" ] || fail "molt stopped without writing \"molt fetch stopped\" to $molt_log (killed?)"
[ "$code" = 0 ] || fail "molt exited with code $code"

cat <<SUMMARY
cutover complete
  cutover timestamp:   $cutover
  applied checkpoint:  $applied (Unix seconds)
  waited:              ${waited}s
  rows applied:        ${rows:-?} (by the replicator since it last started)
  molt:                stopped, exit code 0
  the changefeed:      kept on the source unless molt ran with --cancel-changefeed-on-exit
                       (CANCEL JOB <id>; the id is in molt's log)
SUMMARY
