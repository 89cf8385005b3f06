package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// rogueFolder makes an identity folder for NA.TU whose certificate comes
// from another CA (it still trusts the site's CA, to reach the handshake).
func rogueFolder(t *testing.T, site *daemontest.Site) *certs.Folder {
	t.Helper()
	ca, err := certs.NewCA("rogue CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(certs.Request{Name: "rogue terminal", Role: certs.Terminal, Agency: "NA.TU",
		Clearance: telegram.Secret, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sitePEM, err := os.ReadFile(filepath.Join(site.IDDir("NA.TU"), certs.FolderCA))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "rogue")
	if err := certs.WriteFolder(dir, iss, sitePEM, site.Server.Addr().String()); err != nil {
		t.Fatal(err)
	}
	f, err := certs.LoadFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// waitAudit waits until the live log holds n entries of event.
func waitAudit(t *testing.T, site *daemontest.Site, event string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		es, err := site.Server.Store().QueryAudit(store.AuditQuery{Event: event, Limit: store.MaxQueryLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s entries, want %d", len(es), event, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every step the issue lists is recorded, once, by driving the real switch;
// no entry carries a subject or body; and the whole log, across the
// switch's start and stop, verifies against its signed checkpoints.
func TestEveryStepIsAudited(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartWith(t, dir, nil, func(c *daemon.Config) {
		fastTimers(c)
		c.Custody.AckTimeout = daemon.Duration(200 * time.Millisecond)
		c.Custody.MaxAttempts = 1
		c.Speed.Priority = daemon.Duration(100 * time.Millisecond)
	})
	reports := follow(t, site, "HN.UBND")
	secret := func(s string) client.Telegram {
		m := tg("", telegram.Routine, "body "+s)
		m.Subject = "subject " + s
		return m
	}
	// Delivered.
	m := secret("delivered")
	m.To = []telegram.Address{"NA.TU"}
	delivered := site.Send("HN.UBND", m)
	if got := site.Receive("NA.TU", inbox); len(got.Telegrams) != 1 {
		t.Fatalf("NA.TU received %d telegrams", len(got.Telegrams))
	}
	// Overdue, then expired, for an agency that never connects.
	m = secret("expired")
	m.To, m.Precedence, m.ExpiresAt = []telegram.Address{"DN.UBND"}, telegram.Priority, time.Now().Add(time.Second)
	expired := site.Send("HN.UBND", m)
	// Parked: handed out once, never acknowledged.
	m = secret("parked")
	m.To = []telegram.Address{"NA.UBND"}
	parked := site.Send("HN.UBND", m)
	c := site.Dial("NA.UBND")
	if err := c.Receive(context.Background(), inbox, &stall{c: c}); err == nil {
		t.Fatal("the stalled receive ended cleanly")
	}
	site.Receive("NA.UBND", inbox) // finds it out of attempts: parked
	pending := map[telegram.ID]bool{delivered: true, expired: true, parked: true}
	for timeout := time.After(60 * time.Second); len(pending) > 0; {
		select {
		case r := <-reports:
			delete(pending, r.ID)
		case <-timeout:
			t.Fatalf("no delivery report for %v", pending)
		}
	}
	// Refused filing, denied request, refused handshake, key rotation.
	m = secret("refused")
	m.To = []telegram.Address{"XX.NOWHERE"}
	if _, err := site.Dial("HN.UBND").Send(context.Background(), m); err == nil {
		t.Fatal("a filing to an unknown agency was accepted")
	}
	if _, err := site.Dial("NA.TU").AuditQuery(context.Background(), wire.AuditQuery{Agency: "HN.UBND"}); !fault.Is(fault.Permission, err) {
		t.Fatalf("a terminal read another agency's audit entries: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// In TLS 1.3 the client may finish its side of the handshake before the
	// switch refuses its certificate: the refusal shows at the first request.
	if c, err := client.Dial(ctx, rogueFolder(t, site)); err == nil {
		_, _, err = c.AuditCheckpoint(ctx)
		c.Close()
		if err == nil {
			t.Fatal("a certificate from another CA was accepted")
		}
	}
	if _, err := site.Dial("operator").RotateKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitAudit(t, site, audit.ReportDelivered, 3)
	waitAudit(t, site, audit.Security, 2) // the handshake refusal is recorded without waiting
	site.Stop()

	st := daemontest.OpenStore(t, dir)
	defer st.Close()
	entries, err := st.Audit(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	of := map[telegram.ID]map[string]int{delivered: {}, expired: {}, parked: {}}
	for i, e := range entries {
		if e.Index != uint64(i) {
			t.Fatalf("entry %d has index %d", i, e.Index)
		}
		count[e.Event]++
		if of[e.ID] != nil {
			of[e.ID][e.Event]++
			if e.From != "HN.UBND" {
				t.Errorf("entry %d (%s) names sender %q", i, e.Event, e.From)
			}
		}
		leaf, _ := audit.Leaf(e)
		if strings.Contains(string(leaf), "subject ") || strings.Contains(string(leaf), "body ") {
			t.Fatalf("entry %d carries a subject or body: %s", i, leaf)
		}
	}
	want := map[string]int{audit.SwitchStart: 1, audit.SwitchStop: 1, audit.Filed: 3, audit.Queued: 3,
		audit.Attempt: 2, audit.Delivered: 1, audit.Expired: 1, audit.Parked: 1, audit.ReportQueued: 3,
		audit.ReportDelivered: 3, audit.Refused: 1, audit.Security: 2}
	for ev, n := range want {
		if count[ev] != n {
			t.Errorf("%d %s entries, want %d", count[ev], ev, n)
		}
	}
	if count[audit.KeyRotation] < 1 || count[audit.Overdue] < 1 {
		t.Errorf("%d key_rotation and %d overdue entries, want at least one each", count[audit.KeyRotation], count[audit.Overdue])
	}
	for id, want := range map[telegram.ID]map[string]int{
		delivered: {audit.Filed: 1, audit.Queued: 1, audit.Attempt: 1, audit.Delivered: 1, audit.ReportQueued: 1, audit.ReportDelivered: 1},
		expired:   {audit.Filed: 1, audit.Queued: 1, audit.Overdue: 1, audit.Expired: 1, audit.ReportQueued: 1, audit.ReportDelivered: 1},
		parked:    {audit.Filed: 1, audit.Queued: 1, audit.Attempt: 1, audit.Parked: 1, audit.ReportQueued: 1, audit.ReportDelivered: 1},
	} {
		for ev, n := range want {
			if of[id][ev] != n {
				t.Errorf("telegram %s: %d %s entries, want %d", id, of[id][ev], ev, n)
			}
		}
	}
	var refused, denied, handshake bool
	for _, e := range entries {
		switch {
		case e.Event == audit.Refused:
			refused = e.From == "HN.UBND" && strings.Contains(e.Reason, "XX.NOWHERE")
		case e.Event == audit.Security && strings.Contains(e.Reason, "handshake refused"):
			handshake = strings.Contains(e.Actor, "rogue terminal") && strings.Contains(e.Reason, "127.0.0.1")
		case e.Event == audit.Security:
			denied = e.From == "NA.TU" && strings.Contains(e.Reason, "request denied")
		case e.Event == audit.Filed:
			if e.Actor != "HN.UBND/HN.UBND (dev)" {
				t.Errorf("filed by %q, want the certificate's identity", e.Actor)
			}
		}
	}
	if !refused || !denied || !handshake {
		t.Errorf("refusal recorded %v, denial %v, handshake %v", refused, denied, handshake)
	}
	// The log verifies against every checkpoint signed while it ran (at
	// least the one at start and the one at stop, which covers it all).
	if size, n := daemontest.VerifyAudit(t, st); size != uint64(len(entries)) || n < 2 {
		t.Fatalf("%d checkpoints over a log of %d", n, size)
	}
}

// A terminal whose folder trusts another CA than the switch's is told the
// switch is not its network's, as a permission error (exit 3 in tg), not
// "cannot reach".
func TestSwitchFromAnotherCA(t *testing.T) {
	site := daemontest.Start(t)
	other, err := certs.NewCA("other network", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f, err := certs.LoadFolder(site.IDDir("NA.TU"))
	if err != nil {
		t.Fatal(err)
	}
	f.CAs = other.Pool()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = client.Dial(ctx, f)
	if !fault.Is(fault.Permission, err) || !strings.Contains(err.Error(), "did not issue") {
		t.Fatalf("dialing a switch of another CA: %v, want a permission error saying so", err)
	}
}
