package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// foreignIdentity writes identity folder name for a terminal of NA.TU
// whose certificate (named cn) comes from ca, not the site's CA, with the
// site's CA and address, as a rogue client would hold it.
func foreignIdentity(t *testing.T, site *daemontest.Site, ca *certs.CA, name, cn string) {
	t.Helper()
	iss, err := ca.Issue(certs.Request{Name: cn, Role: certs.Terminal, Agency: "NA.TU", Clearance: telegram.Secret, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sitePEM, err := os.ReadFile(filepath.Join(site.IDDir("NA.TU"), certs.FolderCA))
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFolder(site.IDDir(name), iss, sitePEM, site.Server.Addr().String()); err != nil {
		t.Fatal(err)
	}
}

var moreLikeThis = regexp.MustCompile(`^(\d+) more like this in `)

// represented counts the refusals the entries stand for: one each, or
// "N more like this" for a summary.
func represented(es []store.AuditEntry) int {
	n := 0
	for _, e := range es {
		if m := moreLikeThis.FindStringSubmatch(e.Reason); m != nil {
			k, _ := strconv.Atoi(m[1])
			n += k
		} else {
			n++
		}
	}
	return n
}

// Refusals are audited aggregated (issue 15, finding 1): 1,000 denied
// requests from one terminal are one entry when they start and one summary
// per interval that counts the rest, exactly. The log stays verifiable and
// a normal terminal files and receives meanwhile.
func TestRefusalsAggregated(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		fastTimers(c)
		c.Audit.RefusalInterval = daemon.Duration(300 * time.Millisecond)
		c.Limits.HandshakeRate = 10000
	})
	st := site.Server.Store()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	hn := site.Dial("HN.UBND")
	start := time.Now()
	const denials = 1000
	for i := 0; i < denials; i++ {
		if _, err := hn.Queues(ctx, 0); !fault.Is(fault.Permission, err) {
			t.Fatalf("a terminal reading the queues: %v", err)
		}
	}
	intervals := int(time.Since(start)/(300*time.Millisecond)) + 2
	denied := func() []store.AuditEntry {
		es, err := st.QueryAudit(store.AuditQuery{Event: audit.Security, Agency: "HN.UBND", Limit: store.MaxQueryLimit})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	deadline := time.Now().Add(30 * time.Second)
	for represented(denied()) < denials && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	es := denied()
	if n := represented(es); n != denials {
		t.Fatalf("the audit log stands for %d denials, want %d", n, denials)
	}
	if len(es) > 2*intervals {
		t.Fatalf("%d entries for %d denials over %d intervals, want at most 2 per interval", len(es), denials, intervals)
	}
	t.Logf("%d denials: %d audit entries", denials, len(es))

	v, n := daemontest.VerifyAudit(t, st)
	if v == 0 || n == 0 {
		t.Fatal("the audit log did not verify")
	}
	healthy(t, site)
}

// 300 refused handshakes (another CA), each certificate with its own
// 2,000-character name, write at most the budget of entries per interval,
// each bounded; the rest are counted in one overflow entry.
func TestHandshakeRefusalsWithinBudget(t *testing.T) {
	const interval = 3 * time.Second
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		fastTimers(c)
		c.Audit.RefusalInterval = daemon.Duration(interval)
		c.Limits.HandshakeRate = 10000
	})
	st := site.Server.Store()
	sizeBefore := st.AuditSize()
	// Handshakes from another CA, each certificate with its own name.

	ca, err := certs.NewCA("rogue CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const rogues = 300
	start := time.Now()
	defer func() { t.Logf("the flood took %s", time.Since(start).Round(time.Millisecond)) }()
	for i := 0; i < rogues; i++ {
		name := "rogue" + strconv.Itoa(i)
		foreignIdentity(t, site, ca, name, fmt.Sprintf("rogue %d %s", i, strings.Repeat("x", 2000)))
		// In TLS 1.3 the client may be done before the switch has
		// looked at its certificate: wait for the switch's verdict.
		if c, err := rawDial(t, site, name, nil); err == nil {
			select {
			case <-c.Context().Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("handshake %d: a certificate from another CA kept its connection", i)
			}
		}
	}
	intervals := int(time.Since(start)/interval) + 2
	time.Sleep(interval + time.Second) // the last interval's summaries
	handshakes, err := st.QueryAudit(store.AuditQuery{Event: audit.Security, From: sizeBefore, Limit: store.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	var refused, overflow, bytes int
	for _, e := range handshakes {
		if e.From == "HN.UBND" {
			continue
		}
		l, _ := audit.Leaf(e)
		bytes += len(l)
		switch {
		case moreLikeThis.MatchString(e.Reason):
			refused++
		case strings.Contains(e.Reason, "handshake refused"):
			refused++
		case strings.Contains(e.Reason, "over the audit budget for refusals"):
			overflow++
		}
	}
	if refused+overflow > 100*intervals || overflow == 0 && refused != rogues {
		t.Fatalf("%d handshake entries and %d overflow summaries for %d refusals over %d intervals", refused, overflow, rogues, intervals)
	}
	t.Logf("%d refused handshakes: %d entries, %d overflow summaries, %d bytes of leaves", rogues, refused, overflow, bytes)
	if overflow == 0 {
		t.Fatalf("300 refusals in at most two intervals and no overflow summary")
	}
	for _, e := range handshakes {
		if len(e.Actor) > 256 {
			t.Fatalf("an actor of %d bytes", len(e.Actor))
		}
	}
	v, n := daemontest.VerifyAudit(t, st)
	if v == 0 || n == 0 {
		t.Fatal("the audit log did not verify")
	}
	healthy(t, site)
}

// Past retry_above connection attempts per second, a new connection must
// first prove its source address (QUIC Retry): real clients still get in,
// one round trip later, and the retries are counted.
func TestRetryPastTheThreshold(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) { c.Limits.RetryAbove = 1 }) // burst 2
	for i := 0; i < 6; i++ {
		c, err := rawDial(t, site, "HN.UBND", nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.CloseWithError(0, "")
	}
	mfs, err := site.Server.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	retries := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "dienbao_handshake_retries_total" {
			retries = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if retries < 1 {
		t.Fatalf("dienbao_handshake_retries_total = %v after 6 rapid connections over a threshold of 1 per second", retries)
	}
	t.Logf("6 connections, %v asked to retry", retries)
	healthy(t, site)
}

// A handshake without a client certificate is refused like any other:
// counted in the metrics and audited.
func TestNoCertificateCounted(t *testing.T) {
	site := daemontest.Start(t)
	if c, err := rawDial(t, site, "HN.UBND", func(c *tls.Config) { c.Certificates = nil }); err == nil {
		select {
		case <-c.Context().Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a connection without a client certificate was kept")
		}
	}
	mfs, err := site.Server.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "dienbao_handshake_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == "no_certificate" {
					n = m.GetCounter().GetValue()
				}
			}
		}
	}
	if n != 1 {
		t.Fatalf("dienbao_handshake_failures_total{reason=no_certificate} = %v, want 1", n)
	}
	if securityEntries(t, site, "no client certificate") != 1 {
		t.Fatal("the refusal was not audited once")
	}
	healthy(t, site)
}
