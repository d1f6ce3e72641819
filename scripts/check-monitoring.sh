#!/usr/bin/env bash
# Checks deploy/monitoring against the code with tools/monitoringcheck (a
# Go test, also run by `make test`):
#   - alerts.yaml parsed with Prometheus's model/rulefmt (expressions,
#     durations, label and annotation templates; unknown fields fail), plus
#     unique alert names, a severity label and a summary annotation;
#   - every dashboard.json query parsed with Prometheus's promql/parser;
#   - every btcmesh_* metric a rule or panel selects is registered by the
#     Go code (services/, internal/, cmd/), with the labels it matches on;
#   - METRICS.md lists exactly the registered metrics, types and labels.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -count=1 -v -run 'TestMonitoring|TestCheckerCatchesMistakes' ./tools/monitoringcheck/
