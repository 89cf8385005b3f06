package monitor_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The alert rules and the Grafana dashboard shipped in docs/: the rules
// pass promtool check rules, and promtool test rules runs a case for every
// alert (docs/alerts_test.yml: each fires on the series that should fire
// it, and only on those); every dienbao metric the rules and the dashboard
// name is one the real switch exposes (the link and group families exist
// only on a switch of a network or a group: TestLinkMetrics and the group
// tests check those); the dashboard is JSON with a query in every panel.
func TestAlertRulesAndDashboard(t *testing.T) {
	rules, err := os.ReadFile("../../docs/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := os.ReadFile("../../docs/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	dash, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\w+)`).FindAllStringSubmatch(string(rules), -1)
	if len(alerts) < 18 {
		t.Fatalf("%d alerts in docs/alerts.yml", len(alerts))
	}
	tested := map[string]int{}
	for _, m := range regexp.MustCompile(`alertname: (\w+)`).FindAllStringSubmatch(string(cases), -1) {
		tested[m[1]]++
	}
	for _, a := range alerts {
		if tested[a[1]] < 2 {
			t.Errorf("alert %s has %d cases in docs/alerts_test.yml; want one where it fires and one where it does not", a[1], tested[a[1]])
		}
	}

	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("docs/grafana-dashboard.json: %v (%d panels)", err, len(d.Panels))
	}
	exprs := []string{string(rules)}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}

	_, base := start(t, nil)
	_, body := get(t, base+"/metrics")
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, m := range regexp.MustCompile(`dienbao_[a-z0-9_]+`).FindAllString(strings.Join(exprs, "\n"), -1) {
		name := m
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if _, ok := fams[name]; !ok {
				name = strings.TrimSuffix(name, suffix)
			}
		}
		if _, ok := fams[name]; !ok && !strings.HasPrefix(name, "dienbao_link_") && !strings.HasPrefix(name, "dienbao_group_") && !slices.Contains(missing, m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the rules or the dashboard name metrics the switch does not expose: %v", missing)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (.ci/run installs Debian's prometheus package)")
		}
		t.Skip("promtool not installed")
	}
	if out, err := exec.Command(promtool, "check", "rules", "../../docs/alerts.yml").CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yml")
	cmd.Dir = "../../docs"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}
