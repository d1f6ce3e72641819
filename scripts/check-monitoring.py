#!/usr/bin/env python3
"""Checks deploy/monitoring against the code.

Every btcmesh_* metric used by an alert rule (alerts.yaml) or a dashboard
panel (dashboard.json) must be registered by some service: a
`Name: "btcmesh_..."` literal in the Go code under services/ or internal/
(histograms are used as <name>_bucket/_sum/_count). Rules must have the
fields Prometheus needs, unique names, and a severity label; dashboard
panel ids must be unique. Metrics outside btcmesh (up, process_*,
jetstream_*) are allowed.
"""
import json
import os
import re
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
errors = []


def registered():
    names = set()
    for base in ("services", "internal", "cmd"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, base)):
            for f in files:
                if f.endswith(".go") and not f.endswith("_test.go"):
                    src = open(os.path.join(dirpath, f)).read()
                    names.update(re.findall(r'Name:\s*"(btcmesh_[a-z0-9_]+)"', src))
    return names


def used(expr):
    return set(re.findall(r"\b(btcmesh_[a-z0-9_]+)", expr))


def known(metric, names):
    if metric in names:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if metric.endswith(suffix) and metric[: -len(suffix)] in names:
            return True
    return False


def main():
    names = registered()
    if not names:
        print("check-monitoring: no btcmesh metrics found in the code", file=sys.stderr)
        return 1
    rules_doc = yaml.safe_load(open(os.path.join(ROOT, "deploy/monitoring/alerts.yaml")))
    seen = set()
    nrules = 0
    for g in rules_doc["groups"]:
        for r in g["rules"]:
            nrules += 1
            name = r.get("alert") or r.get("record")
            if not name or "expr" not in r:
                errors.append(f"rule without alert/record or expr in group {g['name']}")
                continue
            if name in seen:
                errors.append(f"duplicate rule {name}")
            seen.add(name)
            if "alert" in r and r.get("labels", {}).get("severity") not in ("info", "warning", "critical"):
                errors.append(f"{name}: severity label must be info, warning or critical")
            if "alert" in r and "summary" not in r.get("annotations", {}):
                errors.append(f"{name}: no summary annotation")
            if r.get("expr", "").count("(") != r.get("expr", "").count(")"):
                errors.append(f"{name}: unbalanced parentheses")
            for m in used(r["expr"]):
                if not known(m, names):
                    errors.append(f"rule {name}: metric {m} is not registered by any service")
    dash = json.load(open(os.path.join(ROOT, "deploy/monitoring/dashboard.json")))
    ids = set()
    nexpr = 0
    for p in dash["panels"]:
        if p["id"] in ids:
            errors.append(f"dashboard: duplicate panel id {p['id']}")
        ids.add(p["id"])
        for t in p.get("targets", []):
            nexpr += 1
            for m in used(t["expr"]):
                if not known(m, names):
                    errors.append(f"dashboard panel {p['title']!r}: metric {m} is not registered by any service")
    for e in errors:
        print("check-monitoring:", e, file=sys.stderr)
    if errors:
        return 1
    print(f"check-monitoring: {nrules} rules and {nexpr} panel queries use only registered metrics ({len(names)} in the code)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
