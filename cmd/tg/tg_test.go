package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

type result struct {
	code           int
	stdout, stderr string
}

func tg(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// mustTG runs tg and fails the test unless it exits 0.
func mustTG(t *testing.T, args ...string) result {
	t.Helper()
	r := tg(t, "", args...)
	if r.code != 0 {
		t.Fatalf("tg %s: exit %d %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// The README's walk-through, command for command.
func TestWalkThrough(t *testing.T) {
	site := daemontest.Start(t)
	hn, na := site.IDDir("HN.UBND"), site.IDDir("NA.UBND")

	r := tg(t, "", "--id", hn, "send", "--to", "NA.UBND", "--info", "NA.TU", "--prec", "Hỏa tốc", "--class", "MẬT",
		"--subject", "Báo cáo lũ", "--ref", "HN-001", "Mực nước sông Lam vượt báo động 3")
	if r.code != 0 {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	if len(id) != 26 {
		t.Fatalf("send printed %q, want a 26-character ID", r.stdout)
	}
	// The same telegram with the same reference again: same ID, nothing
	// new. The same reference with other content: refused.
	r = tg(t, "", "--id", hn, "--json", "send", "--to", "NA.UBND", "--info", "NA.TU", "--prec", "FLASH", "--class", "CONFIDENTIAL",
		"--subject", "Báo cáo lũ", "--ref", "HN-001", "Mực nước sông Lam vượt báo động 3")
	var sent map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &sent); err != nil || sent["id"] != id || sent["duplicate"] != true {
		t.Fatalf("refiling with the same --ref: %q %v", r.stdout, err)
	}
	r = tg(t, "", "--id", hn, "send", "--to", "NA.UBND", "--info", "NA.TU", "--prec", "FLASH", "--class", "CONFIDENTIAL",
		"--subject", "Báo cáo lũ", "--ref", "HN-001", "another text")
	if r.code != exitInvalid || !strings.Contains(r.stderr, "already used for another telegram") || r.stdout != "" {
		t.Fatalf("the same --ref with another body: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Body from a file and from standard input.
	body := filepath.Join(t.TempDir(), "body.txt")
	os.WriteFile(body, []byte("from a file"), 0o644)
	if r = tg(t, "", "--id", hn, "send", "--to", "NA.UBND", "--file", body); r.code != 0 {
		t.Fatalf("send --file: %s", r.stderr)
	}
	if r = tg(t, "from stdin", "--id", hn, "send", "--to", "NA.UBND", "--prec", "ROUTINE"); r.code != 0 {
		t.Fatalf("send from stdin: %s", r.stderr)
	}

	// The addressee's inbox, as JSON Lines, FLASH first.
	r = tg(t, "", "--id", na, "--json", "inbox")
	if r.code != 0 {
		t.Fatalf("inbox: %s", r.stderr)
	}
	ls := lines(r.stdout)
	if len(ls) != 3 {
		t.Fatalf("inbox printed %d lines, want 3:\n%s", len(ls), r.stdout)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(ls[0]), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "from", "to", "info", "precedence", "classification", "subject", "filed_at", "body", "possible_duplicate"} {
		if _, ok := m[k]; !ok {
			t.Errorf("inbox JSON lacks %q: %s", k, ls[0])
		}
	}
	if m["id"] != id || m["from"] != "HN.UBND" || m["precedence"] != "FLASH" || m["classification"] != "CONFIDENTIAL" ||
		m["subject"] != "Báo cáo lũ" || m["body"] != "TeG7sWMgbsaw4bubYyBzw7RuZyBMYW0gdsaw4bujdCBiw6FvIMSR4buZbmcgMw==" {
		t.Errorf("inbox JSON %s", ls[0])
	}
	// Each telegram was stored, one file per telegram, before it was acknowledged.
	files, _ := filepath.Glob(filepath.Join(na, "inbox", "*.tg"))
	if len(files) != 3 {
		t.Errorf("%d files in the inbox folder, want 3", len(files))
	}
	// Stored sealed: no body or subject readable in the folder...
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("Mực nước")) || bytes.Contains(b, []byte("Báo cáo lũ")) || bytes.Contains(b, []byte("HN.UBND")) {
			t.Errorf("%s holds plaintext", f)
		}
	}
	// ...but the terminal reads them back.
	r = tg(t, "", "--id", na, "--json", "inbox", "--stored")
	if ls := lines(r.stdout); r.code != 0 || len(ls) != 3 || !strings.Contains(r.stdout, `"subject":"Báo cáo lũ"`) {
		t.Errorf("inbox --stored: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Nothing is left.
	if r = tg(t, "", "--id", na, "inbox"); r.code != 0 || r.stdout != "" {
		t.Errorf("second inbox run: %d %q", r.code, r.stdout)
	}

	// The info addressee gets it too, in text form, with --out.
	out := t.TempDir()
	r = tg(t, "", "--id", site.IDDir("NA.TU"), "inbox", "--out", out)
	if r.code != 0 || !strings.Contains(r.stdout, "Mực nước sông Lam") || !strings.Contains(r.stdout, "FLASH") {
		t.Errorf("NA.TU inbox: %d %q", r.code, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(out, id+".tg")); err != nil {
		t.Errorf("--out: %v", err)
	}

	// Delivery reports to the sender.
	r = tg(t, "", "--id", hn, "--json", "receipts")
	if r.code != 0 {
		t.Fatalf("receipts: %s", r.stderr)
	}
	ls = lines(r.stdout)
	if len(ls) != 4 {
		t.Fatalf("receipts printed %d lines, want 4:\n%s", len(ls), r.stdout)
	}
	delivered := 0
	for _, l := range ls {
		var rc map[string]any
		json.Unmarshal([]byte(l), &rc)
		for _, k := range []string{"id", "addressee", "status", "reason", "at"} {
			if _, ok := rc[k]; !ok {
				t.Errorf("receipt JSON lacks %q: %s", k, l)
			}
		}
		if rc["status"] == "DELIVERED" {
			delivered++
		}
	}
	if delivered != 4 {
		t.Errorf("%d DELIVERED receipts, want 4", delivered)
	}
}

func TestSendErrorsExitNonZero(t *testing.T) {
	site := daemontest.Start(t)
	hn := site.IDDir("HN.UBND")
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, bytes.Repeat([]byte("x"), 16<<20+1), 0o644)
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"unknown addressee", "", []string{"send", "--to", "XX.NOWHERE", "x"}, exitNotExist, "unknown addressee XX.NOWHERE"},
		{"bad precedence", "", []string{"send", "--to", "NA.TU", "--prec", "URGENT", "x"}, exitInvalid, "unknown precedence"},
		{"bad classification", "", []string{"send", "--to", "NA.TU", "--class", "COSMIC", "x"}, exitInvalid, "unknown classification"},
		{"above clearance", "", []string{"send", "--to", "NA.TU", "--class", "TOP SECRET", "x"}, exitPermission, "cleared to SECRET"},
		{"empty body", "", []string{"send", "--to", "NA.TU"}, exitInvalid, "body is empty"},
		{"oversize body", "", []string{"send", "--to", "NA.TU", "--file", big}, exitTooLarge, "the limit is"},
		{"no --to", "", []string{"send", "x"}, exitInvalid, "--to"},
		{"deliver-at not a time", "", []string{"send", "--to", "NA.TU", "--deliver-at", "soon", "x"}, exitInvalid, "--deliver-at \"soon\""},
		{"deliver-at past", "", []string{"send", "--to", "NA.TU", "--deliver-at", "2020-01-01T00:00:00Z", "x"}, exitInvalid, "is already past"},
		{"deliver-at after expiry", "", []string{"send", "--to", "NA.TU", "--deliver-at", "2h", "--expire", "1h", "x"}, exitInvalid, "would expire undelivered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tg(t, tc.stdin, append([]string{"--id", hn}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", r.code, r.stderr, tc.code, tc.msg)
			}
			if r.stdout != "" {
				t.Fatalf("printed %q on failure", r.stdout)
			}
		})
	}
	if r := tg(t, "", "--id", site.IDDir("NA.TU"), "inbox"); r.stdout != "" {
		t.Fatalf("a refused filing was delivered: %q", r.stdout)
	}
	// No identity folder: a clear error.
	if r := tg(t, "", "send", "--to", "NA.TU", "x"); r.code != exitInvalid || !strings.Contains(r.stderr, "TG_ID") {
		t.Fatalf("without --id: %d %q", r.code, r.stderr)
	}
}

// TG_ID names the identity folder when --id is absent.
func TestTGIDEnvironment(t *testing.T) {
	site := daemontest.Start(t)
	t.Setenv("TG_ID", site.IDDir("CP.VPCP"))
	if r := tg(t, "", "send", "--to", "TW.VPTW", "--prec", "khẩn", "hello"); r.code != 0 {
		t.Fatalf("send with TG_ID: %d %s", r.code, r.stderr)
	}
}

func TestCertsInitAndIssue(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if r := tg(t, "", "certs", "init", "--out", ca); r.code != 0 {
		t.Fatalf("certs init: %s", r.stderr)
	}
	if r := tg(t, "", "certs", "init", "--out", ca); r.code == 0 {
		t.Fatal("certs init overwrote an existing CA")
	}
	r := tg(t, "", "--json", "certs", "issue", "--ca", ca, "--role", "terminal", "--name", "Vinh terminal",
		"--agency", "NA.VINH.UBND", "--clearance", "Mật", "--out", filepath.Join(dir, "vinh"), "--switch", "10.0.0.1:4433")
	if r.code != 0 {
		t.Fatalf("certs issue: %s", r.stderr)
	}
	var m map[string]string
	json.Unmarshal([]byte(r.stdout), &m)
	if m["agency"] != "NA.VINH.UBND" || m["clearance"] != "CONFIDENTIAL" || m["role"] != "terminal" {
		t.Fatalf("certs issue printed %s", r.stdout)
	}
	if r := tg(t, "", "certs", "issue", "--ca", ca, "--role", "terminal", "--name", "x", "--out", filepath.Join(dir, "x")); r.code != exitInvalid {
		t.Fatalf("a terminal without --agency: exit %d %s", r.code, r.stderr)
	}
}

// tg --version says what it is: the version, the revision, the Go.
func TestVersion(t *testing.T) {
	r := tg(t, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "dienbao tg (devel), revision ") || !strings.HasSuffix(strings.TrimSpace(r.stdout), ", "+runtime.Version()) {
		t.Fatalf("tg --version: %d %q %s", r.code, r.stdout, r.stderr)
	}
}
