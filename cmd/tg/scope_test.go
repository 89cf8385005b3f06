package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// An operator certificate limited to a prefix (tg certs issue --scope NA)
// sees only Nghệ An's agencies and acts only on telegrams all of whose
// addressees are there; network-wide actions are refused; every refusal
// is audited. Exact rows and counts.
func TestOperatorScope(t *testing.T) {
	site := daemontest.Start(t)
	addr, err := os.ReadFile(filepath.Join(site.IDDir("operator"), "switch"))
	if err != nil {
		t.Fatal(err)
	}
	na := filepath.Join(t.TempDir(), "op-na")
	if r := tg(t, "", "certs", "issue", "--ca", filepath.Join(site.Dir, "ca"), "--role", "operator", "--name", "NA operator",
		"--clearance", "SECRET", "--scope", "NA", "--switch", strings.TrimSpace(string(addr)), "--out", na); r.code != 0 {
		t.Fatalf("certs issue --scope: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "certs", "issue", "--ca", filepath.Join(site.Dir, "ca"), "--role", "terminal", "--agency", "NA.UBND", "--name", "x",
		"--scope", "NA", "--out", filepath.Join(t.TempDir(), "bad")); r.code != exitInvalid || !strings.Contains(r.stderr, "only an operator's certificate takes --scope") {
		t.Fatalf("a terminal with a scope: %d %s", r.code, r.stderr)
	}
	to := func(as ...telegram.Address) []telegram.Address { return as }
	send := func(as ...telegram.Address) string {
		return site.Send("HN.UBND", client.Telegram{To: to(as...), Body: []byte("x")}).String()
	}
	a := send("NA.UBND")
	b := send("HCM.UBND")
	c := send("NA.VINH.UBND", "HCM.UBND")
	site.Dial("HN.UBND") // a session outside the scope

	r := tg(t, "", "--id", na, "--json", "queues")
	var agencies []string
	for _, row := range jsonLines(t, r.stdout) {
		agencies = append(agencies, row["agency"].(string))
	}
	if !slices.Equal(agencies, []string{"NA.UBND", "NA.VINH.UBND"}) {
		t.Errorf("queues in scope: %v", agencies)
	}
	if got, _ := listRows(t, na); len(got) != 2 || got[0][0] != a || got[0][1] != "NA.UBND" || got[1][0] != c || got[1][1] != "NA.VINH.UBND" {
		t.Errorf("list in scope: %v", got)
	}
	if r := tg(t, "", "--id", na, "--json", "sessions"); strings.Contains(r.stdout, "HN.UBND") {
		t.Errorf("sessions outside the scope shown: %s", r.stdout)
	}
	if r := tg(t, "", "--id", na, "show", a); r.code != 0 {
		t.Errorf("show in scope: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "--id", na, "hold", a); r.code != 0 {
		t.Errorf("hold in scope: %d %s", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"list", "--agency", "HCM.UBND"},
		{"show", b},
		{"show", c}, // one addressee outside
		{"hold", b},
		{"hold", "--agency", "HCM.UBND"},
		{"move-queue", "NA.VINH.UBND", "HCM.UBND"},
	} {
		r := tg(t, "", append([]string{"--id", na}, args...)...)
		if r.code != exitPermission || !strings.Contains(r.stderr, "outside this operator's scope (NA)") {
			t.Errorf("%v: %d %s", args, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{"keys", "rotate"}, {"clock", "--confirm"}, {"minimize", "--below", "FLASH", "--level", "district", "--reason", "x"}} {
		r := tg(t, "", append([]string{"--id", na}, args...)...)
		if r.code != exitPermission || !strings.Contains(r.stderr, "limited to NA") {
			t.Errorf("%v: %d %s", args, r.code, r.stderr)
		}
	}
	r = tg(t, "", "--id", site.IDDir("auditor"), "--json", "audit", "query", "--event", "security")
	n := 0
	for _, e := range jsonLines(t, r.stdout) {
		if strings.Contains(e["reason"].(string), "outside this operator's scope") || strings.Contains(e["reason"].(string), "limited to NA") {
			n++
		}
	}
	if n != 9 {
		t.Errorf("%d scope refusals audited, want 9:\n%s", n, r.stdout)
	}
	// The unscoped operator still sees and acts on everything.
	if got, _ := listRows(t, site.IDDir("operator")); len(got) != 4 {
		t.Errorf("the network's operator lists %d copies, want 4", len(got))
	}
}
