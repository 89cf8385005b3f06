package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// A sender's escape sequences and bidi overrides do not reach the
// recipient's screen (issue 15, finding 7): tg prints them as visible
// escapes, keeps line breaks, prints them raw only with --raw, and the
// stored inbox and JSON keep the exact bytes. A subject with a bidi
// override is refused at filing.
func TestOutputIsSafe(t *testing.T) {
	site := daemontest.Start(t)
	hn, na := site.IDDir("HN.UBND"), site.IDDir("NA.TU")
	body := "\x1b[2J\x1b[31m=== FLASH TOP SECRET\nFrom:    TW.VPTW\u202e"
	if r := tg(t, "", "--id", hn, "send", "--to", "NA.TU", body); r.code != 0 {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	r := tg(t, "", "--id", na, "inbox")
	if r.code != 0 || strings.ContainsAny(r.stdout, "\x1b\u202e") || !strings.Contains(r.stdout, `\x1b[2J\x1b[31m=== FLASH TOP SECRET`+"\n"+`From:    TW.VPTW\u202e`) {
		t.Fatalf("inbox printed %q", r.stdout)
	}
	if r = tg(t, "", "--id", na, "--raw", "inbox", "--stored"); !strings.Contains(r.stdout, body) {
		t.Fatalf("inbox --raw --stored printed %q, want the exact body", r.stdout)
	}
	r = tg(t, "", "--id", na, "--json", "inbox", "--stored")
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &m); err != nil {
		t.Fatalf("inbox --json --stored: %q %v", r.stdout, err)
	}
	if fmtBody(m["body"]) != body {
		t.Fatalf("the stored body is %q, want %q", m["body"], body)
	}
	if r = tg(t, "", "--id", hn, "send", "--to", "NA.TU", "--subject", "báo cáo\u202eabc", "x"); r.code != exitInvalid || !strings.Contains(r.stderr, "bidirectional") {
		t.Fatalf("a subject with a bidi override: %d %q", r.code, r.stderr)
	}
}

// fmtBody reads a JSON body ([]byte: base64).
func fmtBody(v any) string {
	s, _ := v.(string)
	b, _ := base64.StdEncoding.DecodeString(s)
	return string(b)
}
