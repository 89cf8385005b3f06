package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// checkBundleIndependently checks a proof bundle with golang.org/x/mod's
// note and tlog packages only: nothing of dienbao's.
func checkBundleIndependently(t *testing.T, data []byte) int {
	t.Helper()
	var b struct {
		Checkpoint  string `json:"checkpoint"`
		VerifierKey string `json:"verifier_key"`
		Entries     []struct {
			Index uint64   `json:"index"`
			Leaf  []byte   `json:"leaf"`
			Proof [][]byte `json:"proof"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(b.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n") // origin, size, root (C2SP tlog-checkpoint)
	if len(lines) < 3 || lines[0] != v.Name() {
		t.Fatalf("checkpoint body %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var root tlog.Hash
	if r, err := base64.StdEncoding.DecodeString(lines[2]); err != nil || len(r) != len(root) {
		t.Fatalf("root %q", lines[2])
	} else {
		copy(root[:], r)
	}
	for _, e := range b.Entries {
		p := make(tlog.RecordProof, len(e.Proof))
		for i, h := range e.Proof {
			copy(p[i][:], h)
		}
		if err := tlog.CheckRecord(p, size, root, int64(e.Index), tlog.RecordHash(e.Leaf)); err != nil {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
	}
	return len(b.Entries)
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range lines(s) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// The auditor's walk-through in the README, and what each role may see.
func TestAuditWalkThrough(t *testing.T) {
	site := daemontest.Start(t)
	hn, na, aud, ops := site.IDDir("HN.UBND"), site.IDDir("NA.TU"), site.IDDir("auditor"), site.IDDir("operator")
	r := tg(t, "", "--id", hn, "send", "--to", "NA.TU", "--prec", "FLASH", "--class", "CONFIDENTIAL", "--subject", "Báo cáo", "Nội dung")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	tg(t, "", "--id", na, "inbox")
	tg(t, "", "--id", hn, "receipts")
	other := strings.TrimSpace(tg(t, "", "--id", site.IDDir("CP.VPCP"), "send", "--to", "DN.UBND", "x").stdout)

	// Query: one telegram's story, oldest first.
	r = tg(t, "", "--id", aud, "--json", "audit", "query", "--telegram", id, "--oldest")
	var events []string
	for _, m := range jsonLines(t, r.stdout) {
		events = append(events, m["event"].(string))
		if m["from"] != "HN.UBND" || m["id"] != id {
			t.Errorf("entry %v", m)
		}
	}
	if got := strings.Join(events, " "); r.code != 0 || got != "filed queued attempt delivered report_queued report_delivered" {
		t.Fatalf("audit query --telegram: %d %q %s", r.code, got, r.stderr)
	}
	r = tg(t, "", "--id", aud, "audit", "query", "--event", "delivered", "--csv")
	if ls := lines(r.stdout); r.code != 0 || len(ls) != 2 || ls[0] != "index,at,event,actor,id,from,to,precedence,classification,reason" ||
		!strings.Contains(ls[1], ",delivered,NA.TU/NA.TU (dev),"+id+",HN.UBND,NA.TU,FLASH,CONFIDENTIAL,") {
		t.Fatalf("audit query --csv: %d %q", r.code, r.stdout)
	}
	r = tg(t, "", "--id", aud, "audit", "query", "--agency", "NA.TU", "--limit", "2")
	if ls := lines(r.stdout); r.code != 0 || len(ls) != 3 || !strings.HasPrefix(ls[0], "INDEX") || !strings.Contains(r.stderr, "more: --before") {
		t.Fatalf("audit query table: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Verify.
	r = tg(t, "", "--id", aud, "audit", "verify")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "OK: ") {
		t.Fatalf("audit verify: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Proof, checked by tg offline and by an independent implementation.
	r = tg(t, "", "--id", aud, "--json", "audit", "proof", id)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	if n := checkBundleIndependently(t, []byte(r.stdout)); n != 6 {
		t.Fatalf("bundle of %d entries, want 6", n)
	}
	bundle := filepath.Join(t.TempDir(), "proof.json")
	os.WriteFile(bundle, []byte(r.stdout), 0o644)
	if r = tg(t, "", "audit", "check-proof", bundle); r.code != 0 || !strings.HasPrefix(r.stdout, "OK: telegram "+id+", 6 entries") {
		t.Fatalf("check-proof: %d %q %q", r.code, r.stdout, r.stderr)
	}
	var b audit.Bundle
	json.Unmarshal([]byte(tg(t, "", "--id", aud, "--json", "audit", "proof", id).stdout), &b)
	if r = tg(t, "", "audit", "check-proof", "--key", b.VerifierKey, bundle); r.code != 0 {
		t.Fatalf("check-proof --key: %d %s", r.code, r.stderr)
	}
	_, other2, _ := audit.NewKey("dienbao/other")
	if r = tg(t, "", "audit", "check-proof", "--key", other2, bundle); r.code != exitIntegrity {
		t.Fatalf("check-proof with another key: %d", r.code)
	}
	e, _ := audit.ParseLeaf(b.Entries[3].Leaf) // "delivered"
	e.To = "DN.UBND"
	b.Entries[3].Leaf, _ = audit.Leaf(e)
	forged, _ := json.Marshal(b)
	if r = tg(t, string(forged), "audit", "check-proof", "-"); r.code != exitIntegrity || !strings.Contains(r.stderr, "entry "+strconv.FormatUint(e.Index, 10)+" is not in the signed tree") {
		t.Fatalf("check-proof of a forged bundle: %d %q", r.code, r.stderr)
	}
	// Checkpoints, and consistency with an earlier one.
	r = tg(t, "", "--id", aud, "audit", "checkpoint")
	if ls := lines(r.stdout); r.code != 0 || len(ls) != 4 || ls[0] != "dienbao/dev-switch" || !strings.HasPrefix(ls[3], "— dienbao/dev-switch ") {
		t.Fatalf("audit checkpoint: %d %q", r.code, r.stdout)
	}
	cp := filepath.Join(t.TempDir(), "cp.txt")
	os.WriteFile(cp, []byte(r.stdout), 0o644)
	tg(t, "", "--id", hn, "send", "--to", "NA.TU", "later")
	// An operator gets the latest checkpoint; an auditor one of the log as
	// it stands, consistent with the earlier one.
	r = tg(t, "", "--id", ops, "--json", "audit", "checkpoint", "--since", cp)
	if m := jsonLines(t, r.stdout); r.code != 0 || len(m) != 1 || m[0]["size"].(float64) != m[0]["consistent_with_size"].(float64) {
		t.Fatalf("operator's audit checkpoint --since: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = tg(t, "", "--id", aud, "--json", "audit", "checkpoint", "--since", cp)
	if m := jsonLines(t, r.stdout); r.code != 0 || len(m) != 1 || m[0]["consistent_with_size"] == nil || m[0]["size"].(float64) <= m[0]["consistent_with_size"].(float64) {
		t.Fatalf("audit checkpoint --since: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Export: every entry, its leaf intact.
	r = tg(t, "", "--id", aud, "audit", "export")
	exported := jsonLines(t, r.stdout)
	size := int(tgJSON(t, aud, "audit", "checkpoint")["size"].(float64))
	if r.code != 0 || len(exported) < size {
		t.Fatalf("export: %d lines, log of %d", len(exported), size)
	}
	for i, m := range exported {
		leaf, _ := base64.StdEncoding.DecodeString(m["leaf"].(string))
		if e, err := audit.ParseLeaf(leaf); err != nil || e.Index != uint64(i) || m["index"].(float64) != float64(i) {
			t.Fatalf("exported line %d: %v %v", i, m, err)
		}
	}

	// A terminal sees its own agency's entries, and proofs for them.
	r = tg(t, "", "--id", na, "--json", "audit", "query", "--limit", "1000")
	for _, m := range jsonLines(t, r.stdout) {
		if m["from"] != "NA.TU" && m["to"] != "NA.TU" {
			t.Fatalf("NA.TU saw %v", m)
		}
	}
	if r = tg(t, "", "--id", na, "audit", "query", "--agency", "HN.UBND"); r.code != exitPermission {
		t.Fatalf("a terminal read another agency's entries: %d", r.code)
	}
	// By ID, the addressee sees the whole story of a telegram it was sent,
	// and nothing of one it was not.
	if r = tg(t, "", "--id", na, "--json", "audit", "query", "--telegram", id); len(lines(r.stdout)) != 6 {
		t.Fatalf("the addressee's view of its telegram: %d lines", len(lines(r.stdout)))
	}
	if r = tg(t, "", "--id", na, "--json", "audit", "query", "--telegram", other); r.code != 0 || len(lines(r.stdout)) != 0 {
		t.Fatalf("NA.TU's view of a telegram between others: %d %q", r.code, r.stdout)
	}
	if r = tg(t, "", "--id", na, "--json", "audit", "proof", id); r.code != 0 {
		t.Fatalf("the addressee's proof: %d %s", r.code, r.stderr)
	}
	if r = tg(t, "", "--id", na, "audit", "proof", other); r.code != exitPermission {
		t.Fatalf("a terminal got the proof of someone else's telegram: %d", r.code)
	}
	// An operator sees operational entries, telegrams by ID only.
	r = tg(t, "", "--id", ops, "--json", "audit", "query", "--limit", "1000")
	for _, m := range jsonLines(t, r.stdout) {
		if m["id"] != nil && (m["from"] != nil || m["to"] != nil || m["precedence"] != nil || m["classification"] != nil) {
			t.Fatalf("an operator saw telegram metadata: %v", m)
		}
	}
	for _, args := range [][]string{{"audit", "export"}, {"audit", "proof", id}, {"audit", "query", "--agency", "NA.TU"}, {"audit", "verify"}} {
		if r = tg(t, "", append([]string{"--id", ops}, args...)...); r.code != exitPermission {
			t.Errorf("operator %v: exit %d", args, r.code)
		}
	}
	// Every denial above is itself in the log.
	r = tg(t, "", "--id", aud, "--json", "audit", "query", "--event", "security", "--limit", "1000")
	denials := 0
	for _, m := range jsonLines(t, r.stdout) {
		if strings.Contains(m["reason"].(string), "request denied") {
			denials++
		}
	}
	if denials != 6 {
		t.Fatalf("%d denials audited, want 6:\n%s", denials, r.stdout)
	}
}

func tgJSON(t *testing.T, id string, args ...string) map[string]any {
	t.Helper()
	r := tg(t, "", append([]string{"--id", id, "--json"}, args...)...)
	m := jsonLines(t, r.stdout)
	if r.code != 0 || len(m) != 1 {
		t.Fatalf("tg %v: %d %q %s", args, r.code, r.stdout, r.stderr)
	}
	return m[0]
}

// An entry altered in the stored log (by someone holding the storage key,
// so the record itself still opens) makes tg audit verify fail, naming it.
func TestAuditVerifyNamesTheAlteredEntry(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	hn, aud := site.IDDir("HN.UBND"), site.IDDir("auditor")
	for i := 0; i < 40; i++ {
		tg(t, "", "--id", hn, "send", "--to", "NA.TU,DN.UBND", "telegram "+strconv.Itoa(i))
	}
	tg(t, "", "--id", site.IDDir("NA.TU"), "inbox")
	if r := tg(t, "", "--id", aud, "audit", "verify"); r.code != 0 {
		t.Fatalf("before: %d %s", r.code, r.stderr)
	}
	site.Stop()

	const victim = 77 // one of the deliveries
	cfg, err := daemon.LoadConfig(filepath.Join(dir, "switchd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := daemon.OpenKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := daemontest.OpenStore(t, dir)
	key := binary.BigEndian.AppendUint64([]byte{'a'}, victim)
	err = st.DB().Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		sealed, _ := item.ValueCopy(nil)
		leaf, err := ring.Open(nil, key, sealed)
		if err != nil {
			return err
		}
		e, err := audit.ParseLeaf(leaf)
		if err != nil {
			return err
		}
		e.To = "HCM.UBND" // it went somewhere else
		forged, _ := audit.Leaf(e)
		return txn.Set(key, ring.Seal(nil, key, forged))
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	daemontest.StartIn(t, dir)
	r := tg(t, "", "--id", aud, "audit", "verify")
	if r.code != exitIntegrity || !strings.Contains(r.stderr, "does not verify at entry "+strconv.Itoa(victim)) {
		t.Fatalf("audit verify after altering entry %d: %d %q %q", victim, r.code, r.stdout, r.stderr)
	}
	r = tg(t, "", "--id", aud, "--json", "audit", "verify")
	if m := jsonLines(t, r.stdout); r.code != exitIntegrity || len(m) != 1 || m[0]["ok"] != false || m[0]["first_bad_index"] != float64(victim) {
		t.Fatalf("audit verify --json: %d %q", r.code, r.stdout)
	}
}
