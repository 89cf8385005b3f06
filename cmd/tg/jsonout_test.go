package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

func TestNoNulls(t *testing.T) {
	type inner struct {
		List  []string           `json:"list"`
		Map   map[string]int     `json:"map"`
		At    time.Time          `json:"at"`
		ID    telegram.ID        `json:"id"`
		Bytes []byte             `json:"bytes"`
		hide  []int              // unexported: left alone
		Addrs []telegram.Address `json:"addrs"`
	}
	type outer struct {
		In   inner   `json:"in"`
		Ptr  *inner  `json:"ptr"`
		Nil  *inner  `json:"nil"`
		Many []inner `json:"many"`
		Any  any     `json:"any"`
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	v := outer{In: inner{At: at, ID: telegram.ID{1}, hide: nil}, Ptr: &inner{List: []string{"a"}}, Many: []inner{{}}, Any: map[string][]int{"k": nil}}
	b, err := json.Marshal(noNulls(v))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	want := `{"in":{"list":[],"map":{},"at":"2026-12-01T08:00:00Z","id":"` + telegram.ID{1}.String() + `","bytes":null,"addrs":[]},` +
		`"ptr":{"list":["a"],"map":{},"at":"0001-01-01T00:00:00Z","id":"00000000000000000000000000","bytes":null,"addrs":[]},` +
		`"nil":null,"many":[{"list":[],"map":{},"at":"0001-01-01T00:00:00Z","id":"00000000000000000000000000","bytes":null,"addrs":[]}],"any":{"k":[]}}`
	if got != want {
		t.Fatalf("noNulls:\n got %s\nwant %s", got, want)
	}
	if v.In.List != nil || v.Ptr.Map != nil {
		t.Error("noNulls changed its argument")
	}
}

// The JSON of commands with empty lists says [] (a telegram without info
// addressees, a switch without links, no MINIMIZE in force).
func TestJSONListsAreNeverNull(t *testing.T) {
	site := daemontest.Start(t)
	op := site.IDDir("operator")
	id := site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"DN.UBND"}, Body: []byte("x")}).String()
	for _, args := range [][]string{{"show", id}, {"links"}, {"minimize"}, {"list"}, {"notice"}, {"top", "--once", "--interval", "10ms"}} {
		r := tg(t, "", append([]string{"--id", op, "--json"}, args...)...)
		if r.code != 0 || strings.Contains(r.stdout, "null") {
			t.Errorf("tg --json %v: %d %s %s", args, r.code, r.stdout, r.stderr)
		}
	}
}

// Times print in the local zone, with the zone; --utc prints UTC.
func TestTimesInTheLocalZone(t *testing.T) {
	site := daemontest.Start(t)
	id := site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"DN.UBND"}, Body: []byte("x")})
	ict := time.FixedZone("ICT", 7*3600)
	saved := localZone
	localZone = func() *time.Location { return ict }
	defer func() { localZone = saved }()
	filed := id.Time()
	local := filed.In(ict).Format("2006-01-02 15:04:05") + " ICT"
	utc := filed.UTC().Format("2006-01-02 15:04:05") + " UTC"
	r := tg(t, "", "--id", site.IDDir("operator"), "list")
	if !strings.Contains(r.stdout, local) {
		t.Errorf("list: no %q in\n%s", local, r.stdout)
	}
	r = tg(t, "", "--id", site.IDDir("operator"), "--utc", "list")
	if !strings.Contains(r.stdout, utc) {
		t.Errorf("list --utc: no %q in\n%s", utc, r.stdout)
	}
}
