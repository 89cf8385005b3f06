package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The operator's commands as the README shows them: the JSON fields the
// issue names, exact figures, and each action's effect.
func TestOperatorCommands(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Custody.TimerInterval = daemon.Duration(20 * time.Millisecond)
		c.Speed.Priority = daemon.Duration(50 * time.Millisecond)
	})
	hn, ops := site.IDDir("HN.UBND"), site.IDDir("operator")
	var ids []string
	for i := 0; i < 3; i++ {
		r := tg(t, "", "--id", hn, "send", "--to", "DN.UBND,HCM.UBND", "--prec", "PRIORITY", "--subject", "bí mật", "x")
		ids = append(ids, strings.TrimSpace(r.stdout))
	}
	// Past the 50 ms target, once the timer has marked them.
	var r result
	var rows []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r = tg(t, "", "--id", ops, "--json", "queues", "--sort", "agency")
		rows = jsonLines(t, r.stdout)
		if len(rows) == 2 && rows[0]["overdue"] == 3.0 || time.Now().After(deadline) {
			break
		}
	}
	if r.code != 0 || len(rows) != 2 {
		t.Fatalf("queues: %d %q %s", r.code, r.stdout, r.stderr)
	}
	for _, k := range []string{"agency", "precedence", "waiting", "in_flight", "parked", "held", "overdue", "oldest_age_seconds"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("queues JSON lacks %q: %v", k, rows[0])
		}
	}
	if rows[0]["agency"] != "DN.UBND" || rows[0]["precedence"] != "PRIORITY" || rows[0]["waiting"] != 3.0 || rows[0]["overdue"] != 3.0 ||
		rows[0]["oldest_age_seconds"].(float64) < 0.05 || rows[0]["tier"] != "province" {
		t.Fatalf("queues row %v", rows[0])
	}
	if r = tg(t, "", "--id", ops, "queues"); !strings.Contains(r.stdout, "AGENCY") || !strings.Contains(r.stdout, "HCM.UBND") {
		t.Fatalf("queues table:\n%s", r.stdout)
	}
	// hold, show, release, cancel.
	if r = tg(t, "", "--id", ops, "hold", ids[0]); r.code != 0 || r.stdout != "hold "+ids[0]+": DN.UBND, HCM.UBND\n" {
		t.Fatalf("hold: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = tg(t, "", "--id", ops, "--json", "show", ids[0])
	var show map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil || show["id"] != ids[0] || show["subject"] != nil || strings.Contains(r.stdout, "bí mật") {
		t.Fatalf("show: %q %v", r.stdout, err)
	}
	if st := show["addressees"].([]any)[0].(map[string]any); st["state"] != "held" || st["overdue"] != true {
		t.Fatalf("show addressee %v", st)
	}
	if r = tg(t, "", "--id", ops, "--json", "queues"); jsonLines(t, r.stdout)[0]["held"] != 1.0 {
		t.Fatalf("queues after hold: %s", r.stdout)
	}
	if r = tg(t, "", "--id", ops, "release", ids[0]); r.code != 0 {
		t.Fatalf("release: %d %s", r.code, r.stderr)
	}
	if r = tg(t, "", "--id", ops, "cancel", ids[1], "--reason", "gửi nhầm"); r.code != 0 {
		t.Fatalf("cancel: %d %s", r.code, r.stderr)
	}
	if r = tg(t, "", "--id", hn, "receipts"); strings.Count(r.stdout, "NOT_DELIVERED") != 2 || !strings.Contains(r.stdout, "gửi nhầm") {
		t.Fatalf("the sender's reports after cancel:\n%s", r.stdout)
	}
	if r = tg(t, "", "--id", ops, "requeue", ids[2]); r.code != exitInvalid {
		t.Fatalf("requeue of a telegram that is not parked: %d %s", r.code, r.stderr)
	}
	if r = tg(t, "", "--id", ops, "hold", "--agency", "NA.TU"); r.code != 0 || r.stdout != "hold agency: NA.TU\n" {
		t.Fatalf("hold --agency: %d %q", r.code, r.stdout)
	}
	if r = tg(t, "", "--id", ops, "hold", "--agency", "XX.NOWHERE"); r.code != exitNotExist {
		t.Fatalf("hold an unknown agency: %d", r.code)
	}
	// sessions and top.
	if r = tg(t, "", "--id", ops, "--json", "sessions"); r.code != 0 || !strings.Contains(r.stdout, `"role":"operator"`) {
		t.Fatalf("sessions: %q", r.stdout)
	}
	r = tg(t, "", "--id", ops, "top", "--once")
	if r.code != 0 || !strings.Contains(r.stdout, "waiting 4") || !strings.Contains(r.stdout, "OVERDUE") || !strings.Contains(r.stdout, ids[0]) {
		t.Fatalf("top --once:\n%s", r.stdout)
	}
	// Terminals and auditors may not.
	for _, who := range []string{"HN.UBND", "auditor"} {
		if r = tg(t, "", "--id", site.IDDir(who), "queues"); r.code != exitPermission {
			t.Errorf("%s ran queues: %d", who, r.code)
		}
	}
}

// An action repeated after it happened says so, with its own exit status
// (9), and changes nothing; one that applies to nothing is a usage error.
func TestActionTwice(t *testing.T) {
	site := daemontest.Start(t)
	op := site.IDDir("operator")
	send := func() string {
		return site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"DN.UBND"}, Body: []byte("x")}).String()
	}
	a, b := send(), send()
	for _, step := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"cancel", a, "--reason", "gửi nhầm"}, 0, ""},
		{[]string{"cancel", a}, exitDone, "is settled for every addressee already"},
		{[]string{"hold", b}, 0, ""},
		{[]string{"hold", b}, exitDone, "is held already"},
		{[]string{"release", b}, 0, ""},
		{[]string{"release", b}, exitInvalid, "nothing to do"},
		{[]string{"requeue", b}, exitInvalid, "nothing to do"},
	} {
		r := tg(t, "", append([]string{"--id", op}, step.args...)...)
		if r.code != step.code || !strings.Contains(r.stderr, step.says) {
			t.Errorf("%v: %d %s, want %d %q", step.args, r.code, r.stderr, step.code, step.says)
		}
	}
	// The second cancel changed nothing: one cancelled entry in the audit log.
	r := tg(t, "", "--id", site.IDDir("auditor"), "--json", "audit", "query", "--telegram", a, "--event", "cancelled")
	if n := len(jsonLines(t, r.stdout)); n != 1 {
		t.Errorf("%d cancelled entries, want 1", n)
	}
}
