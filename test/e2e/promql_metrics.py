#!/usr/bin/python3
"""Prints the metric names the PromQL expressions of alert rules (YAML) and Grafana dashboards
(JSON) use, one per line, sorted. Usage: promql_metrics.py FILE...  (for deploy_monitoring_test.sh)
"""
import json
import re
import sys

import yaml

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}


def expressions(path):
    with open(path) as f:
        if path.endswith(".json"):
            dashboard = json.load(f)
            for panel in dashboard.get("panels", []):
                for target in panel.get("targets", []):
                    yield target["expr"]
        else:
            for group in yaml.safe_load(f)["groups"]:
                for rule in group["rules"]:
                    yield rule["expr"]


def metric_names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)      # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)               # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)              # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        name = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("(") or name in KEYWORDS:
            continue  # a function or a keyword
        yield name


names = set()
for path in sys.argv[1:]:
    for expr in expressions(path):
        names.update(metric_names(expr))
print("\n".join(sorted(names)))
