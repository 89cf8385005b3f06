package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// tg queues --age: the waiting telegrams by age, per agency and
// precedence, as qshape shows a queue; exact rows. (Every telegram here is
// seconds old: the buckets' bounds are wire's TestAgeBuckets.)
func TestQueuesByAge(t *testing.T) {
	site := daemontest.Start(t)
	send := func(to telegram.Address, p telegram.Precedence, n int) {
		for range n {
			site.Send("HN.UBND", client.Telegram{To: []telegram.Address{to}, Precedence: p, Body: []byte("x")})
		}
	}
	send("HCM.UBND", telegram.Routine, 3)
	send("HCM.UBND", telegram.Flash, 1)
	send("DN.UBND", telegram.Priority, 2)
	r := tg(t, "", "--id", site.IDDir("operator"), "queues", "--age")
	if r.code != 0 {
		t.Fatalf("queues --age: %d %s", r.code, r.stderr)
	}
	var got [][]string
	for _, l := range lines(r.stdout) {
		got = append(got, strings.Fields(l))
	}
	want := [][]string{
		{"AGENCY", "PRECEDENCE", "TOTAL", "0-1m", "1-5m", "5-10m", "10-30m", "30m-1h", "1-3h", "3-6h", ">6h"},
		{"TOTAL", "6", "6", "0", "0", "0", "0", "0", "0", "0"},
		{"DN.UBND", "PRIORITY", "2", "2", "0", "0", "0", "0", "0", "0", "0"},
		{"HCM.UBND", "FLASH", "1", "1", "0", "0", "0", "0", "0", "0", "0"},
		{"HCM.UBND", "ROUTINE", "3", "3", "0", "0", "0", "0", "0", "0", "0"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("queues --age:\n%s\nwant rows %v", r.stdout, want)
	}
	r = tg(t, "", "--id", site.IDDir("operator"), "--json", "queues", "--age")
	rows := jsonLines(t, r.stdout)
	if len(rows) != 3 || rows[0]["agency"] != "DN.UBND" || len(rows[0]["ages"].([]any)) != 8 || rows[0]["ages"].([]any)[0] != 2.0 {
		t.Fatalf("queues --age --json: %s", r.stdout)
	}
}
