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
