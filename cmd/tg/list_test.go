package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// tg list: the telegrams in custody, one row per addressee copy, in every
// state, with each filter and pages; exact rows.
func TestListCustody(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Speed.Flash = daemon.Duration(time.Millisecond) // every FLASH is overdue at once
	})
	op := site.IDDir("operator") // cleared to SECRET
	send := func(from string, tg client.Telegram) string {
		tg.Body = []byte("x")
		return site.Send(from, tg).String()
	}
	to := func(as ...telegram.Address) []telegram.Address { return as }
	a := send("HN.UBND", client.Telegram{To: to("HCM.UBND"), Precedence: telegram.Routine})
	b := send("HN.UBND", client.Telegram{To: to("HCM.UBND", "DN.UBND"), Precedence: telegram.Flash})
	c := send("CP.VPCP", client.Telegram{To: to("DN.UBND"), Precedence: telegram.Priority})
	d := send("CP.VPCP", client.Telegram{To: to("HCM.UBND"), Precedence: telegram.Routine, DeliverAt: time.Now().Add(time.Hour)})
	send("TW.VPTW", client.Telegram{To: to("HCM.UBND"), Precedence: telegram.Routine, Classification: telegram.TopSecret})
	f := send("HN.UBND", client.Telegram{To: to("NA.UBND"), Precedence: telegram.Routine})
	if r := tg(t, "", "--id", op, "hold", c); r.code != 0 {
		t.Fatalf("hold: %d %s", r.code, r.stderr)
	}
	id, _ := telegram.ParseID(f)
	site.StuckInFlight("NA.UBND", id)

	// rows runs tg list and returns, per row, ID, addressee, state,
	// precedence and sender; and the lines that are not rows.
	rows := func(args ...string) (got [][]string, notes []string) {
		t.Helper()
		r := tg(t, "", append([]string{"--id", op, "list"}, args...)...)
		if r.code != 0 {
			t.Fatalf("list %v: %d %s", args, r.code, r.stderr)
		}
		ls := lines(r.stdout)
		if len(ls) == 0 || !strings.HasPrefix(ls[0], "ID ") {
			t.Fatalf("list %v: no heading: %q", args, r.stdout)
		}
		for _, l := range ls[1:] {
			fs := strings.Fields(l)
			if len(fs) < 11 || len(fs[0]) != 26 {
				notes = append(notes, l)
				continue
			}
			// ID, date, time, zone, age, precedence, class, from, to, state, bytes
			got = append(got, []string{fs[0], fs[8], fs[9], fs[5], fs[7]})
		}
		return got, notes
	}
	all := [][]string{
		{a, "HCM.UBND", "waiting", "ROUTINE", "HN.UBND"},
		{b, "DN.UBND", "waiting", "FLASH", "HN.UBND"},
		{b, "HCM.UBND", "waiting", "FLASH", "HN.UBND"},
		{c, "DN.UBND", "held", "PRIORITY", "CP.VPCP"},
		{d, "HCM.UBND", "deferred", "ROUTINE", "CP.VPCP"},
		{f, "NA.UBND", "in_flight", "ROUTINE", "HN.UBND"},
	}
	pick := func(is ...int) [][]string {
		var out [][]string
		for _, i := range is {
			out = append(out, all[i])
		}
		return out
	}
	withheld := "(1 above this operator's clearance not shown)"
	for _, tc := range []struct {
		args  []string
		want  [][]string
		notes []string
	}{
		{nil, all, []string{withheld}},
		{[]string{"--newest"}, pick(5, 4, 3, 2, 1, 0), []string{withheld}},
		{[]string{"--agency", "DN.UBND"}, pick(1, 3), nil},
		{[]string{"--state", "overdue"}, pick(1, 2), nil},
		{[]string{"--state", "held"}, pick(3), nil},
		{[]string{"--state", "deferred"}, pick(4), nil},
		{[]string{"--state", "in_flight"}, pick(5), nil},
		{[]string{"--state", "waiting"}, pick(0, 1, 2), []string{withheld}},
		{[]string{"--from", "CP.VPCP"}, pick(3, 4), nil},
		{[]string{"--prec", "Hỏa tốc"}, pick(1, 2), nil},
		{[]string{"--class", "UNCLASSIFIED", "--agency", "HCM.UBND"}, pick(0, 2, 4), nil},
		{[]string{"--older-than", "1h"}, nil, nil},
		{[]string{"--limit", "2"}, pick(0, 1), []string{withheld, "more: --after " + b + "/DN.UBND"}},
		{[]string{"--limit", "2", "--after", b + "/DN.UBND"}, pick(2, 3), []string{withheld, "more: --after " + c + "/DN.UBND"}},
		{[]string{"--limit", "4", "--newest", "--after", c + "/DN.UBND"}, pick(2, 1, 0), []string{withheld}},
		{[]string{"--limit", "2", "--all"}, all, []string{withheld, withheld, withheld}},
	} {
		got, notes := rows(tc.args...)
		if !slices.EqualFunc(got, tc.want, slices.Equal) || !slices.Equal(notes, tc.notes) {
			t.Errorf("list %v:\n got %v %q\nwant %v %q", tc.args, got, notes, tc.want, tc.notes)
		}
	}

	// JSON: one object with the rows, the cursor and the count withheld.
	r := tg(t, "", "--id", op, "--json", "list", "--limit", "1", "--agency", "DN.UBND")
	var page struct {
		Rows     []map[string]any `json:"rows"`
		Next     string           `json:"next"`
		Withheld int              `json:"withheld"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Rows) != 1 || page.Next != b+"/DN.UBND" {
		t.Fatalf("list --json: %q %v", r.stdout, err)
	}
	row := page.Rows[0]
	for k, v := range map[string]any{"id": b, "addressee": "DN.UBND", "from": "HN.UBND", "precedence": "FLASH",
		"classification": "UNCLASSIFIED", "state": "waiting", "overdue": true, "sealed": true} {
		if row[k] != v {
			t.Errorf("list --json: %s = %v, want %v (%s)", k, row[k], v, r.stdout)
		}
	}
	if n, _ := row["body_len"].(float64); n <= 1 { // the sealed envelope's size
		t.Errorf("list --json: body_len %v", row["body_len"])
	}
	if _, ok := row["subject"]; ok {
		t.Errorf("list --json carries a subject: %s", r.stdout)
	}

	// Refusals: not an operator; an agency not in the directory; a state
	// that does not exist.
	if r := tg(t, "", "--id", site.IDDir("HN.UBND"), "list"); r.code != exitPermission {
		t.Errorf("list as a terminal: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "--id", op, "list", "--agency", "XX.NOWHERE"); r.code != exitNotExist || !strings.Contains(r.stderr, "XX.NOWHERE") {
		t.Errorf("list --agency XX.NOWHERE: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "--id", op, "list", "--state", "lost"); r.code != exitInvalid {
		t.Errorf("list --state lost: %d %s", r.code, r.stderr)
	}
}
