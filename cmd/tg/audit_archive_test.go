package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// tg audit archive moves old entries to an archive file; tg audit proof
// then says where a telegram's archived entries are, and tg audit
// check-proof checks them against that file; the whole log still
// verifies. A file that does not hold the entries is refused.
func TestAuditArchiveCommand(t *testing.T) {
	site := daemontest.Start(t)
	hn, auditor := site.IDDir("HN.UBND"), site.IDDir("auditor")
	first := strings.TrimSpace(tg(t, "", "--id", hn, "send", "--to", "NA.TU", "--info", "NA.UBND", "một").stdout)
	for i := 0; i < 40; i++ {
		if r := tg(t, "", "--id", hn, "send", "--to", "NA.TU", "thêm"); r.code != 0 {
			t.Fatalf("send: %d %s", r.code, r.stderr)
		}
	}
	if r := tg(t, "", "--id", site.IDDir("NA.TU"), "audit", "archive", "--older-than", "0s"); r.code != 3 {
		t.Fatalf("a terminal's archive: exit %d %s, want 3 (refused)", r.code, r.stderr)
	}
	if r := tg(t, "", "--id", auditor, "audit", "checkpoint"); r.code != 0 { // a fresh checkpoint covers them
		t.Fatalf("checkpoint: %d %s", r.code, r.stderr)
	}
	r := tg(t, "", "--id", auditor, "--json", "audit", "archive", "--older-than", "0s")
	var res struct {
		Files   []string `json:"files"`
		Entries uint64   `json:"entries"`
		Below   uint64   `json:"archived_below"`
		Dir     string   `json:"dir"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Files) != 1 || res.Entries == 0 || res.Entries%64 != 0 || res.Below != res.Entries {
		t.Fatalf("audit archive --json: %d %q %s", r.code, r.stdout, r.stderr)
	}
	file := filepath.Join(res.Dir, res.Files[0])
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	r = tg(t, "", "--id", auditor, "audit", "proof", first)
	if r.code != 0 || !strings.Contains(r.stdout, "archived in "+res.Files[0]) {
		t.Fatalf("audit proof of an archived telegram: %d %q %s", r.code, r.stdout, r.stderr)
	}
	bundle := filepath.Join(t.TempDir(), "proof.json")
	if r = tg(t, "", "--id", auditor, "audit", "proof", first, "--out", bundle); r.code != 0 {
		t.Fatalf("proof --out: %d %s", r.code, r.stderr)
	}
	r = tg(t, "", "--json", "audit", "check-proof", bundle, "--archive", file)
	var ok map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ok); err != nil || ok["ok"] != true || ok["archived"] != 3.0 || ok["archive_checked"] != 3.0 {
		t.Fatalf("check-proof --archive: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// A file that does not hold those entries: the first line of another.
	b, _ := os.ReadFile(file)
	lines := strings.SplitN(string(b), "\n", 3)
	wrong := filepath.Join(t.TempDir(), res.Files[0])
	os.WriteFile(wrong, []byte(lines[0]+"\n"+strings.Replace(lines[2], "\"index\":1,", "\"index\":0,", 1)), 0o600)
	if r = tg(t, "", "audit", "check-proof", bundle, "--archive", wrong); r.code == 0 {
		t.Fatalf("check-proof against a file without the entries: exit 0 %q", r.stdout)
	}
	if r = tg(t, "", "--id", auditor, "audit", "verify"); r.code != 0 {
		t.Fatalf("verify after archiving: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = tg(t, "", "--id", auditor, "audit", "query", "--event", "archived"); r.code != 0 || !strings.Contains(r.stdout, res.Files[0]) {
		t.Fatalf("the archived entry: %d %q %s", r.code, r.stdout, r.stderr)
	}
}
