#!/usr/bin/env bash
# deploy/monitoring: the alert rules pass `promtool check rules` and their unit tests
# (`promtool test rules`: each alert fires on the series that should fire it, with its
# annotations, and not before), the Prometheus configuration is valid, the Grafana dashboard is
# a dashboard, and every metric the rules and the dashboard use is one a real replicator exposes
# (a consistent one with JWT and TLS, and an immediate one), so a renamed metric cannot silently
# empty a panel or disarm an alert.
# Usage: deploy_monitoring_test.sh REPLICATOR   (servers from test/support/db/with-dbs.sh)
REPLICATOR=$1
. "$(dirname "$0")/lib.sh"
e2e_init
MON="$(cd "$(dirname "$0")/../../deploy/monitoring" && pwd)"
PY=/usr/bin/python3
if ! command -v promtool >/dev/null; then
    check "promtool is installed (apt-get install prometheus; test/support/deps.sh does)" no yes
    exit 1
fi

echo "--- promtool"
out=$(cd "$MON" && promtool check rules replicator-alerts.yml 2>&1)
check "promtool check rules" "$?" 0
check_contains "all rules found" "$out" "SUCCESS: 14 rules found"
out=$(cd "$MON" && promtool test rules replicator-alerts.test.yml 2>&1)
check "promtool test rules (alert unit tests)" "$?" 0
[ "$E2E_FAILURES" -gt 0 ] && echo "$out"
tested=$(grep -o 'alertname: [A-Za-z]*' "$MON/replicator-alerts.test.yml" | sort -u | wc -l)
check "every alert has a unit test" "$tested" "$(grep -c '^      - alert: ' "$MON/replicator-alerts.yml")"
(cd "$MON" && promtool check config prometheus.yml >/dev/null 2>&1)
check "promtool check config prometheus.yml" "$?" 0

echo "--- the Grafana dashboard"
shape=$($PY - "$MON/grafana-replicator.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
panels = d["panels"]
ids = [p["id"] for p in panels]
ok = (d["uid"] and d["title"] and len(ids) == len(set(ids))
      and all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in panels)
      and any(v["name"] == "instance" for v in d["templating"]["list"]))
print(f"{len(panels)} panels, ok" if ok else "bad")
PY
)
check "valid JSON, unique panel ids, every panel queries something" "$shape" "14 panels, ok"

echo "--- every metric used is exposed by a real replicator"
own_databases monpg monmy || exit 1
e2e_on_exit "drop_own_databases monpg monmy"
start_replicator cons --tlsSelfSigned --bindAddr 127.0.0.1:0 --metricsAddr 127.0.0.1:0 \
    --targetConn "$OWN_PG_URL" --stagingCreateSchema --fatalRowPolicy dlq || exit 1
port=$(grep 'metrics server bound to' "$E2E_TMP/cons.log" | sed 's/.*bound to [^"]*:\([0-9]*\)".*/\1/')
curl -s "http://127.0.0.1:$port/_/varz" > "$E2E_TMP/cons.varz"
stop_replicator
start_replicator imm --immediate --tlsSelfSigned --disableAuthentication --bindAddr 127.0.0.1:0 \
    --metricsAddr 127.0.0.1:0 --targetConn "$OWN_PG_URL" || exit 1
port=$(grep 'metrics server bound to' "$E2E_TMP/imm.log" | sed 's/.*bound to [^"]*:\([0-9]*\)".*/\1/')
curl -s "http://127.0.0.1:$port/_/varz" > "$E2E_TMP/imm.varz"
stop_replicator
exposed=$(cat "$E2E_TMP/cons.varz" "$E2E_TMP/imm.varz" | awk '/^# TYPE /{print $3}' | sort -u)
check "the replicators expose metrics" "$([ "$(wc -l <<<"$exposed")" -gt 40 ] && echo yes)" yes
missing=""
for name in $($PY "$(dirname "$0")/promql_metrics.py" "$MON/replicator-alerts.yml" "$MON/grafana-replicator.json"); do
    [ "$name" = up ] && continue   # Prometheus's own
    base=$(sed -E 's/_(bucket|sum|count)$//' <<<"$name")
    if ! grep -qx "$name" <<<"$exposed" && ! grep -qx "$base" <<<"$exposed"; then
        missing+=" $name"
    fi
done
check "metrics used by rules and dashboard but not exposed" "${missing:- none}" " none"

[ "$E2E_FAILURES" -eq 0 ] && echo "PASS" || { echo "$E2E_FAILURES FAILED"; exit 1; }
