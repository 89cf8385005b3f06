package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// dataFiles reads every file under the dev site's data folder.
func dataFiles(t *testing.T, site *daemontest.Site) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	root := filepath.Join(site.Dir, "data")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = b
		return err
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("reading %s: %d files, %v", root, len(out), err)
	}
	return out
}

// Nothing readable at rest: after filing, delivering and leaving telegrams
// queued, and archiving the audit log, no byte under the data folder
// (value logs, tables, write-ahead logs, manifest, keyring, audit archive
// files, and the leaves inside those) holds a body, a subject, a
// reference or an agency address.
func TestNothingReadableAtRest(t *testing.T) {
	site := daemontest.Start(t)
	markers := []string{"BODY-MARKER-5e1f", "SUBJECT-MARKER-77aa", "REF-MARKER-0c3d"}
	senders := []string{"TW.VPTW", "HN.UBND", "CP.VPCP"}
	for i, from := range senders {
		for _, p := range telegram.Precedences {
			// Small bodies stay in Badger's tables; 200 KiB ones go to the
			// value log.
			body := markers[0] + " " + strings.Repeat("x", []int{10, 200 << 10}[i%2])
			site.Send(from, client.Telegram{To: []telegram.Address{"NA.UBND", "HCM.UBND"}, Info: []telegram.Address{"DN.UBND"},
				Precedence: p, Subject: markers[1], Ref: markers[2] + from + p.String(), Body: []byte(body)})
		}
	}
	site.Receive("NA.UBND", inbox) // some delivered, reports queued; HCM and DN still waiting
	// Audit entries moved out to an archive file are as sealed as those
	// kept in the store.
	auditor := site.Dial("auditor")
	ctx := context.Background()
	if _, _, err := auditor.AuditCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Duration(0)
	archived, err := auditor.AuditArchive(ctx, &now)
	if err != nil || len(archived.Files) != 1 || archived.Entries == 0 {
		t.Fatalf("archive: %+v, %v; want one file", archived, err)
	}
	site.Stop()
	// The file is JSON, its leaves base64: look inside them too.
	_, lines, err := audit.ReadArchiveLines(filepath.Join(site.Dir, "data", "audit-archive", archived.Files[0]))
	if err != nil || uint64(len(lines)) != archived.Entries {
		t.Fatalf("the archive file in the data folder: %d entries, %v; want %d", len(lines), err, archived.Entries)
	}
	var leaves []byte
	for _, l := range lines {
		leaves = append(leaves, l.Sealed...)
	}

	var agencies []string
	for _, a := range daemon.DevAgencies {
		agencies = append(agencies, string(a.Address))
	}
	files := dataFiles(t, site)
	files["the archive file's leaves"] = leaves
	for path, b := range files {
		for _, m := range append(markers, agencies...) {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s holds %q in plaintext", path, m)
			}
		}
	}
}

// A record altered, or moved from another telegram, is never delivered:
// the switch reports an integrity error for that telegram, parks it for
// an operator, and goes on delivering the rest.
func TestTamperedRecordsAreReportedNotDelivered(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	altered := site.Send("HN.UBND", tg("NA.TU", telegram.Flash, "header will be altered"))
	moved := site.Send("HN.UBND", tg("NA.TU", telegram.Immediate, "body will be replaced"))
	intact := site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "intact"))
	deleted := site.Send("HN.UBND", tg("NA.TU", telegram.Priority, "header will be deleted"))
	site.Stop()

	st := daemontest.OpenStore(t, site.Dir)
	headerKey := st.HeaderKey
	bodyKey := func(id telegram.ID) []byte { return st.BodyKey(id, 0) }
	err := st.DB().Update(func(txn *badger.Txn) error {
		item, err := txn.Get(headerKey(altered))
		if err != nil {
			return err
		}
		v, _ := item.ValueCopy(nil)
		v[len(v)-5] ^= 0x40 // one bit of the sealed header
		if err := txn.Set(headerKey(altered), v); err != nil {
			return err
		}
		// The intact telegram's (validly sealed) body, copied over the
		// other one's: a record moved to another key.
		item, err = txn.Get(bodyKey(intact))
		if err != nil {
			return err
		}
		v, _ = item.ValueCopy(nil)
		if err := txn.Set(bodyKey(moved), v); err != nil {
			return err
		}
		return txn.Delete(headerKey(deleted))
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	site = daemontest.StartIn(t, dir)
	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != intact || string(got.Telegrams[0].Body) != "intact" {
		var ids []string
		for _, d := range got.Telegrams {
			ids = append(ids, d.Header.ID.String()+":"+string(d.Body))
		}
		t.Fatalf("delivered %v, want only the intact telegram", ids)
	}
	for _, id := range []telegram.ID{altered, moved, deleted} {
		if n := auditCount(t, site, store.AuditIntegrity, id); n != 1 {
			t.Errorf("%s: %d integrity audit records, want 1", id, n)
		}
	}
	parked, _ := site.Server.Store().Parked("NA.TU", 10)
	if len(parked) != 3 {
		t.Errorf("%d telegrams parked for an operator, want 3", len(parked))
	}
	// Nothing is waiting any more, and the switch still serves.
	site.Send("TW.VPTW", tg("NA.TU", telegram.Priority, "after"))
	if again := site.Receive("NA.TU", inbox); len(again.Telegrams) != 1 {
		t.Fatalf("after the quarantine, received %d, want 1", len(again.Telegrams))
	}
}

// A wrong key file is refused in one line, and nothing under the data
// folder changes.
func TestWrongKeyFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "kept"))
	site.Stop()
	hash := func() map[string][32]byte {
		out := map[string][32]byte{}
		for p, b := range dataFiles(t, site) {
			out[p] = sha256.Sum256(b)
		}
		return out
	}
	before := hash()
	cfg, err := daemon.LoadConfig(filepath.Join(dir, "switchd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.KeyFile = filepath.Join(t.TempDir(), "wrong.key")
	if err := crypto.NewKeyFile(cfg.KeyFile); err != nil {
		t.Fatal(err)
	}
	_, err = daemon.Start(daemon.Options{Config: cfg, KeepRuntime: true})
	if err == nil || !strings.Contains(err.Error(), "wrong passphrase or key file") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("start with a wrong key file: %v", err)
	}
	after := hash()
	if len(after) != len(before) {
		t.Fatalf("%d files before, %d after", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed", p)
		}
	}
	// The right key still opens it, with everything there.
	site = daemontest.StartIn(t, dir)
	if got := site.Receive("NA.TU", inbox); len(got.Telegrams) != 1 {
		t.Fatalf("after the refused start, received %d, want 1", len(got.Telegrams))
	}
}

// Damage past the first chunk of a large body is found mid-delivery: the
// telegram is quarantined, that connection is closed (its stream is cut
// mid-body), and a terminal that reconnects gets everything else.
func TestTamperedLargeBodyMidDelivery(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	big := site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Precedence: telegram.Flash,
		Body: bytes.Repeat([]byte("b"), 200<<10)})
	other := site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "other"))
	site.Stop()
	flipStoredBit(t, dir, func(st *store.Store) []byte { return st.BodyKey(big, 1) }, 100)
	site = daemontest.StartIn(t, dir)
	col := &daemontest.Collector{}
	var err2 error
	for try := 0; try < 3; try++ { // a terminal reconnects after a cut
		if err2 = site.Dial("NA.TU").Receive(t.Context(), inbox, col); err2 == nil {
			break
		}
	}
	if err2 != nil {
		t.Fatal(err2)
	}
	// The other telegram may have gone out on the cut connection too, its
	// acknowledgement lost with it: then it comes again, flagged as a
	// possible duplicate (the terminal's store by ID keeps one).
	if len(col.Telegrams) == 0 {
		t.Fatalf("delivered nothing, want %s", other)
	}
	for i, d := range col.Telegrams {
		if d.Header.ID != other || (i > 0 && !d.PossibleDuplicate) {
			t.Fatalf("delivery %d: %s (possible duplicate %v), want only %s, repeats flagged", i, d.Header.ID, d.PossibleDuplicate, other)
		}
	}
	if n := auditCount(t, site, store.AuditIntegrity, big); n != 1 {
		t.Fatalf("%d integrity audit records for the damaged telegram, want 1", n)
	}
}

// Changing the secret re-wraps the keys only: every record stays as it is,
// the old key file no longer opens the keyring, the new passphrase does,
// and nothing is re-wrapped while a switch runs.
func TestRewrap(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "kept across the re-wrap"))
	cfg, err := daemon.LoadConfig(filepath.Join(dir, "switchd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(passFile, []byte("một mật khẩu dài\n"), 0o600)
	to, err := daemon.NewSecret("", passFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Rewrap(cfg, to); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("re-wrap while the switch runs: %v", err)
	}
	site.Stop()
	storeFiles := func() map[string][32]byte {
		out := map[string][32]byte{}
		for p, b := range dataFiles(t, site) {
			if filepath.Base(p) != crypto.KeyringFile {
				out[p] = sha256.Sum256(b)
			}
		}
		return out
	}
	before := storeFiles()
	if err := daemon.Rewrap(cfg, to); err != nil {
		t.Fatal(err)
	}
	after := storeFiles()
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed: a re-wrap must touch the keyring only", p)
		}
	}
	if _, err := daemon.Start(daemon.Options{Config: cfg, KeepRuntime: true}); err == nil ||
		!strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("start with the old key file after the re-wrap: %v", err)
	}
	// The config now names the passphrase instead of the key file.
	cfg2 := *cfg
	cfg2.KeyFile, cfg2.PassphraseFile = "", passFile
	srv, err := daemon.Start(daemon.Options{Config: &cfg2, KeepRuntime: true})
	if err != nil {
		t.Fatalf("start with the new passphrase: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	h, err := srv.Store().Audit(0, 100)
	cancel()
	<-done
	if err != nil || len(h) == 0 {
		t.Fatalf("store unreadable after re-wrap: %v", err)
	}
}

// The same in a network of switches: the records relaying adds (the
// register of agencies served elsewhere, the links' sequence numbers, the
// witness key and the checkpoints cosigned) hold no agency address, no
// body and no key in plaintext at the switch that relayed.
func TestNothingReadableAtRestInANetwork(t *testing.T) {
	quick := func(c *daemon.Config) { c.Audit.CheckpointInterval = daemon.Duration(200 * time.Millisecond) }
	n := daemontest.CentreAndProvinces(t, quick)
	hn, tw, na := n.Sites["HN"], n.Sites["TW"], n.Sites["NA"]
	marker := "RELAYED-BODY-MARKER-41c9"
	for _, p := range telegram.Precedences {
		hn.Send("HN.UBND", client.Telegram{To: []telegram.Address{"NA.UBND", "NA.TU"}, Precedence: p, Body: []byte(marker)})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		na.Receive("NA.UBND", inbox)
		cs, key, err := hn.Dial("auditor").AuditCosignatures(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		relayed, err := tw.Server.Store().QueryAudit(store.AuditQuery{Event: "relayed"})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 1 && key != "" && len(relayed) == 8 {
			break // TW relayed every copy, cosigned HN's log and keeps its witness key
		}
		if time.Now().After(deadline) {
			t.Fatal("no cosignature within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range []*daemontest.Site{hn, na, tw} {
		s.Stop()
	}
	secrets := []string{marker, "PRIVATE+KEY", "NA.UBND", "NA.TU", "HN.UBND"}
	for path, b := range dataFiles(t, tw) {
		for _, m := range secrets {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s holds %q in plaintext", path, m)
			}
		}
	}
}
