package monitor_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/monitor"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// The HTTPS console lets in operators and auditors only, by their client
// certificates from the network's CA (TLS 1.3), answers only to the
// switch's own names, only reads, and cannot be framed; a refusal is
// audited. A plain listener without the console serves metrics and
// health only.
func TestConsoleAccess(t *testing.T) {
	site := daemontest.Start(t)
	srv := site.Server
	ml, err := monitor.ListenWith("127.0.0.1:0", srv, zap.NewNop(), monitor.Options{Console: true, TLS: srv.ConsoleTLS(),
		Authorize: srv.ConsoleAuthorize, Hosts: srv.ConsoleHosts()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ml.Close() })
	base := "https://" + ml.Addr().String()
	pool := x509.NewCertPool()
	op, err := certs.LoadFolder(site.IDDir("operator"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range op.CACerts {
		pool.AddCert(c)
	}
	client := func(id string, maxTLS uint16) *http.Client {
		cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: maxTLS}
		if id != "" {
			f, err := certs.LoadFolder(site.IDDir(id))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{f.Cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	}
	do := func(c *http.Client, method, path, host string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, tc := range []struct {
		name, id, method, path, host string
		maxTLS                       uint16
		code                         int
		body                         string
	}{
		{name: "operator", id: "operator", path: "/api/state", code: 200, body: `"problems"`},
		{name: "operator, the page", id: "operator", path: "/", code: 200, body: "Switch console"},
		{name: "auditor", id: "auditor", path: "/api/agencies?q=NA", code: 200, body: `"total":3`},
		{name: "no certificate", path: "/api/state", code: 403, body: "no client certificate"},
		{name: "a terminal", id: "HN.UBND", path: "/", code: 403, body: "terminal certificates cannot see the console"},
		{name: "another host name (DNS rebinding)", id: "operator", path: "/api/state", host: "evil.example", code: 421, body: "this console answers to"},
		{name: "a write", id: "operator", method: "POST", path: "/api/state", code: 405, body: "read-only"},
		{name: "not the metrics", id: "operator", path: "/metrics", code: 404},
		{name: "TLS 1.2", id: "operator", path: "/", maxTLS: tls.VersionTLS12, code: 0, body: "protocol version"},
	} {
		method := tc.method
		if method == "" {
			method = "GET"
		}
		code, body, hdr := do(client(tc.id, tc.maxTLS), method, tc.path, tc.host)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, code, body, tc.code, tc.body)
		}
		if tc.path == "/" && code == 200 && !strings.Contains(hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", tc.name, hdr.Get("Content-Security-Policy"))
		}
	}
	// An operator limited to NA sees NA's agencies only.
	ca, err := certs.LoadCA(filepath.Join(site.Dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(certs.Request{Name: "NA operator", Role: certs.Operator, Clearance: telegram.Secret, Scope: []telegram.Address{"NA"}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(iss.CertPEM, iss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	scoped := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{pair}}}}
	if code, body, _ := do(scoped, "GET", "/api/agencies", ""); code != 200 || !strings.Contains(body, `"total":3`) || strings.Contains(body, "HN.UBND") {
		t.Errorf("scoped operator's agencies: %d %s", code, body)
	}
	if code, _, _ := do(scoped, "GET", "/api/agency/HN.UBND", ""); code != 404 {
		t.Errorf("scoped operator's page of HN.UBND: %d, want 404", code)
	}

	// The refusals are audited.
	deadline := time.Now().Add(10 * time.Second)
	for {
		es, err := srv.Store().QueryAudit(store.AuditQuery{Event: store.AuditSecurity, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range es {
			if strings.Contains(e.Reason, "console refused") {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d console refusals audited, want 2: %+v", n, es)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A production switch's plain listener off loopback (ListenMonitoring
	// on any address but loopback; TestConsoleOnPlainHTTP): no console.
	plain, err := monitor.ListenWith("127.0.0.1:0", srv, zap.NewNop(), monitor.Options{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	port := plain.Addr().String()[strings.LastIndex(plain.Addr().String(), ":"):]
	for path, want := range map[string]int{"/metrics": 200, "/healthz": 200, "/": 404, "/api/state": 404} {
		resp, err := http.Get("http://127.0.0.1" + port + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("plain listener %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
