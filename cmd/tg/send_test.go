package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// --deliver-at's forms: a duration, a local time today, a local date and
// time, an RFC 3339 time.
func TestParseDeliverAt(t *testing.T) {
	loc := time.FixedZone("ICT", 7*3600)
	now := time.Date(2026, 11, 30, 9, 15, 0, 0, loc)
	for _, c := range []struct{ in, want string }{
		{"", "0001-01-01T00:00:00Z"},
		{"90m", "2026-11-30T10:45:00+07:00"},
		{"14:30", "2026-11-30T14:30:00+07:00"},
		{"2026-12-01 08:00", "2026-12-01T08:00:00+07:00"},
		{"2026-12-01T08:00:00Z", "2026-12-01T08:00:00Z"},
	} {
		got, err := parseDeliverAt(c.in, now)
		if err != nil || got.Format(time.RFC3339) != c.want {
			t.Errorf("parseDeliverAt(%q) = %s, %v; want %s", c.in, got.Format(time.RFC3339), err, c.want)
		}
	}
	for _, bad := range []string{"-5m", "0s", "tomorrow", "25:00"} {
		if _, err := parseDeliverAt(bad, now); err == nil {
			t.Errorf("parseDeliverAt(%q) accepted", bad)
		}
	}
}

// The README's deferred-delivery line: filed now, shown deferred to an
// operator (queues and show), not in the addressee's inbox before its
// time.
func TestSendDeliverAt(t *testing.T) {
	site := daemontest.Start(t)
	hn, ops := site.IDDir("HN.UBND"), site.IDDir("operator")
	r := tg(t, "", "--id", hn, "send", "--to", "NA.TU", "--prec", "FLASH", "--deliver-at", "1h", "hỏa tốc hẹn giờ")
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || len(id) != 26 {
		t.Fatalf("send --deliver-at: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = tg(t, "", "--id", ops, "--json", "queues")
	var row map[string]any
	for _, l := range lines(r.stdout) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["agency"] == "NA.TU" {
			row = m
		}
	}
	if row == nil || row["deferred"] != 1.0 || row["waiting"] != 0.0 || row["precedence"] != "FLASH" {
		t.Fatalf("queues row for NA.TU: %v (all: %s)", row, r.stdout)
	}
	if r = tg(t, "", "--id", ops, "queues"); !strings.Contains(r.stdout, "DEFERRED") {
		t.Fatalf("queues table has no DEFERRED column:\n%s", r.stdout)
	}
	r = tg(t, "", "--id", ops, "--json", "show", id)
	var show map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil || show["deliver_at"] == nil {
		t.Fatalf("show: %q %v", r.stdout, err)
	}
	if st := show["addressees"].([]any)[0].(map[string]any); st["state"] != "deferred" {
		t.Fatalf("show state %v, want deferred", st["state"])
	}
	if r = tg(t, "", "--id", ops, "show", id); !strings.Contains(r.stdout, "deliver at ") || !strings.Contains(r.stdout, "deferred") {
		t.Fatalf("show table:\n%s", r.stdout)
	}
	if r = tg(t, "", "--id", site.IDDir("NA.TU"), "inbox"); r.code != 0 || r.stdout != "" {
		t.Fatalf("inbox before its time: %d %q", r.code, r.stdout)
	}
}

// A lone argument that names a file is not filed as words: the clerk is
// told to give --file; nothing is filed. Text of two words, or a word that
// is no file, is filed.
func TestSendRefusesAFileNameAsText(t *testing.T) {
	site := daemontest.Start(t)
	hn := site.IDDir("HN.UBND")
	file := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(file, []byte("Báo cáo"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := tg(t, "", "--id", hn, "send", "--to", "NA.UBND", file)
	if r.code != exitInvalid || !strings.Contains(r.stderr, "is a file: to send its content, give --file "+file) {
		t.Fatalf("send FILE: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "--id", site.IDDir("operator"), "--json", "list"); !strings.Contains(r.stdout, `"rows":[]`) {
		t.Fatalf("something was filed: %s", r.stdout)
	}
	if r := tg(t, "", "--id", hn, "send", "--to", "NA.UBND", "--file", file); r.code != 0 {
		t.Fatalf("send --file: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "--id", hn, "send", "--to", "NA.UBND", "report.txt"); r.code != 0 { // no such file here: words
		t.Fatalf("send a word: %d %s", r.code, r.stderr)
	}
}
