package server_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/envelope"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// agencyKey is the dev site's private key of agency (its first).
func agencyKey(t *testing.T, site *daemontest.Site, agency telegram.Address) *envelope.AgencyKey {
	t.Helper()
	ks, err := envelope.LoadKeys(site.IDDir(string(agency)))
	if err != nil || len(ks) == 0 {
		t.Fatalf("%s's keys: %d, %v", agency, len(ks), err)
	}
	return ks[0]
}

// publishedKeys reads the dev site's published keys, checked under its CA.
func publishedKeys(t *testing.T, site *daemontest.Site) *envelope.Directory {
	t.Helper()
	d, err := directory.Load(filepath.Join(site.Dir, "directory.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.LoadCA(filepath.Join(site.Dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := envelope.ParseFiles(d.Keys())
	if err != nil {
		t.Fatal(err)
	}
	dir, errs := envelope.NewDirectory(pub, []*x509.Certificate{ca.Cert})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return dir
}

// A telegram to three agencies (two action, one info) opens at each, and
// only there: another agency gets nothing, and the switch's records,
// read with its own keys, hold neither the body nor the subject.
func TestSealedOpensOnlyAtItsAddressees(t *testing.T) {
	site := daemontest.Start(t)
	const body, subject = "BODY-E2E-MARKER-91c2 nội dung mật", "SUBJECT-E2E-MARKER-3b7f"
	to := []telegram.Address{"NA.TU", "NA.UBND"}
	id := site.Send("HN.UBND", client.Telegram{To: to, Info: []telegram.Address{"CP.VPCP"}, Precedence: telegram.Immediate,
		Classification: telegram.Confidential, Subject: subject, Body: []byte(body)})
	for _, a := range []string{"NA.TU", "NA.UBND", "CP.VPCP"} {
		got := site.Receive(a, inbox)
		if len(got.Telegrams) != 1 {
			t.Fatalf("%s got %d telegrams", a, len(got.Telegrams))
		}
		d := got.Telegrams[0]
		if d.Header.ID != id || !d.Header.Sealed || d.Opened == nil || d.Header.Subject != subject || string(d.Body) != body {
			t.Fatalf("%s: sealed=%v opened=%v subject %q body %q", a, d.Header.Sealed, d.Opened != nil, d.Header.Subject, d.Body)
		}
		// The evidence kept checks offline, with the CA alone.
		ca, _ := certs.LoadCA(filepath.Join(site.Dir, "ca"))
		if _, err := envelope.Verify(d.Opened.Evidence, d.Header, []*x509.Certificate{ca.Cert}, nil); err != nil {
			t.Fatalf("%s: the kept evidence does not verify: %v", a, err)
		}
	}
	if got := site.Receive("TW.VPTW", inbox); len(got.Telegrams) != 0 {
		t.Fatalf("TW.VPTW got %d telegrams", len(got.Telegrams))
	}
	// What the switch carried: its journal copy is the envelope, which
	// TW.VPTW's key (not an addressee) cannot open.
	h, sealed, err := site.Dial("auditor").Retrieve(context.Background(), id)
	if err != nil || !h.Sealed {
		t.Fatalf("auditor's copy: %v sealed=%v", err, h.Sealed)
	}
	if _, err := envelope.Open(sealed, h, "TW.VPTW", []*envelope.AgencyKey{agencyKey(t, site, "TW.VPTW")}, publishedKeys(t, site)); err == nil {
		t.Fatal("TW.VPTW's key opened a telegram not sealed for it")
	}
	// The audit log's filing entry names the envelope's signed header.
	e, err := envelope.Parse(sealed)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := site.Dial("auditor").AuditQuery(context.Background(), auditQueryID(id))
	if err != nil {
		t.Fatal(err)
	}
	if !hasEntry(entries.Entries, audit.Filed, "sealed "+e.Digest()) {
		t.Fatalf("no filed entry naming the envelope %s: %+v", e.Digest(), entries.Entries)
	}
	// A plain telegram where the site allows it: the scan below finds its
	// body, so it can tell.
	plainSite := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) { c.EndToEnd.AllowPlain = []string{"UNCLASSIFIED"} })
	plainSite.Send("HN.UBND", client.Telegram{To: to, Body: []byte("PLAIN-CONTROL-MARKER-55d0"), Plain: true})
	site.Stop()
	plainSite.Stop()
	if !bytes.Contains(openedRecords(t, plainSite.Dir), []byte("PLAIN-CONTROL-MARKER-55d0")) {
		t.Fatal("the scan of a switch's records with its keys does not find a plain body: it proves nothing")
	}
	recs := openedRecords(t, site.Dir)
	for _, m := range []string{"BODY-E2E-MARKER-91c2", "SUBJECT-E2E-MARKER-3b7f", "nội dung mật"} {
		if bytes.Contains(recs, []byte(m)) {
			t.Fatalf("the switch's records, opened with its own keys, hold %q", m)
		}
	}
}

// openedRecords is every record of the stopped dev site in dir, its value
// opened with the switch's own keyring: what the switch itself can read.
func openedRecords(t *testing.T, dir string) []byte {
	t.Helper()
	cfg, err := daemon.LoadConfig(filepath.Join(dir, "switchd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := daemon.OpenKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.OpenReplica(daemon.StoreDir(cfg), ring)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b bytes.Buffer
	if _, err := r.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func hasEntry(es []audit.Entry, event, reason string) bool {
	for _, e := range es {
		if e.Event == event && e.Reason == reason {
			return true
		}
	}
	return false
}

// reportsFor collects HN.UBND's reports on ids for NA.TU, in whatever
// order they come.
func reportsFor(t *testing.T, reports <-chan telegram.Receipt, ids ...telegram.ID) map[telegram.ID]telegram.Receipt {
	t.Helper()
	out := map[telegram.ID]telegram.Receipt{}
	timeout := time.After(60 * time.Second)
	for len(out) < len(ids) {
		select {
		case r := <-reports:
			if r.Addressee == "NA.TU" && slices.Contains(ids, r.ID) {
				out[r.ID] = r
			}
		case <-timeout:
			t.Fatalf("reports on %v: only %d of %d in 60 s", ids, len(out), len(ids))
		}
	}
	return out
}

// rejectedWith checks that the report r is NOT_DELIVERED with reason,
// and that the audit log says rejected.
func rejectedWith(t *testing.T, site *daemontest.Site, r telegram.Receipt, reason string) {
	t.Helper()
	if r.Status != telegram.NotDelivered || r.Reason != reason {
		t.Fatalf("report on %s: %s %q, want NOT_DELIVERED %q", r.ID, r.Status, r.Reason, reason)
	}
	entries, err := site.Dial("auditor").AuditQuery(context.Background(), auditQueryID(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries.Entries {
		if e.Event == audit.Rejected && e.To == "NA.TU" && strings.HasPrefix(e.Reason, reason+": ") {
			return
		}
	}
	t.Fatalf("no rejected entry for %s: %+v", r.ID, entries.Entries)
}

// What a switch (or anyone on the way) could do to a sealed telegram, each
// refused at the addressee's terminal with the right report to the
// sender, never handed over as valid: a header raised, the sealed body
// altered, a body sealed for another agency, a telegram replayed under a
// new ID, a signature by a revoked key.
func TestTamperedTelegramsAreRefusedAtTheTerminal(t *testing.T) {
	site := daemontest.Start(t)
	dir := publishedKeys(t, site)
	hn, naTU, naUBND := agencyKey(t, site, "HN.UBND"), agencyKey(t, site, "NA.TU"), agencyKey(t, site, "NA.UBND")
	certOf := func(k *envelope.AgencyKey) *envelope.Cert {
		c, ok := dir.Cert(k.Serial)
		if !ok {
			t.Fatalf("key %s not published", k.Serial)
		}
		return c
	}
	plain := envelope.Plain{Fields: envelope.Fields{From: "HN.UBND", To: []telegram.Address{"NA.TU"}, Precedence: telegram.Routine,
		Classification: telegram.Confidential}, Content: envelope.Content{Body: []byte("thật")}}
	seal := func(p envelope.Plain, wraps map[telegram.Address]*envelope.Cert) []byte {
		env, _, err := envelope.Seal(p, hn, wraps)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	good := map[telegram.Address]*envelope.Cert{"HN.UBND": certOf(hn), "NA.TU": certOf(naTU)}
	file := func(p envelope.Plain, env []byte) telegram.ID {
		return site.Send("HN.UBND", client.Telegram{To: p.To, Precedence: p.Precedence, Classification: p.Classification, Body: env, Plain: true})
	}
	reports := follow(t, site, "HN.UBND")

	// A header raised on the way: the signed header (and the switch's
	// header) say FLASH, the signature was made over ROUTINE.
	env := seal(plain, good)
	raised := bytes.Replace(env, []byte{0x05, byte(telegram.Routine)}, []byte{0x05, byte(telegram.Flash)}, 1)
	p2 := plain
	p2.Precedence = telegram.Flash
	idRaised := file(p2, raised)

	// The sealed body altered: its last byte.
	altered := seal(plain, good)
	altered[len(altered)-1] ^= 0x40
	idAltered := file(plain, altered)

	// Sealed for another agency: NA.TU's wrap holds NA.UBND's.
	other := seal(plain, map[telegram.Address]*envelope.Cert{"HN.UBND": certOf(hn), "NA.TU": certOf(naUBND)})
	idOther := file(plain, other)

	// The same signed telegram filed twice: the second is a replay.
	replayed := seal(plain, good)
	idFirst := file(plain, replayed)
	idReplay := file(plain, replayed)

	col := &daemontest.Collector{Inbox: &client.Inbox{Dir: t.TempDir()}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := site.Dial("NA.TU").Receive(ctx, inbox, col); err != nil {
		t.Fatal(err)
	}
	if len(col.Telegrams) != 1 || col.Telegrams[0].Header.ID != idFirst || string(col.Telegrams[0].Body) != "thật" {
		t.Fatalf("NA.TU took %d telegrams as valid, want only %s", len(col.Telegrams), idFirst)
	}
	got := reportsFor(t, reports, idFirst, idRaised, idAltered, idOther, idReplay)
	if got[idFirst].Status != telegram.Delivered {
		t.Fatalf("the valid one: %+v", got[idFirst])
	}
	rejectedWith(t, site, got[idRaised], envelope.ReasonSignature)
	rejectedWith(t, site, got[idAltered], envelope.ReasonSignature)
	rejectedWith(t, site, got[idOther], envelope.ReasonUnreadable)
	rejectedWith(t, site, got[idReplay], envelope.ReasonSignature)

	// HN.UBND's key is revoked (stolen): a telegram the thief signs with
	// it afterwards is refused; one filed before stays valid.
	ca, err := certs.LoadCA(filepath.Join(site.Dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	before := file(plain, seal(plain, good))
	time.Sleep(10 * time.Millisecond)
	rv, err := envelope.Revoke(ca.Key, envelope.RevocationBody{Agency: "HN.UBND", Serial: hn.Serial, RevokedAt: time.Now(), Reason: "stolen"})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, site, "revoked-hn.pem", envelope.EncodePEM("revocation", rv))
	after := file(plain, seal(plain, good))
	col = &daemontest.Collector{}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := site.Dial("NA.TU").Receive(ctx2, inbox, col); err != nil {
		t.Fatal(err)
	}
	if len(col.Telegrams) != 1 || col.Telegrams[0].Header.ID != before {
		t.Fatalf("after the revocation NA.TU took %d telegrams as valid, want only %s (filed before it)", len(col.Telegrams), before)
	}
	got = reportsFor(t, reports, before, after)
	if got[before].Status != telegram.Delivered {
		t.Fatalf("filed before the revocation: %+v", got[before])
	}
	rejectedWith(t, site, got[after], envelope.ReasonSignature)
	// The terminal of the revoked key cannot seal any more.
	if _, err := site.Dial("HN.UBND").Send(context.Background(), client.Telegram{To: plain.To, Body: []byte("x")}); err == nil {
		t.Fatal("a terminal whose only key is revoked filed a sealed telegram")
	}
}

// publish adds a PEM file to the dev site's keys folder and reloads the
// directory, as an operator does (then SIGHUP).
func publish(t *testing.T, site *daemontest.Site, name string, pem []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(site.Dir, daemon.DevKeysDir, name), pem, 0o644); err != nil {
		t.Fatal(err)
	}
	site.ReloadDirectory()
}

func auditQueryID(id telegram.ID) wire.AuditQuery { return wire.AuditQuery{ID: id, Limit: 1000} }

// The switch watches the directory's keys folder as it watches the
// directory file: a revocation put there is served within a timer
// interval, with no SIGHUP.
func TestKeysFolderIsWatched(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, fastTimers)
	ca, err := certs.LoadCA(filepath.Join(site.Dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	c := site.Dial("HN.UBND")
	got, err := c.AgencyKeys(context.Background(), []telegram.Address{"NA.TU"})
	if err != nil || len(got.Certs) != 1 || len(got.Revocations) != 0 {
		t.Fatalf("before: %d certificates, %d revocations, %v", len(got.Certs), len(got.Revocations), err)
	}
	rv, err := envelope.Revoke(ca.Key, envelope.RevocationBody{Agency: "NA.TU", Serial: agencyKey(t, site, "NA.TU").Serial, RevokedAt: time.Now(), Reason: "lost"})
	if err != nil {
		t.Fatal(err)
	}
	// With it, a key of NA.TU certified by another CA: left out.
	other, err := certs.NewCA("not the network's CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k, err := envelope.NewAgencyKey("NA.TU")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := envelope.Certify(other.Key, k.Public(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site.Dir, daemon.DevKeysDir, "NA.TU-rogue.pem"), envelope.EncodePEM("cert", rogue), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site.Dir, daemon.DevKeysDir, "NA.TU-revoked.pem"), envelope.EncodePEM("revocation", rv), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = c.AgencyKeys(context.Background(), []telegram.Address{"NA.TU"})
		if err == nil && len(got.Revocations) == 1 {
			if len(got.Certs) != 1 {
				t.Fatalf("%d certificates of NA.TU served, want 1: the one another CA signed is left out", len(got.Certs))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revocation was not served within 10 s: %d revocations, %v", len(got.Revocations), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
