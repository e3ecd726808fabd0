package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "alerts_test.yaml"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), promtool, args...)
			cmd.Dir = "observability"
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// ruleFile is the Prometheus rule file format, decoded strictly.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRules checks what promtool does not: every alert is actionable
// (severity, summary, description) and the required alerts exist.
func TestAlertRules(t *testing.T) {
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(mustRead(t, filepath.Join("observability", "alerts.yaml"))))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	seen := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			switch r.Labels["severity"] {
			case "info", "warning", "critical":
			default:
				t.Errorf("alert %s: severity %q, want info, warning or critical", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
		}
	}
	for _, want := range []string{
		"OutriggerCertExpiringSoon", "OutriggerCertExpiryCritical", "OutriggerCertReloadFailing",
		"OutriggerUpstreamDown", "OutriggerHighErrorRatio", "OutriggerUpstreamErrors", "OutriggerProxyNotReady",
		"OutriggerConfigApplyFailing", "OutriggerConfigStale", "OutriggerConfigAPIRejectsSpike",
	} {
		if !seen[want] {
			t.Errorf("alert %s missing", want)
		}
	}
}

var metricRE = regexp.MustCompile(`\boutrigger_[a-z][a-z0-9_]*[a-z0-9]\b`)

// codeMetrics returns every outrigger_* metric name that a non-test Go file
// under internal/ or cmd/ declares as a string literal.
func codeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	lit := regexp.MustCompile(`"(outrigger_[a-z][a-z0-9_]*[a-z0-9])"`)
	names := map[string]bool{}
	for _, root := range []string{"../internal", "../cmd"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range lit.FindAllSubmatch(data, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d outrigger_* metric names in the code: %v", len(names), names)
	}
	return names
}

// unknownMetrics returns the outrigger_* names in text that the code does
// not export (histogram series _bucket/_sum/_count count as their base).
func unknownMetrics(text string, known map[string]bool) []string {
	var missing []string
	seen := map[string]bool{}
	for _, name := range metricRE.FindAllString(text, -1) {
		if seen[name] {
			continue
		}
		seen[name] = true
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
				base = b
			}
		}
		if !known[base] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	return missing
}

func TestMetricNamesExist(t *testing.T) {
	known := codeMetrics(t)
	for _, file := range []string{"observability/alerts.yaml", "observability/alerts_test.yaml", "observability/grafana-dashboard.json", "../docs/kubernetes.md"} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if missing := unknownMetrics(string(data), known); len(missing) > 0 {
				t.Errorf("%s uses metrics the code does not export (renamed?): %v", file, missing)
			}
		})
	}
}

func TestUnknownMetrics(t *testing.T) {
	known := map[string]bool{"outrigger_requests_total": true, "outrigger_request_duration_seconds": true}
	tests := []struct {
		name, text string
		want       []string
	}{
		{"known", `rate(outrigger_requests_total[5m])`, nil},
		{"histogram bucket", `outrigger_request_duration_seconds_bucket{le="1"}`, nil},
		{"renamed", `outrigger_request_total`, []string{"outrigger_request_total"}},
		{"bucket of unknown", `outrigger_nope_bucket`, []string{"outrigger_nope_bucket"}},
		{"regex in a selector is not a name", `{__name__=~"outrigger_.*"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unknownMetrics(tt.text, known)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) && (len(got) != 0 || len(tt.want) != 0) {
				t.Errorf("unknownMetrics(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

// dashboard is the part of Grafana's dashboard JSON model the checks read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	ID         int                       `json:"id"`
	Type       string                    `json:"type"`
	Title      string                    `json:"title"`
	Datasource json.RawMessage           `json:"datasource"`
	GridPos    *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestDashboard(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(mustRead(t, filepath.Join("observability", "grafana-dashboard.json")), &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"datasource", "namespace", "pod"} {
		if !vars[v] {
			t.Errorf("template variable $%s missing", v)
		}
	}
	ids := map[int]bool{}
	var exprs []string
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q: no gridPos", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Datasource) == 0 || string(p.Datasource) == "null" {
			t.Errorf("panel %q: no datasource", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no targets", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" {
				t.Errorf("panel %q: a target without expr or refId", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	// The panels the issue asks for, by the metric each must query.
	all := strings.Join(exprs, "\n")
	for _, m := range []string{
		"outrigger_requests_total", "outrigger_request_duration_seconds_bucket", "outrigger_upstream_errors_total",
		"outrigger_inflight_requests", "outrigger_queued_requests", "outrigger_cert_expiry_timestamp_seconds",
		"outrigger_cert_reloads_total", "outrigger_sync_applied_version", "outrigger_sync_applies_total",
		"outrigger_sync_last_success_timestamp_seconds", "outrigger_config_pushes_total",
		"outrigger_config_rejects_total", "outrigger_config_watchers",
	} {
		if !strings.Contains(all, m) {
			t.Errorf("no panel queries %s", m)
		}
	}
}
