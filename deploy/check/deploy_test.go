// Package check validates the operator files in deploy/: the Prometheus
// alert rules with Prometheus's own rule parser (which also parses every
// PromQL expression), the scrape config as YAML, and the Grafana dashboard
// as JSON whose queries name only metrics the services export.
package check

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

func TestAlertRulesLoad(t *testing.T) {
	groups, errs := rulefmt.ParseFile("../prometheus/alerts.yml", false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("alerts.yml: %v", errs)
	}
	want := map[string]bool{"FetchmeshRenderPoolSaturated": false, "FetchmeshRenderQueueWaitHigh": false, "FetchmeshDecodoRejections": false, "FetchmeshRenderNodeLost": false}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if _, ok := want[r.Alert]; ok {
				want[r.Alert] = true
			}
		}
	}
	for name, found := range want {
		if !found {
			t.Errorf("alert %s is missing", name)
		}
	}
}

func TestScrapeConfigIsYAML(t *testing.T) {
	b, err := os.ReadFile("../prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil || len(cfg.ScrapeConfigs) == 0 || len(cfg.RuleFiles) == 0 {
		t.Fatalf("prometheus.yml: %v %+v", err, cfg)
	}
}

// The metric families the services export (the e2e metrics test checks
// that they appear on the services' /metrics).
var exported = regexp.MustCompile(`^fetchmesh_(render_slots|render_slots_capacity|render_queue_length|render_queue_oldest_wait_seconds|render_queue_wait_seconds_bucket|url_duration_seconds_bucket|attempt_duration_seconds_bucket|results_total|gateway_batches_active|gateway_held_bytes|static_wire_bytes_total|static_body_bytes_total|decodo_calls_total|decodo_retries_total|decodo_rejections_total|decodo_budget_remaining|decodo_billed_today|decodo_circuit_open|render_nodes|render_node_losses_total|render_browser_restarts_total|render_browser_memory_bytes)$`)

var metricName = regexp.MustCompile(`fetchmesh_[a-z_]+`)

// Labels the services put on their series (from span and metric attributes).
var labels = map[string]bool{"fetchmesh_tier": true, "fetchmesh_outcome": true, "fetchmesh_verdict": true}

func TestDashboardQueriesKnownMetrics(t *testing.T) {
	b, err := os.ReadFile("../grafana/fetchmesh-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("dashboard: %v", err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				if !labels[m] && !exported.MatchString(strings.TrimSpace(m)) {
					t.Errorf("panel %q queries %s, which no service exports", p.Title, m)
				}
			}
		}
	}
	rules, _ := os.ReadFile("../prometheus/alerts.yml")
	for _, m := range metricName.FindAllString(string(rules), -1) {
		if !labels[m] && !exported.MatchString(m) {
			t.Errorf("alerts.yml uses %s, which no service exports", m)
		}
	}
}
