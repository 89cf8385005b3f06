package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// tg inbox says when a telegram is a possible duplicate: in JSON as
// possible_duplicate, in text on the telegram's first line. Here the first
// delivery went to a terminal of the agency that died before acknowledging
// it, so the next one is flagged.
func TestInboxShowsPossibleDuplicate(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		site := daemontest.Start(t)
		id := site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Body: []byte("twice?")})
		site.StuckInFlight("NA.TU", id)
		args := []string{"--id", site.IDDir("NA.TU"), "inbox", "--out", t.TempDir()}
		if asJSON {
			args = append([]string{"--json"}, args...)
		}
		r := tg(t, "", args...)
		if r.code != 0 {
			t.Fatalf("inbox: %d %s", r.code, r.stderr)
		}
		if asJSON {
			var m map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["id"] != id.String() || m["possible_duplicate"] != true {
				t.Fatalf("inbox --json printed %q (%v), want %s with possible_duplicate true", r.stdout, err, id)
			}
		} else if first := strings.SplitN(r.stdout, "\n", 2)[0]; !strings.Contains(first, id.String()) || !strings.Contains(first, "POSSIBLE DUPLICATE") {
			t.Fatalf("inbox printed %q first, want %s marked POSSIBLE DUPLICATE", first, id)
		}
	}
}

// A FLASH, SECRET or TOP SECRET telegram comes under a banner, with a bell
// on a terminal; others under none.
func TestBanner(t *testing.T) {
	for _, c := range []struct {
		p    telegram.Precedence
		c    telegram.Classification
		tty  bool
		want string
	}{
		{telegram.Flash, telegram.Unclassified, false, "!!!!!!!!  HỎA TỐC · FLASH  !!!!!!!!\n"},
		{telegram.Routine, telegram.Secret, true, "\a!!!!!!!!  TỐI MẬT · SECRET  !!!!!!!!\n"},
		{telegram.Flash, telegram.TopSecret, false, "!!!!!!!!  HỎA TỐC · FLASH  ·  TUYỆT MẬT · TOP SECRET  !!!!!!!!\n"},
		{telegram.Immediate, telegram.Confidential, true, ""},
	} {
		if got := banner(c.p, c.c, c.tty); got != c.want {
			t.Errorf("banner(%s, %s, %v) = %q, want %q", c.p, c.c, c.tty, got, c.want)
		}
	}
}

// tg inbox --stored searches what the terminal stored: by sender,
// precedence, time, and text in any case, with or without diacritics;
// JSON carries the body as text too.
func TestInboxSearch(t *testing.T) {
	site := daemontest.Start(t)
	na := site.IDDir("NA.UBND")
	for _, s := range []struct{ from, prec, subject, body string }{
		{"HN.UBND", "FLASH", "Báo cáo lũ", "Mực nước sông Lam vượt báo động 3"},
		{"CP.VPCP", "ROUTINE", "Lịch họp", "Họp giao ban thứ Hai"},
		{"HN.UBND", "PRIORITY", "Đề nghị", "Báo cáo thiệt hại"},
	} {
		if r := tg(t, "", "--id", site.IDDir(s.from), "send", "--to", "NA.UBND", "--prec", s.prec, "--subject", s.subject, s.body); r.code != 0 {
			t.Fatalf("send: %d %s", r.code, r.stderr)
		}
	}
	if r := tg(t, "", "--id", na, "inbox"); r.code != 0 {
		t.Fatalf("inbox: %d %s", r.code, r.stderr)
	}
	count := func(args ...string) int {
		t.Helper()
		r := tg(t, "", append([]string{"--id", na, "--json", "inbox", "--stored"}, args...)...)
		if r.code != 0 {
			t.Fatalf("inbox --stored %v: %d %s", args, r.code, r.stderr)
		}
		return len(jsonLines(t, r.stdout))
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, 3},
		{[]string{"--search", "muc nuoc"}, 1},
		{[]string{"--search", "BÁO CÁO"}, 2}, // a subject and a body
		{[]string{"--search", "de nghi"}, 1}, // Đ as D
		{[]string{"--from", "CP.VPCP"}, 1},
		{[]string{"--prec", "Hỏa tốc"}, 1},
		{[]string{"--since", "1d"}, 3},
		{[]string{"--since", "2099-01-01T00:00:00Z"}, 0},
		{[]string{"--from", "hn.ubnd", "--search", "thiệt hại"}, 1},
	} {
		if got := count(c.args...); got != c.want {
			t.Errorf("inbox --stored %v: %d telegrams, want %d", c.args, got, c.want)
		}
	}
	r := tg(t, "", "--id", na, "--json", "inbox", "--stored", "--prec", "FLASH")
	if ls := jsonLines(t, r.stdout); len(ls) != 1 || ls[0]["text"] != "Mực nước sông Lam vượt báo động 3" {
		t.Errorf("JSON text: %s", r.stdout)
	}
	if r := tg(t, "", "--id", na, "inbox", "--search", "x"); r.code != exitInvalid || !strings.Contains(r.stderr, "add --stored") {
		t.Errorf("a search without --stored: %d %s", r.code, r.stderr)
	}
}

// tg receipts --stored prints again every report the terminal received.
func TestReceiptsStored(t *testing.T) {
	site := daemontest.Start(t)
	hn := site.IDDir("HN.UBND")
	for _, to := range []string{"NA.UBND", "NA.TU"} {
		if r := tg(t, "", "--id", hn, "send", "--to", to, "x"); r.code != 0 {
			t.Fatalf("send: %s", r.stderr)
		}
	}
	tg(t, "", "--id", site.IDDir("NA.UBND"), "inbox")
	tg(t, "", "--id", site.IDDir("NA.TU"), "inbox")
	if r := tg(t, "", "--id", hn, "receipts"); len(lines(r.stdout)) != 2 {
		t.Fatalf("receipts: %q %s", r.stdout, r.stderr)
	}
	if r := tg(t, "", "--id", hn, "receipts"); len(lines(r.stdout)) != 0 { // shown once as they arrive
		t.Fatalf("receipts again: %q", r.stdout)
	}
	r := tg(t, "", "--id", hn, "--json", "receipts", "--stored")
	ls := jsonLines(t, r.stdout)
	if len(ls) != 2 || ls[0]["status"] != "DELIVERED" || ls[1]["status"] != "DELIVERED" {
		t.Fatalf("receipts --stored: %s %s", r.stdout, r.stderr)
	}
}
