package monitoringcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the root module's directory (two levels up from here).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "module github.com/btcmesh/btcmesh\n") {
		t.Fatalf("%s is not the btcmesh root module: %v", root, err)
	}
	return root
}

// codeDirs are the root module's directories whose Go code registers
// metrics.
var codeDirs = []string{"services", "internal", "cmd"}

func registered(t *testing.T, root string) map[string]Metric {
	t.Helper()
	reg, err := Registered(root, codeDirs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(reg) < 20 {
		t.Fatalf("only %d metrics found in the code: the scan is broken", len(reg))
	}
	return reg
}

func fail(t *testing.T, errs []error) {
	t.Helper()
	for _, err := range errs {
		t.Error(err)
	}
}

// TestMonitoring checks deploy/monitoring and METRICS.md against the code.
func TestMonitoring(t *testing.T) {
	root := repoRoot(t)
	mon := filepath.Join(root, "deploy", "monitoring")
	reg := registered(t, root)

	t.Run("names", func(t *testing.T) {
		for name, m := range reg {
			if !strings.HasPrefix(name, "btcmesh_") {
				t.Errorf("%s: %s does not start with btcmesh_", m.Pos, name)
			}
			if (m.Type == "counter") != strings.HasSuffix(name, "_total") {
				t.Errorf("%s: %s is a %s: counters, and only they, end in _total", m.Pos, name, m.Type)
			}
		}
	})
	t.Run("rules", func(t *testing.T) {
		uses, n, errs := Rules(filepath.Join(mon, "alerts.yaml"))
		fail(t, errs)
		fail(t, CheckUses(uses, reg))
		if n < 10 || len(uses) < n {
			t.Errorf("%d rules with %d metric selectors: the parse lost rules", n, len(uses))
		}
		t.Logf("%d rules, %d selectors", n, len(uses))
	})
	t.Run("dashboard", func(t *testing.T) {
		uses, n, errs := Dashboard(filepath.Join(mon, "dashboard.json"))
		fail(t, errs)
		fail(t, CheckUses(uses, reg))
		if n < 10 {
			t.Errorf("%d dashboard queries: the parse lost panels", n)
		}
		t.Logf("%d queries, %d selectors", n, len(uses))
	})
	t.Run("METRICS.md", func(t *testing.T) {
		doc, err := Documented(filepath.Join(mon, "METRICS.md"))
		if err != nil {
			t.Fatal(err)
		}
		fail(t, CheckDocs(doc, reg))
		t.Logf("%d metrics registered, %d documented", len(reg), len(doc))
	})
}

// wantErrors fails unless every want substring is in some error.
func wantErrors(t *testing.T, errs []error, want ...string) {
	t.Helper()
	var all []string
	for _, err := range errs {
		all = append(all, err.Error())
	}
	joined := strings.Join(all, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("no error mentions %q; errors:\n%s", w, joined)
		}
	}
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckerCatchesMistakes feeds the checks bad inputs: each must fail.
func TestCheckerCatchesMistakes(t *testing.T) {
	reg := registered(t, repoRoot(t))

	t.Run("rule uses an unknown metric", func(t *testing.T) {
		p := write(t, "alerts.yaml", `groups:
  - name: bad
    rules:
      - alert: Unknown
        expr: sum by (namespace) (rate(btcmesh_headers_no_such_total[5m])) > 0
        labels: {severity: warning}
        annotations: {summary: "x"}
      - alert: HistogramWithoutSuffix
        expr: btcmesh_blockvalidator_connect_seconds > 1
        labels: {severity: warning}
        annotations: {summary: "x"}
      - alert: WrongLabel
        expr: btcmesh_p2p_peers{dir="inbound"} == 0
        labels: {severity: warning}
        annotations: {summary: "x"}
      - alert: Fine
        expr: sum by (namespace, le) (rate(btcmesh_blockvalidator_connect_seconds_bucket{namespace="a"}[5m])) > 0 and btcmesh_p2p_peers{direction="inbound"} == 0
        labels: {severity: info}
        annotations: {summary: "x"}
`)
		uses, _, errs := Rules(p)
		if len(errs) > 0 {
			t.Fatalf("valid rule file rejected: %v", errs)
		}
		errs = CheckUses(uses, reg)
		wantErrors(t, errs,
			"rule Unknown: metric btcmesh_headers_no_such_total is not registered",
			"rule HistogramWithoutSuffix: metric btcmesh_blockvalidator_connect_seconds is not registered",
			`rule WrongLabel: btcmesh_p2p_peers has no label "dir"`)
		if len(errs) != 3 {
			t.Errorf("%d errors, want 3 (rule Fine is fine): %v", len(errs), errs)
		}
	})
	t.Run("rule file Prometheus rejects", func(t *testing.T) {
		p := write(t, "alerts.yaml", `groups:
  - name: bad
    rules:
      - alert: BrokenExpr
        expr: sum(rate(btcmesh_headers_accepted_total[5m]) > 0
        labels: {severity: warning}
        annotations: {summary: "x"}
      - alert: BrokenFor
        expr: up == 0
        for: 5 minutes
        labels: {severity: warning}
        annotations: {summary: "x"}
      - alert: BrokenTemplate
        expr: up == 0
        labels: {severity: warning}
        annotations: {summary: "{{ $value | nosuchfunc }}"}
      - alert: NoSeverity
        expr: up == 0
        annotations: {summary: "x"}
`)
		_, _, errs := Rules(p)
		if len(errs) == 0 {
			t.Fatal("broken rule file accepted")
		}
		p = write(t, "alerts.yaml", `groups:
  - name: bad
    rules:
      - alert: BrokenExpr
        expr: sum(rate(btcmesh_headers_accepted_total[5m]) > 0
        labels: {severity: warning}
        annotations: {summary: "x"}
      - alert: BrokenTemplate
        expr: up == 0
        labels: {severity: warning}
        annotations: {summary: "{{ $value | nosuchfunc }}"}
      - alert: NoSeverity
        expr: up == 0
        annotations: {summary: "x"}
      - alert: NoSeverity
        expr: up == 0
        labels: {severity: page}
        annotations: {description: "x"}
`)
		_, _, errs = Rules(p)
		wantErrors(t, errs, "BrokenExpr", "nosuchfunc", "rule NoSeverity: severity label", "rule NoSeverity: duplicate alert name", "rule NoSeverity: no summary annotation")
	})
	t.Run("dashboard", func(t *testing.T) {
		p := write(t, "dashboard.json", `{"panels": [
  {"id": 1, "title": "row", "panels": [
    {"id": 2, "title": "Unknown", "targets": [{"expr": "sum(rate(btcmesh_nope_total{namespace=~\"$namespace\"}[$__rate_interval]))"}]}
  ]},
  {"id": 2, "title": "Broken", "targets": [{"expr": "sum(rate(up[5m])"}]},
  {"id": 3, "title": "Fine", "targets": [{"expr": "max(btcmesh_headers_active_tip_height{namespace=~\"$namespace\"})"}]}
]}`)
		uses, n, errs := Dashboard(p)
		if n != 3 {
			t.Errorf("%d queries, want 3", n)
		}
		wantErrors(t, errs, `panel "Broken"`, "duplicate panel id 2")
		wantErrors(t, CheckUses(uses, reg), `panel "Unknown": metric btcmesh_nope_total is not registered`)
	})
	t.Run("METRICS.md drift", func(t *testing.T) {
		p := write(t, "METRICS.md", "# x\n\n| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n"+
			"| `btcmesh_headers_active_tip_height` | counter | | wrong type |\n"+
			"| `btcmesh_p2p_peers` | gauge | `dir` | wrong label |\n"+
			"| `btcmesh_gone_total` | counter | | not in the code |\n")
		doc, err := Documented(p)
		if err != nil {
			t.Fatal(err)
		}
		wantErrors(t, CheckDocs(doc, reg),
			`btcmesh_headers_active_tip_height documented as "counter"`,
			"btcmesh_p2p_peers documented with labels [dir]",
			"btcmesh_gone_total is documented but not registered",
			"btcmesh_headers_best_header_height (gauge, services/headers/metrics.go")
	})
	t.Run("code scan", func(t *testing.T) {
		dir := t.TempDir()
		src := `package x

import "github.com/prometheus/client_golang/prometheus"

var c = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "btcmesh", Subsystem: "x", Name: "things_total"}, []string{"b", "a"})
var h = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "btcmesh_x_seconds"})
`
		if err := os.MkdirAll(filepath.Join(dir, "services", "x"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "services", "x", "m.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		reg, err := Registered(dir, "services")
		if err != nil {
			t.Fatal(err)
		}
		c, h := reg["btcmesh_x_things_total"], reg["btcmesh_x_seconds"]
		if len(reg) != 2 || c.Type != "counter" || strings.Join(c.Labels, ",") != "a,b" || h.Type != "histogram" {
			t.Errorf("scan found %+v", reg)
		}
		bad := strings.Replace(src, `Name: "btcmesh_x_seconds"`, `Name: name`, 1)
		if err := os.WriteFile(filepath.Join(dir, "services", "x", "m.go"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Registered(dir, "services"); err == nil || !strings.Contains(err.Error(), "not a string literal") {
			t.Errorf("a computed metric name went unnoticed: %v", err)
		}
	})
}
