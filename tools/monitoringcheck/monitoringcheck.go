// Package monitoringcheck checks deploy/monitoring against the code: the
// Prometheus rule file parses with Prometheus's own rulefmt (expressions,
// durations, label and annotation templates), every Grafana dashboard
// query parses with the PromQL parser, every btcmesh_* metric a rule or
// panel uses is registered by the Go code of the root module (with the
// labels it matches on), and METRICS.md documents exactly the metrics the
// code registers, with their types and labels. Its test runs these checks
// on the repository's files (make test).
package monitoringcheck

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	promql "github.com/prometheus/prometheus/promql/parser"
)

// Metric is one collector registered by the code (or documented).
type Metric struct {
	// Name is the full metric name (namespace_subsystem_name).
	Name string
	// Type is counter, gauge, histogram, summary or untyped.
	Type string
	// Labels are the variable label names, sorted.
	Labels []string
	// Pos is where it is defined (file:line).
	Pos string
}

// Severities are the values an alert's severity label may take.
var Severities = []string{"info", "warning", "critical"}

// TargetLabels are labels Prometheus attaches to every series of a
// scraped pod (kubernetes-pods job with labelmap); rules and panels may
// match on them whatever the metric.
var TargetLabels = []string{
	"namespace", "pod", "instance", "job", "container", "node", "service",
	"app_kubernetes_io_name", "app_kubernetes_io_component", "app_kubernetes_io_part_of", "app_kubernetes_io_instance",
}

// constructors maps a prometheus/promauto New* function to the metric
// type it creates and whether its second argument is the label names.
var constructors = map[string]struct {
	typ string
	vec bool
}{
	"NewCounter": {"counter", false}, "NewCounterVec": {"counter", true}, "NewCounterFunc": {"counter", false},
	"NewGauge": {"gauge", false}, "NewGaugeVec": {"gauge", true}, "NewGaugeFunc": {"gauge", false},
	"NewHistogram": {"histogram", false}, "NewHistogramVec": {"histogram", true},
	"NewSummary": {"summary", false}, "NewSummaryVec": {"summary", true},
	"NewUntypedFunc": {"untyped", false},
}

// Registered scans the non-test Go files under root/dir for each dir for
// calls of prometheus.New* and promauto.New* and returns the metrics they
// create, by name. A name or label list that is not a string literal, or
// a collector built from prometheus.NewDesc, is an error: the checker
// could not see it.
func Registered(root string, dirs ...string) (map[string]Metric, error) {
	out := map[string]Metric{}
	fset := token.NewFileSet()
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				if e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			var ferr error
			ast.Inspect(f, func(n ast.Node) bool {
				if ferr != nil {
					return false
				}
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok || (pkg.Name != "prometheus" && pkg.Name != "promauto") {
					return true
				}
				pos := fset.Position(call.Pos())
				where := fmt.Sprintf("%s:%d", relPath(root, pos.Filename), pos.Line)
				if sel.Sel.Name == "NewDesc" {
					ferr = fmt.Errorf("%s: prometheus.NewDesc is not understood by monitoringcheck; extend it", where)
					return false
				}
				c, ok := constructors[sel.Sel.Name]
				if !ok || len(call.Args) == 0 {
					return true
				}
				m, err := metricOf(call, c.typ, c.vec)
				if err != nil {
					ferr = fmt.Errorf("%s: %w", where, err)
					return false
				}
				m.Pos = where
				if prev, dup := out[m.Name]; dup && (prev.Type != m.Type || !slices.Equal(prev.Labels, m.Labels)) {
					ferr = fmt.Errorf("%s: %s defined again with another type or labels (first at %s)", where, m.Name, prev.Pos)
					return false
				} else if !dup {
					out[m.Name] = m
				}
				return true
			})
			return ferr
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// metricOf reads the Opts literal (and label names) of a constructor call.
func metricOf(call *ast.CallExpr, typ string, vec bool) (Metric, error) {
	opts, ok := call.Args[0].(*ast.CompositeLit)
	if !ok {
		return Metric{}, fmt.Errorf("metric options are not a literal")
	}
	parts := map[string]string{}
	for _, el := range opts.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			return Metric{}, fmt.Errorf("metric options without field names")
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok {
			continue
		}
		switch key.Name {
		case "Namespace", "Subsystem", "Name":
			s, err := stringLit(kv.Value)
			if err != nil {
				return Metric{}, fmt.Errorf("%s: %w", key.Name, err)
			}
			parts[key.Name] = s
		}
	}
	var name []string
	for _, k := range []string{"Namespace", "Subsystem", "Name"} {
		if parts[k] != "" {
			name = append(name, parts[k])
		}
	}
	if parts["Name"] == "" {
		return Metric{}, fmt.Errorf("metric without a Name")
	}
	m := Metric{Name: strings.Join(name, "_"), Type: typ}
	if vec {
		if len(call.Args) < 2 {
			return Metric{}, fmt.Errorf("%s: no label names", m.Name)
		}
		lit, ok := call.Args[1].(*ast.CompositeLit)
		if !ok {
			return Metric{}, fmt.Errorf("%s: label names are not a literal", m.Name)
		}
		for _, el := range lit.Elts {
			s, err := stringLit(el)
			if err != nil {
				return Metric{}, fmt.Errorf("%s: label: %w", m.Name, err)
			}
			m.Labels = append(m.Labels, s)
		}
		sort.Strings(m.Labels)
	}
	return m, nil
}

func stringLit(e ast.Expr) (string, error) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", fmt.Errorf("not a string literal")
	}
	return strconv.Unquote(lit.Value)
}

func relPath(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// Use is one metric selected by a rule or panel query.
type Use struct {
	// Where names the rule or panel.
	Where string
	// Metric is the selected name (with _bucket/_sum/_count when so).
	Metric string
	// Labels are the label names the selector matches on.
	Labels []string
}

// selectors returns the metric selectors of a parsed expression.
func selectors(where string, e promql.Expr) []Use {
	var out []Use
	promql.Inspect(e, func(n promql.Node, _ []promql.Node) error {
		vs, ok := n.(*promql.VectorSelector)
		if !ok {
			return nil
		}
		u := Use{Where: where, Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if u.Metric == "" && m.Type == labels.MatchEqual {
					u.Metric = m.Value
				}
				continue
			}
			u.Labels = append(u.Labels, m.Name)
		}
		out = append(out, u)
		return nil
	})
	return out
}

// newParser is the PromQL parser Prometheus uses by default.
func newParser() promql.Parser { return promql.NewParser(promql.Options{}) }

// Rules parses a Prometheus rule file with rulefmt, strictly (unknown
// fields are errors) and checks what Prometheus does not: every alert has
// a unique name, a severity label in Severities and a summary
// annotation. It returns the metric selectors of every rule and the
// number of rules.
func Rules(path string) ([]Use, int, []error) {
	pp := newParser()
	groups, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, pp, slog.New(slog.DiscardHandler))
	if groups == nil {
		return nil, 0, errs
	}
	var uses []Use
	n := 0
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			where := "rule " + name
			if r.Alert != "" {
				if seen[r.Alert] {
					errs = append(errs, fmt.Errorf("%s: duplicate alert name", where))
				}
				seen[r.Alert] = true
				if !slices.Contains(Severities, r.Labels["severity"]) {
					errs = append(errs, fmt.Errorf("%s: severity label %q, want one of %v", where, r.Labels["severity"], Severities))
				}
				if r.Annotations["summary"] == "" {
					errs = append(errs, fmt.Errorf("%s: no summary annotation", where))
				}
			}
			e, err := pp.ParseExpr(r.Expr)
			if err != nil {
				continue // reported by rulefmt
			}
			uses = append(uses, selectors(where, e)...)
		}
	}
	return uses, n, errs
}

// dashboardVars replaces Grafana's variables the way Grafana does before a
// query reaches Prometheus.
var dashboardVars = strings.NewReplacer(
	"${namespace}", ".*", "$namespace", ".*", "${datasource}", "prometheus",
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// Dashboard parses every query of a Grafana dashboard (panels nested in
// rows included) with the PromQL parser and checks panel ids are unique.
// It returns the metric selectors and the number of queries.
func Dashboard(path string) ([]Use, int, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, []error{err}
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		return nil, 0, []error{fmt.Errorf("%s: %w", path, err)}
	}
	pp := newParser()
	var (
		uses []Use
		errs []error
		n    int
	)
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				errs = append(errs, fmt.Errorf("dashboard: duplicate panel id %d", p.ID))
			}
			ids[p.ID] = true
			where := fmt.Sprintf("panel %q", p.Title)
			for _, t := range p.Targets {
				n++
				e, err := pp.ParseExpr(dashboardVars.Replace(t.Expr))
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", where, err))
					continue
				}
				uses = append(uses, selectors(where, e)...)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	return uses, n, errs
}

// CheckUses reports every btcmesh_* metric selected by uses that the code
// does not register, and every label matched on that neither the metric
// nor the scrape target has. Histograms are selected as
// <name>_bucket (label le), <name>_sum and <name>_count; summaries as
// <name> (label quantile), <name>_sum and <name>_count. Other metrics
// (up, process_*, jetstream_*) are not btcmesh's and are left alone.
func CheckUses(uses []Use, reg map[string]Metric) []error {
	var errs []error
	for _, u := range uses {
		if !strings.HasPrefix(u.Metric, "btcmesh_") {
			continue
		}
		m, extra, ok := resolve(u.Metric, reg)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: metric %s is not registered by the code", u.Where, u.Metric))
			continue
		}
		for _, l := range u.Labels {
			if !slices.Contains(m.Labels, l) && !slices.Contains(TargetLabels, l) && l != extra {
				errs = append(errs, fmt.Errorf("%s: %s has no label %q (it has %v)", u.Where, u.Metric, l, m.Labels))
			}
		}
	}
	return errs
}

// resolve finds the metric a series name belongs to and the extra label
// its series has (le, quantile).
func resolve(series string, reg map[string]Metric) (Metric, string, bool) {
	if m, ok := reg[series]; ok {
		switch m.Type {
		case "histogram":
			return m, "", false // only as _bucket/_sum/_count
		case "summary":
			return m, "quantile", true
		}
		return m, "", true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(series, suf)
		if !ok {
			continue
		}
		m, ok := reg[base]
		if !ok {
			continue
		}
		switch {
		case m.Type == "histogram" && suf == "_bucket":
			return m, "le", true
		case (m.Type == "histogram" || m.Type == "summary") && suf != "_bucket":
			return m, "", true
		}
	}
	return Metric{}, "", false
}

// docRow is a table row of METRICS.md: | `name` | type | `l1`, `l2` | meaning |
var docRow = regexp.MustCompile("^\\|\\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\\s*\\|([^|]*)\\|([^|]*)\\|")

// Documented reads the metric tables of METRICS.md: every row whose first
// cell is a backquoted metric name, with its type and labels.
func Documented(path string) (map[string]Metric, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Metric{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		m := docRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		d := Metric{Name: m[1], Type: strings.TrimSpace(m[2]), Pos: fmt.Sprintf("%s:%d", filepath.Base(path), line)}
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				d.Labels = append(d.Labels, l)
			}
		}
		sort.Strings(d.Labels)
		if prev, dup := out[d.Name]; dup {
			return nil, fmt.Errorf("%s: %s documented twice (also %s)", d.Pos, d.Name, prev.Pos)
		}
		out[d.Name] = d
	}
	return out, sc.Err()
}

// CheckDocs reports every registered metric missing from doc, every
// documented metric the code does not register, and every type or label
// mismatch.
func CheckDocs(doc, reg map[string]Metric) []error {
	var errs []error
	for _, name := range sortedKeys(reg) {
		r := reg[name]
		d, ok := doc[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("METRICS.md: %s (%s, %s) is not documented", name, r.Type, r.Pos))
		case d.Type != r.Type:
			errs = append(errs, fmt.Errorf("%s: %s documented as %q, the code registers a %s (%s)", d.Pos, name, d.Type, r.Type, r.Pos))
		case !slices.Equal(d.Labels, r.Labels):
			errs = append(errs, fmt.Errorf("%s: %s documented with labels %v, the code has %v (%s)", d.Pos, name, d.Labels, r.Labels, r.Pos))
		}
	}
	for _, name := range sortedKeys(doc) {
		if _, ok := reg[name]; !ok {
			errs = append(errs, fmt.Errorf("%s: %s is documented but not registered by the code", doc[name].Pos, name))
		}
	}
	return errs
}

func sortedKeys(m map[string]Metric) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
