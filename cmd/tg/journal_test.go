package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// tg retrieve and tg resend as the README shows them: the copy is marked
// and leaves the inbox alone; the JSON fields the issue names; resend
// brings the same ID back, flagged possible duplicate, to a terminal that
// lost its inbox.
func TestRetrieveAndResendCommands(t *testing.T) {
	site := daemontest.Start(t)
	hn, tu := site.IDDir("HN.UBND"), site.IDDir("NA.TU")
	r := tg(t, "", "--id", hn, "send", "--to", "NA.TU", "--subject", "Công văn", "nội dung gốc")
	id := strings.TrimSpace(r.stdout)
	if r = tg(t, "", "--id", tu, "inbox"); r.code != 0 || !strings.Contains(r.stdout, "nội dung gốc") {
		t.Fatalf("inbox: %d %q %s", r.code, r.stdout, r.stderr)
	}
	entries := func() int {
		es, _ := os.ReadDir(filepath.Join(tu, "inbox"))
		return len(es)
	}
	before := entries()

	r = tg(t, "", "--id", tu, "retrieve", id)
	if r.code != 0 || !strings.Contains(r.stdout, "RETRIEVED COPY") || !strings.Contains(r.stdout, "nội dung gốc") {
		t.Fatalf("retrieve: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = tg(t, "", "--id", hn, "--json", "retrieve", id)
	var copy map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &copy); err != nil || copy["retrieved"] != true || copy["id"] != id || copy["subject"] != "Công văn" {
		t.Fatalf("retrieve --json: %q %v", r.stdout, err)
	}
	if b, _ := base64.StdEncoding.DecodeString(copy["body"].(string)); string(b) != "nội dung gốc" {
		t.Fatalf("retrieve --json body %q", b)
	}
	out := filepath.Join(t.TempDir(), "body.txt")
	if r = tg(t, "", "--id", tu, "retrieve", "--out", out, id); r.code != 0 {
		t.Fatalf("retrieve --out: %d %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "nội dung gốc" {
		t.Fatalf("retrieve --out wrote %q (%v)", b, err)
	}
	if r = tg(t, "", "--id", site.IDDir("CP.VPCP"), "retrieve", id); r.code != 3 {
		t.Fatalf("another agency's retrieve: exit %d %s, want 3", r.code, r.stderr)
	}
	if entries() != before {
		t.Fatalf("retrieving changed the inbox folder: %d entries, were %d", entries(), before)
	}

	r = tg(t, "", "--id", hn, "--json", "resend", id, "--reason", "mất máy")
	var res map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res["id"] != id || len(res["resent"].([]any)) != 1 || res["resent"].([]any)[0] != "NA.TU" {
		t.Fatalf("resend --json: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// A terminal that lost its inbox (a fresh folder) gets it again; one
	// that still has it acknowledges it without printing it twice.
	r = tg(t, "", "--id", tu, "--json", "inbox", "--out", t.TempDir())
	var again map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &again); err != nil || again["id"] != id || again["possible_duplicate"] != true {
		t.Fatalf("the copy sent again: %q %v", r.stdout, err)
	}
	if r = tg(t, "", "--id", site.IDDir("operator"), "resend", id, "--to", "NA.TU"); r.code != 0 || !strings.Contains(r.stdout, "sent again to NA.TU") {
		t.Fatalf("operator resend: %d %q %s", r.code, r.stdout, r.stderr)
	}
}

// tg journal lists an agency's telegrams, sent and received, newest
// first, with their state: in custody, settled (in the journal), purged;
// a terminal only its own agency's; pages cover every telegram once.
func TestJournalCommand(t *testing.T) {
	site := daemontest.Start(t)
	hn, tu := site.IDDir("HN.UBND"), site.IDDir("NA.TU")
	var sent []string
	for i := 0; i < 5; i++ {
		r := tg(t, "", "--id", hn, "send", "--to", "NA.TU", "--subject", "bí mật", "x")
		sent = append(sent, strings.TrimSpace(r.stdout))
	}
	r := tg(t, "", "--id", tu, "send", "--to", "HN.UBND", "trả lời")
	reply := strings.TrimSpace(r.stdout)
	tg(t, "", "--id", tu, "inbox") // the five are delivered: settled

	r = tg(t, "", "--id", hn, "--json", "journal")
	rows := jsonLines(t, r.stdout)
	if r.code != 0 || len(rows) != 6 || rows[0]["id"] != reply || rows[0]["state"] != "in_custody" || rows[1]["id"] != sent[4] || rows[1]["state"] != "settled" {
		t.Fatalf("journal: %d %q %s", r.code, r.stdout, r.stderr)
	}
	for _, k := range []string{"id", "filed_at", "from", "to", "precedence", "classification", "body_len", "state"} {
		if _, ok := rows[1][k]; !ok {
			t.Errorf("journal JSON lacks %q: %v", k, rows[1])
		}
	}
	if strings.Contains(r.stdout, "bí mật") {
		t.Fatal("journal printed a subject")
	}
	// Pages of two cover the six exactly once.
	seen := map[string]bool{}
	r = tg(t, "", "--id", hn, "--json", "journal", "--limit", "2", "--all")
	for _, row := range jsonLines(t, r.stdout) {
		if seen[row["id"].(string)] {
			t.Fatalf("%s listed twice", row["id"])
		}
		seen[row["id"].(string)] = true
	}
	if len(seen) != 6 {
		t.Fatalf("paged journal: %d telegrams, want 6\n%s", len(seen), r.stdout)
	}
	if r = tg(t, "", "--id", hn, "journal", "--agency", "CP.VPCP"); r.code != 3 {
		t.Fatalf("another agency's journal: exit %d %s", r.code, r.stderr)
	}
	if r = tg(t, "", "--id", site.IDDir("auditor"), "--json", "journal", "--agency", "NA.TU"); len(jsonLines(t, r.stdout)) != 6 {
		t.Fatalf("auditor's journal of NA.TU: %q %s", r.stdout, r.stderr)
	}
}
