package monitor_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/monitor"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/prometheus/client_golang/prometheus/testutil"
	promdto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
)

// start runs a switch with its monitoring listener.
func start(t *testing.T, tune func(*daemon.Config)) (*daemontest.Site, string) {
	t.Helper()
	site := daemontest.StartWith(t, t.TempDir(), nil, tune)
	ml, err := monitor.Listen("127.0.0.1:0", site.Server, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ml.Close() })
	return site, "http://" + ml.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func send(t *testing.T, c *client.Client, to telegram.Address, p telegram.Precedence, n int) {
	t.Helper()
	batch := make([]client.Telegram, n)
	for i := range batch {
		batch[i] = client.Telegram{To: []telegram.Address{to}, Precedence: p, Subject: "chủ đề mật", Body: []byte("nội dung mật")}
	}
	res, err := c.SendBatch(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// gauge finds one sample of a metric family by its labels.
func sample(t *testing.T, fams map[string]*dto, name string, labels map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.GetMetric() {
		match := true
		for _, lp := range m.GetLabel() {
			if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
				match = false
			}
		}
		if match {
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no %s sample with %v", name, labels)
	return 0
}

// The metrics carry the named series with exact values, pass Prometheus's
// own linter (and promtool check metrics where installed: CI installs it),
// and never a subject, body or agency address.
func TestMetrics(t *testing.T) {
	site, base := start(t, nil)
	hn := site.Dial("HN.UBND")
	send(t, hn, "DN.UBND", telegram.Flash, 7)        // a province, never connects
	send(t, hn, "NA.VINH.UBND", telegram.Routine, 3) // a district
	send(t, hn, "NA.TU", telegram.Immediate, 2)      // delivered below
	if got := site.Receive("NA.TU", client.ReceiveOptions{Inbox: true}); len(got.Telegrams) != 2 {
		t.Fatalf("NA.TU received %d", len(got.Telegrams))
	}
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dienbao_queue_depth", "dienbao_queue_oldest_age_seconds", "dienbao_overdue_telegrams",
		"dienbao_filed_total", "dienbao_delivered_total", "dienbao_delivery_latency_seconds", "dienbao_sessions",
		"dienbao_handshake_failures_total", "dienbao_store_size_bytes", "dienbao_commit_batch_operations",
		"dienbao_parked_telegrams", "dienbao_held_telegrams", "dienbao_in_flight_telegrams", "dienbao_audit_entries"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no metric %s", name)
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"dienbao_queue_depth", map[string]string{"tier": "province", "precedence": "FLASH"}, 7},
		{"dienbao_queue_depth", map[string]string{"tier": "district", "precedence": "ROUTINE"}, 3},
		{"dienbao_queue_depth", map[string]string{"tier": "province", "precedence": "IMMEDIATE"}, 0},
		{"dienbao_filed_total", map[string]string{"precedence": "FLASH"}, 7},
		{"dienbao_delivered_total", map[string]string{"precedence": "IMMEDIATE"}, 2},
		{"dienbao_delivery_latency_seconds", map[string]string{"precedence": "IMMEDIATE"}, 2},
		// DN.UBND and NA.VINH.UBND have telegrams waiting and no terminal.
		{"dienbao_unattended_agencies", map[string]string{"precedence": "FLASH"}, 1},
		{"dienbao_unattended_agencies", map[string]string{"precedence": "ROUTINE"}, 1},
		{"dienbao_unattended_agencies", map[string]string{"precedence": "IMMEDIATE"}, 0},
		{"dienbao_ready", nil, 1},
		{"dienbao_unlisted_agencies", nil, 0},
	}
	for _, c := range checks {
		if got := sample(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	now := float64(time.Now().Unix())
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{{"dienbao_crl_next_update_timestamp_seconds", nil}, {"dienbao_certificate_not_after_timestamp_seconds", map[string]string{"certificate": "switch"}}} {
		if v := sample(t, fams, c.name, c.labels); v < now {
			t.Errorf("%s%v = %v, before now (%v)", c.name, c.labels, v, now)
		}
	}
	if f := fams["dienbao_build_info"]; f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("dienbao_build_info: %v", f)
	}
	if sample(t, fams, "dienbao_audit_checkpoint_size", nil) < 1 || sample(t, fams, "dienbao_audit_checkpoint_timestamp_seconds", nil) < now-600 {
		t.Error("no audit checkpoint in the metrics")
	}
	if sample(t, fams, "dienbao_queue_oldest_age_seconds", map[string]string{"tier": "province", "precedence": "FLASH"}) <= 0 {
		t.Error("no age for the oldest FLASH telegram waiting")
	}
	for _, secret := range []string{"chủ đề", "nội dung", "DN.UBND", "HN.UBND"} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
	problems, err := testutil.GatherAndLint(site.Server.Metrics())
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") != "" {
		t.Error("promtool is not installed (.ci/run installs Debian's prometheus package)")
	} else {
		t.Log("promtool not installed: skipped")
	}
	// Under load the endpoints keep answering, with figures that parse.
	stop := burst(t, site)
	for i := 0; i < 10; i++ {
		code, body := get(t, base+"/metrics")
		if _, err := parser.TextToMetricFamilies(strings.NewReader(body)); code != 200 || err != nil {
			t.Fatalf("/metrics under load: %d %v", code, err)
		}
		if code, _ := get(t, base+"/api/state"); code != 200 {
			t.Fatalf("/api/state under load: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
}

type dto = promdto.MetricFamily

// The console, in headless Chromium, shows the queue this test filled, in
// both languages, and never a subject or body. With DIENBAO_SCREENSHOT=FILE
// it also saves a screenshot taken during a burst of traffic (for docs/).
func TestConsoleInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (.ci/run installs Debian's chromium package)")
		}
		t.Skip("chromium not installed")
	}
	shot := os.Getenv("DIENBAO_SCREENSHOT")
	var tune func(*daemon.Config)
	if shot != "" { // short speed-of-service targets, so overdue telegrams show
		tune = func(c *daemon.Config) {
			c.Speed.Priority, c.Speed.Routine = daemon.Duration(3*time.Second), daemon.Duration(4*time.Second)
			c.Custody.TimerInterval = daemon.Duration(200 * time.Millisecond)
		}
	}
	site, base := start(t, tune)
	hn := site.Dial("HN.UBND")
	send(t, hn, "DN.UBND", telegram.Flash, 7)
	send(t, hn, "NA.VINH.UBND", telegram.Priority, 4)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.WindowSize(1440, 1000),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, for the life of ctx
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	cell := `td[data-agency="DN.UBND"][data-prec="FLASH"]`
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(cell)),
		chromedp.Poll[chromedp.Void](`document.querySelector('`+cell+`').firstChild.textContent === "7"`,
			chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatal(err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(cell)))
	if err != nil {
		t.Fatal(err)
	}
	vinh, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`section[data-level="district"] td[data-agency="NA.VINH.UBND"][data-prec="PRIORITY"]`)))
	if err != nil {
		t.Fatal(err)
	}
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	title, _ := chromedp.Run(ctx, chromedp.Title())
	if !strings.HasPrefix(flash, "7") || !strings.HasPrefix(vinh, "4") {
		t.Fatalf("console shows DN.UBND FLASH %q and NA.VINH.UBND PRIORITY %q, want 7 and 4", flash, vinh)
	}
	for _, label := range []string{"Đang chờ · Waiting", "Hỏa tốc · FLASH", "Trung ương · Centre", "Tỉnh, thành phố · Provinces", "Quận, huyện · Districts"} {
		if !strings.Contains(page, label) {
			t.Errorf("the console lacks %q", label)
		}
	}
	if strings.Contains(page, "chủ đề") || strings.Contains(page, "nội dung") {
		t.Error("the console shows a subject or a body")
	}
	if shot != "" {
		stop := burst(t, site)
		defer stop()
		time.Sleep(6 * time.Second) // rates over a few refreshes of the burst; targets passed
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes), title %q", shot, len(png), title)
	}
}

// burst keeps senders filing to every province and district and two
// terminals receiving, until stopped.
func burst(t *testing.T, site *daemontest.Site) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, name := range []string{"TW.VPTW", "CP.VPCP"} {
		c := site.Dial(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var batch []client.Telegram
				for j, to := range []telegram.Address{"NA.TU", "NA.UBND", "HCM.UBND", "DN.UBND", "HN.UBND", "NA.VINH.UBND"} {
					p := []telegram.Precedence{telegram.Routine, telegram.Priority, telegram.Immediate, telegram.Routine, telegram.Flash, telegram.Routine}[(i+j)%6]
					batch = append(batch, client.Telegram{To: []telegram.Address{to}, Precedence: p, Body: []byte(fmt.Sprint(i))})
				}
				c.SendBatch(ctx, batch)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	for _, name := range []string{"NA.TU", "HN.UBND"} {
		c := site.Dial(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Receive(ctx, client.ReceiveOptions{Inbox: true, Follow: true}, &daemontest.Collector{})
		}()
	}
	return func() { cancel(); wg.Wait() }
}
