package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// Incident notices: posted within the poster's scope, seen by every
// operator they touch (tg notice, tg top), closed, audited, kept across a
// restart. Exact lists and counts.
func TestIncidentNotices(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	addr, _ := os.ReadFile(filepath.Join(site.IDDir("operator"), "switch"))
	na := filepath.Join(t.TempDir(), "op-na")
	if r := tg(t, "", "certs", "issue", "--ca", filepath.Join(dir, "ca"), "--role", "operator", "--name", "NA operator",
		"--clearance", "SECRET", "--scope", "NA", "--switch", strings.TrimSpace(string(addr)), "--out", na); r.code != 0 {
		t.Fatalf("certs issue: %d %s", r.code, r.stderr)
	}
	op := site.IDDir("operator")
	run := func(id string, code int, args ...string) string {
		t.Helper()
		r := tg(t, "", append([]string{"--id", id}, args...)...)
		if r.code != code {
			t.Fatalf("%v: exit %d, want %d: %s %s", args, r.code, code, r.stdout, r.stderr)
		}
		return r.stdout + r.stderr
	}
	if out := run(na, 0, "notice", "--affects", "NA", "--until", "4h", "Mất điện lưới tại Vinh, đầu cuối NA.VINH.UBND chạy máy phát"); out != "notice 1 posted\n" {
		t.Fatalf("post: %q", out)
	}
	run(na, exitPermission, "notice", "--affects", "HN", "--until", "4h", "x")
	run(na, exitPermission, "notice", "--affects", "link:TW", "--until", "4h", "x")
	run(op, exitInvalid, "notice", "--affects", "HCM", "--until", "2020-01-01T00:00:00Z", "x")
	run(op, exitInvalid, "notice", "--affects", "HCM", "--until", "2h")
	if out := run(op, 0, "notice", "--affects", "HCM", "--until", "2h", "Bảo trì tuyến cáp HCM"); out != "notice 2 posted\n" {
		t.Fatalf("post: %q", out)
	}
	if out := run(na, 0, "notice"); strings.Count(out, "NOTICE ") != 1 || !strings.Contains(out, "NOTICE 1  NA  until ") || !strings.Contains(out, "by NA operator: Mất điện lưới") {
		t.Fatalf("the NA operator's notices: %q", out)
	}
	if out := run(op, 0, "notice"); strings.Count(out, "NOTICE ") != 2 {
		t.Fatalf("the network operator's notices: %q", out)
	}
	if out := run(na, 0, "top", "--once", "--interval", "10ms"); !strings.Contains(out, "\nNOTICE 1  NA  until ") || strings.Contains(out, "NOTICE 2") {
		t.Fatalf("top of the NA operator: %q", out)
	}
	var top struct {
		Notices []map[string]any `json:"notices"`
	}
	if err := json.Unmarshal([]byte(run(op, 0, "--json", "top", "--once", "--interval", "10ms")), &top); err != nil || len(top.Notices) != 2 || top.Notices[1]["affects"] != "HCM" {
		t.Fatalf("top --json: %+v %v", top, err)
	}
	run(na, exitPermission, "notice", "--close", "2")
	if out := run(op, 0, "notice", "--close", "1"); out != "notice 1 closed\n" {
		t.Fatalf("close: %q", out)
	}
	run(op, exitNotExist, "notice", "--close", "1")
	r := tg(t, "", "--id", site.IDDir("auditor"), "--json", "audit", "query", "--event", "notice", "--oldest")
	es := jsonLines(t, r.stdout)
	if len(es) != 3 || !strings.HasPrefix(es[0]["reason"].(string), "posted 1: affects NA until ") || es[0]["actor"] != "NA operator" ||
		!strings.HasPrefix(es[2]["reason"].(string), "closed 1") || es[2]["actor"] != "operator (dev)" {
		t.Fatalf("audit: %s", r.stdout)
	}
	// Kept across a restart.
	site.Stop()
	if out := run(daemontest.StartIn(t, dir).IDDir("operator"), 0, "notice"); strings.Count(out, "NOTICE ") != 1 || !strings.Contains(out, "NOTICE 2  HCM") {
		t.Fatalf("after a restart: %q", out)
	}
}
