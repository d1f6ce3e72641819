#!/usr/bin/env bash
# Checks deploy/monitoring:
#   1. scripts/check-monitoring.py: every btcmesh_* metric a rule or panel
#      uses is registered by a service; rule fields, severities, panel ids.
#   2. The rules and every dashboard query parsed with Prometheus's own
#      libraries (model/rulefmt validates expressions, durations, label and
#      annotation templates; promql/parser for panel queries), built in a
#      throwaway module outside the repo so go.mod stays as it is
#      (cached in ~/.cache/btcmesh/promcheck; about 2 min cold).
# Env: PROMETHEUS_VERSION (v0.316.0), PROM_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/check-monitoring.py

PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
PROM_CACHE=${PROM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/btcmesh/promcheck-$PROMETHEUS_VERSION}
export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod
mkdir -p "$PROM_CACHE"
if [ ! -x "$PROM_CACHE/promcheck" ]; then
  (
    cd "$PROM_CACHE"
    [ -f go.mod ] || go mod init btcmesh.local/promcheck >/dev/null 2>&1
    cat > main.go <<'GO'
// Command promcheck parses a Prometheus rule file with rulefmt (which
// checks every expression, duration and template) and each query of a
// Grafana dashboard with the PromQL parser.
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: promcheck RULES.yaml DASHBOARD.json")
		os.Exit(2)
	}
	bad := 0
	pp := parser.NewParser(parser.Options{})
	// Strict: unknown fields are errors, names follow the legacy scheme.
	groups, errs := rulefmt.ParseFile(os.Args[1], false, model.LegacyValidation, pp, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		bad++
		fmt.Fprintln(os.Stderr, "rules:", err)
	}
	n := 0
	if groups != nil {
		for _, g := range groups.Groups {
			n += len(g.Rules)
		}
	}
	data, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
	// Grafana variables are substituted before the query reaches Prometheus.
	vars := strings.NewReplacer("$namespace", ".*", "${namespace}", ".*", "$__rate_interval", "5m", "$__interval", "1m")
	q := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				q++
				if _, err := pp.ParseExpr(vars.Replace(t.Expr)); err != nil {
					bad++
					fmt.Fprintf(os.Stderr, "dashboard panel %q: %v\n", p.Title, err)
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	if bad > 0 {
		os.Exit(1)
	}
	fmt.Printf("promcheck: %d rules and %d dashboard queries parse with prometheus\n", n, q)
}
GO
    go get "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" >/dev/null 2>&1 || go get "github.com/prometheus/prometheus@$PROMETHEUS_VERSION"
    nice -n "${NICE:-10}" go build -o promcheck . || { rm -f promcheck; exit 1; }
  )
fi
"$PROM_CACHE/promcheck" deploy/monitoring/alerts.yaml deploy/monitoring/dashboard.json
