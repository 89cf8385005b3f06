package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// tg minimize as the README shows it: declare, the refusal's exit status
// and message, a deferred filing, the terminal's view, lifting; the JSON
// fields the issue names.
func TestMinimizeCommand(t *testing.T) {
	site := daemontest.Start(t)
	ops, vinh, natu := site.IDDir("operator"), site.IDDir("NA.VINH.UBND"), site.IDDir("NA.TU")
	r := tg(t, "", "--id", ops, "--json", "minimize", "--below", "IMMEDIATE", "--level", "district", "--reason", "bão số 3", "--until", "6h")
	var m struct {
		InForce []map[string]any `json:"in_force"`
		Decl    uint64           `json:"declared"`
		Lifted  []uint64         `json:"lifted"`
		Rel     int              `json:"released"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || r.code != 0 || m.Decl != 1 || len(m.InForce) != 1 {
		t.Fatalf("declare: %d %q %s", r.code, r.stdout, r.stderr)
	}
	for k, want := range map[string]any{"number": 1.0, "below": "IMMEDIATE", "level": "district", "reason": "bão số 3", "by": "operator (dev)"} {
		if m.InForce[0][k] != want {
			t.Errorf("in_force[0].%s = %v, want %v", k, m.InForce[0][k], want)
		}
	}
	if m.InForce[0]["until"] == nil || m.InForce[0]["at"] == nil {
		t.Errorf("in_force[0] lacks until or at: %v", m.InForce[0])
	}
	r = tg(t, "", "--id", vinh, "send", "--to", "HN.UBND", "x")
	if r.code != exitMinimized || !strings.Contains(r.stderr, "MINIMIZE 1 below IMMEDIATE for every district is in force (bão số 3)") {
		t.Fatalf("ROUTINE from a district: exit %d %q, want %d", r.code, r.stderr, exitMinimized)
	}
	if r = tg(t, "", "--id", vinh, "send", "--to", "HN.UBND", "--prec", "IMMEDIATE", "x"); r.code != 0 {
		t.Fatalf("IMMEDIATE from a district: %d %s", r.code, r.stderr)
	}
	if r = tg(t, "", "--id", natu, "minimize", "--below", "FLASH", "--reason", "x"); r.code != exitPermission {
		t.Fatalf("a terminal declaring: exit %d %s", r.code, r.stderr)
	}
	if r = tg(t, "", "--id", ops, "minimize", "--below", "ROUTINE", "--reason", "x"); r.code != exitInvalid {
		t.Fatalf("below ROUTINE: exit %d %s", r.code, r.stderr)
	}
	r = tg(t, "", "--id", ops, "minimize", "--below", "FLASH", "--agency", "NA.TU", "--reason", "diễn tập", "--defer")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "MINIMIZE 2 declared\n") || !strings.Contains(r.stdout, "\nMINIMIZE 2 below FLASH for agencies NA.TU, deferring: diễn tập (declared by operator (dev) at ") {
		t.Fatalf("declare a deferring one: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = tg(t, "", "--id", natu, "--json", "send", "--to", "CP.VPCP", "--prec", "IMMEDIATE", "x")
	var sent map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &sent); err != nil || r.code != 0 || sent["deferred_by_minimize"] != 2.0 {
		t.Fatalf("deferred send: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = tg(t, "", "--id", natu, "send", "--to", "CP.VPCP", "--prec", "IMMEDIATE", "y"); r.code != 0 || !strings.Contains(r.stderr, "deferred under MINIMIZE 2") {
		t.Fatalf("deferred send, text: %d %q", r.code, r.stderr)
	}
	if r = tg(t, "", "--id", ops, "top", "--once"); r.code != 0 || !strings.Contains(r.stdout, "\nMINIMIZE 1 below IMMEDIATE for every district until ") || !strings.Contains(r.stdout, "\nMINIMIZE 2 below FLASH") {
		t.Fatalf("top shows no MINIMIZE: %d %q", r.code, r.stdout)
	}
	if r = tg(t, "", "--id", natu, "minimize"); r.code != 0 || strings.Contains(r.stdout, "MINIMIZE 1") || !strings.Contains(r.stdout, "MINIMIZE 2") || strings.Contains(r.stdout, "declared by") {
		t.Fatalf("the terminal's list: %d %q", r.code, r.stdout)
	}
	r = tg(t, "", "--id", ops, "--json", "minimize", "--lift", "2")
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || r.code != 0 || len(m.Lifted) != 1 || m.Lifted[0] != 2 || m.Rel != 2 || len(m.InForce) != 1 {
		t.Fatalf("lift 2: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = tg(t, "", "--id", ops, "minimize", "--lift"); r.code != 0 || r.stdout != "lifted: MINIMIZE 1; 0 deferred telegrams queued\nno MINIMIZE in force\n" {
		t.Fatalf("lift all: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = tg(t, "", "--id", ops, "minimize", "--lift"); r.code != exitNotExist {
		t.Fatalf("lift with none in force: exit %d %s", r.code, r.stderr)
	}
}
