package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Revocation bites: tg certs revoke writes a standard CRL; the switch picks
// it up by itself, closes the live session of the revoked certificate
// within seconds and refuses it at the next handshake, audited; a CRL past
// its next-update time refuses everyone until a fresh one is installed.
func TestRevocationBites(t *testing.T) {
	dir := t.TempDir()
	grace := daemon.Duration(2 * time.Second)
	site := daemontest.StartWith(t, dir, nil, func(c *daemon.Config) {
		c.Custody.TimerInterval = daemon.Duration(50 * time.Millisecond)
		c.Revocation.Grace = &grace
	})
	caDir := filepath.Join(dir, "ca")
	second := filepath.Join(dir, "ids", "NA.TU-2")
	r := tg(t, "", "certs", "issue", "--ca", caDir, "--role", "terminal", "--name", "NA.TU terminal 2", "--agency", "NA.TU",
		"--clearance", "SECRET", "--switch", site.Server.Addr().String(), "--out", second)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	f, err := certs.LoadFolder(second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live, err := client.Dial(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		ended <- live.Receive(context.Background(), client.ReceiveOptions{Inbox: true, Follow: true}, &daemontest.Collector{})
	}()

	r = tg(t, "", "certs", "revoke", "--ca", caDir, "--cert", second, "--reason", "keyCompromise")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "revoked ") {
		t.Fatalf("revoke: %d %q %s", r.code, r.stdout, r.stderr)
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the revoked terminal's session ended cleanly, want it closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked terminal's live session was not closed within 10 s")
	}
	if c, err := client.Dial(ctx, f); err == nil {
		_, _, err = c.AuditCheckpoint(ctx)
		c.Close()
		if err == nil {
			t.Fatal("a revoked certificate was accepted at a new handshake")
		}
	}
	// Everyone else is served.
	id := site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Body: []byte("x")})
	if got := site.Receive("NA.TU", client.ReceiveOptions{Inbox: true}); len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id {
		t.Fatalf("NA.TU's own terminal got %d telegrams", len(got.Telegrams))
	}
	closed, refused := 0, 0
	for _, m := range jsonLines(t, tg(t, "", "--id", site.IDDir("auditor"), "--json", "audit", "query", "--event", "security").stdout) {
		reason := m["reason"].(string)
		if strings.Contains(reason, "certificate revoked: session from") && m["actor"] == "NA.TU/NA.TU terminal 2" {
			closed++
		}
		if strings.Contains(reason, "handshake refused") && strings.Contains(reason, "certificate revoked") {
			refused++
		}
	}
	if closed != 1 || refused != 1 {
		t.Fatalf("audited: %d sessions closed, %d handshakes refused; want 1 and 1", closed, refused)
	}
	// A standard CRL: openssl reads it.
	if openssl, err := exec.LookPath("openssl"); err == nil {
		out, err := exec.Command(openssl, "crl", "-in", filepath.Join(caDir, certs.CRLFile), "-noout", "-text").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Key Compromise") || !strings.Contains(string(out), "Next Update") {
			t.Fatalf("openssl crl: %v\n%s", err, out)
		}
	}

	// A CRL that goes stale: still used for its grace (audited), then
	// everyone is refused, until a fresh one.
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	short, err := ca.CRL(caDir, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteCRL(filepath.Join(caDir, certs.CRLFile), short); err != nil {
		t.Fatal(err)
	}
	hn := site.Dial("HN.UBND")
	time.Sleep(2 * time.Second) // past its next update, within its grace
	if _, err := hn.Send(context.Background(), client.Telegram{To: []telegram.Address{"NA.TU"}, Body: []byte("in the grace")}); err != nil {
		t.Fatalf("refused within the CRL's grace: %v", err)
	}
	if inGrace := countAudited(t, site.IDDir("auditor"), "security", "still used for its grace"); inGrace != 1 {
		t.Fatalf("%d audit entries for a CRL in its grace, want 1", inGrace)
	}
	time.Sleep(2 * time.Second) // past its grace
	if _, err := hn.Send(context.Background(), client.Telegram{To: []telegram.Address{"NA.TU"}, Body: []byte("x")}); err == nil {
		t.Fatal("a session survived a stale CRL")
	}
	hf, _ := certs.LoadFolder(site.IDDir("HN.UBND"))
	if c, err := client.Dial(ctx, hf); err == nil {
		_, err = c.Send(ctx, client.Telegram{To: []telegram.Address{"NA.TU"}, Body: []byte("x")})
		c.Close()
		if !fault.Is(fault.Unavailable, err) && err == nil {
			t.Fatal("a handshake succeeded with a stale CRL")
		}
	}
	if r = tg(t, "", "certs", "crl", "--ca", caDir, "--days", "1"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// The switch picks the fresh CRL up within a timer tick: served again.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := client.Dial(ctx, hf)
		if err == nil {
			_, err = c.Send(ctx, client.Telegram{To: []telegram.Address{"NA.TU"}, Body: []byte("after a fresh CRL")})
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after a fresh CRL: %v", err)
		}
	}
}

// A switch with [revocation] renew_from signs its own CRL before the one
// in force reaches its next update, from the issuing CA's folder, puts it
// in force, and audits it: nobody is locked out by a CRL nobody renewed.
func TestCRLRenewedBySwitch(t *testing.T) {
	dir := t.TempDir()
	before, validity, grace := daemon.Duration(3*time.Second), daemon.Duration(time.Hour), daemon.Duration(0)
	caDir := filepath.Join(dir, "ca")
	site := daemontest.StartWith(t, dir, nil, func(c *daemon.Config) {
		c.Custody.TimerInterval = daemon.Duration(50 * time.Millisecond)
		c.Revocation = daemon.Revocation{RenewFrom: caDir, RenewBefore: &before, Validity: &validity, Grace: &grace}
	})
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	short, err := ca.CRL(caDir, 2*time.Second) // due for renewal at once
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteCRL(filepath.Join(caDir, certs.CRLFile), short); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the short CRL's next update has passed
	id := site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Body: []byte("x")})
	if got := site.Receive("NA.TU", client.ReceiveOptions{Inbox: true}); len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id {
		t.Fatalf("NA.TU got %d telegrams after the CRL's renewal", len(got.Telegrams))
	}
	r := tg(t, "", "--json", "certs", "inspect", filepath.Join(caDir, certs.CRLFile))
	m := jsonLines(t, r.stdout)
	if r.code != 0 || len(m) != 1 || m[0]["expires_in_days"].(float64) != 0 || m[0]["kind"] != "crl" {
		t.Fatalf("tg certs inspect crl.pem: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if next, _ := time.Parse(time.RFC3339, m[0]["next_update"].(string)); time.Until(next) < 50*time.Minute {
		t.Fatalf("the CRL in the file ends at %v, want about an hour from now", next)
	}
	if renewed := countAudited(t, site.IDDir("auditor"), "revocation", "the switch signed a fresh revocation list"); renewed != 1 {
		t.Fatalf("%d renewals audited, want 1", renewed)
	}
}

// countAudited counts the audit entries of event whose reason contains
// text, as the auditor in idDir queries them.
func countAudited(t *testing.T, idDir, event, text string) int {
	t.Helper()
	n := 0
	for _, e := range jsonLines(t, tg(t, "", "--id", idDir, "--json", "audit", "query", "--event", event).stdout) {
		if strings.Contains(e["reason"].(string), text) {
			n++
		}
	}
	return n
}
