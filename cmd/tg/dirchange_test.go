package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/telegram"
)

// writeDirectory rewrites the site's directory: the dev agencies as edit
// changes them.
func writeDirectory(t *testing.T, dir string, edit func([]directory.Agency) []directory.Agency) {
	t.Helper()
	path := filepath.Join(dir, "directory.toml")
	d, err := directory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := directory.New(edit(slices.Clone(daemon.DevAgencies)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := nd.WithKeysDir(d.KeysDir()).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func without(a telegram.Address) func([]directory.Agency) []directory.Agency {
	return func(as []directory.Agency) []directory.Agency {
		return slices.DeleteFunc(as, func(ag directory.Agency) bool { return ag.Address == a })
	}
}

func with(a telegram.Address, f func(*directory.Agency)) func([]directory.Agency) []directory.Agency {
	return func(as []directory.Agency) []directory.Agency {
		for i := range as {
			if as[i].Address == a {
				f(&as[i])
			}
		}
		return as
	}
}

// A directory change never hides custody: dropping an agency with
// telegrams waiting is refused (audited); drain keeps it deliverable and
// closed to filings; tg move-queue re-addresses its telegrams (IDs and
// order kept, senders told MOVED, audited); then it may go. Exact counts.
func TestDirectoryChangesKeepCustody(t *testing.T) {
	dir := t.TempDir()
	plain := func(c *daemon.Config) { c.EndToEnd.AllowPlain = []string{"UNCLASSIFIED"} }
	site := daemontest.StartWith(t, dir, nil, plain)
	op, aud := site.IDDir("operator"), site.IDDir("auditor")
	to := func(as ...telegram.Address) []telegram.Address { return as }
	const old, heir = telegram.Address("NA.VINH.UBND"), telegram.Address("NA.UBND")
	body := []byte("x")
	a1 := site.Send("HN.UBND", client.Telegram{To: to(old), Precedence: telegram.Routine, Plain: true, Body: body}).String()
	a2 := site.Send("HN.UBND", client.Telegram{To: to(old), Precedence: telegram.Flash, Plain: true, Body: body}).String()
	a3 := site.Send("HN.UBND", client.Telegram{To: to(old), Precedence: telegram.Routine, Body: body}).String() // sealed for NA.VINH.UBND
	b := site.Send("CP.VPCP", client.Telegram{To: to(old, heir), Precedence: telegram.Routine, Plain: true, Body: body}).String()

	// 1. Dropping it is refused, audited; it still takes filings.
	writeDirectory(t, dir, without(old))
	err := site.TryReloadDirectory()
	if err == nil || !strings.Contains(err.Error(), "NA.VINH.UBND (4 telegrams, 0 delivery reports)") {
		t.Fatalf("reload dropping NA.VINH.UBND: %v", err)
	}
	r := tg(t, "", "--id", aud, "--json", "audit", "query", "--event", "directory")
	if es := jsonLines(t, r.stdout); len(es) != 1 || !strings.Contains(es[0]["reason"].(string), "NA.VINH.UBND (4 telegrams") {
		t.Fatalf("audit of the refusal: %s %s", r.stdout, r.stderr)
	}
	if r := tg(t, "", "--id", site.IDDir("HN.UBND"), "send", "--plain", "--to", string(old), "y"); r.code != 0 {
		t.Fatalf("filing after a refused reload: %d %s", r.code, r.stderr)
	}
	c := strings.TrimSpace(tg(t, "", "--id", op, "--json", "list", "--agency", string(old), "--newest", "--limit", "1").stdout)
	var page struct {
		Rows []struct {
			ID string `json:"id"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(c), &page); err != nil || len(page.Rows) != 1 {
		t.Fatalf("list: %q %v", c, err)
	}
	c = page.Rows[0].ID

	// 2. Draining: accepted; filings refused; deliverable; shown so.
	writeDirectory(t, dir, with(old, func(ag *directory.Agency) { ag.Drain = true }))
	site.ReloadDirectory()
	r = tg(t, "", "--id", site.IDDir("HN.UBND"), "send", "--plain", "--to", string(old), "z")
	if r.code != exitNotExist || !strings.Contains(r.stderr, "NA.VINH.UBND is closing") {
		t.Fatalf("filing to a draining agency: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "--id", op, "queues"); !strings.Contains(r.stdout, "NA.VINH.UBND (draining)") {
		t.Fatalf("queues of a draining agency:\n%s", r.stdout)
	}

	// 3. Moved: every copy goes to NA.UBND, which had b already.
	r = tg(t, "", "--id", op, "move-queue", string(old), string(heir))
	if r.code != 0 || lines(r.stdout)[0] != "moved 5 telegrams from NA.VINH.UBND to NA.UBND" || len(lines(r.stdout)) != 1 {
		t.Fatalf("move-queue: %d %q %s", r.code, r.stdout, r.stderr)
	}
	got, _ := listRows(t, op, "--agency", string(heir))
	want := [][]string{{a1, "NA.UBND", "waiting"}, {a2, "NA.UBND", "waiting"}, {a3, "NA.UBND", "waiting"}, {b, "NA.UBND", "waiting"}, {c, "NA.UBND", "waiting"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("NA.UBND after the move:\n got %v\nwant %v", got, want)
	}
	if got, _ := listRows(t, op, "--agency", string(old)); len(got) != 0 {
		t.Fatalf("NA.VINH.UBND after the move: %v", got)
	}
	var show struct {
		Addressees []map[string]any `json:"addressees"`
	}
	r = tg(t, "", "--id", op, "--json", "show", a1)
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil || len(show.Addressees) != 2 ||
		show.Addressees[0]["state"] != "moved" || show.Addressees[0]["moved_to"] != "NA.UBND" || show.Addressees[1]["state"] != "waiting" {
		t.Fatalf("show after the move: %s", r.stdout)
	}
	r = tg(t, "", "--id", aud, "--json", "audit", "query", "--event", "moved")
	if es := jsonLines(t, r.stdout); len(es) != 5 || es[0]["actor"] != "operator (dev)" || es[0]["reason"] != "to NA.UBND" {
		t.Fatalf("audit of the move: %s", r.stdout)
	}

	// 4. NA.UBND receives the plain ones; the one sealed for NA.VINH.UBND
	// it cannot open, and refuses. The senders are told each step.
	got4 := site.Receive("NA.UBND", client.ReceiveOptions{Inbox: true})
	var ids []string
	for _, d := range got4.Telegrams {
		ids = append(ids, d.Header.ID.String())
	}
	if want := []string{a2, a1, b, c}; !slices.Equal(ids, want) { // a3 refused
		t.Fatalf("NA.UBND received %v, want %v (FLASH first, then in filing order)", ids, want)
	}
	reports := site.Receive("HN.UBND", client.ReceiveOptions{Receipts: true}).Receipts
	count := map[string]int{}
	for _, rc := range reports {
		k := rc.ID.String() + " " + string(rc.Addressee) + " " + rc.Status.String() + " " + string(rc.MovedTo) + " " + rc.Reason
		count[k]++
	}
	wantReports := map[string]int{
		a1 + " NA.VINH.UBND MOVED NA.UBND ": 1, a2 + " NA.VINH.UBND MOVED NA.UBND ": 1, a3 + " NA.VINH.UBND MOVED NA.UBND ": 1,
		c + " NA.VINH.UBND MOVED NA.UBND ": 1,
		a1 + " NA.UBND DELIVERED  ":        1, a2 + " NA.UBND DELIVERED  ": 1, c + " NA.UBND DELIVERED  ": 1,
		a3 + " NA.UBND NOT_DELIVERED  unreadable": 1,
	}
	if len(reports) != 8 || !mapsEqual(count, wantReports) {
		t.Fatalf("HN.UBND's reports: %v", count)
	}

	// 5. Nothing waits: it may leave the directory now.
	writeDirectory(t, dir, without(old))
	if err := site.TryReloadDirectory(); err != nil {
		t.Fatalf("reload once nothing waits: %v", err)
	}
	if r := tg(t, "", "--id", op, "queues"); strings.Contains(r.stdout, string(old)) {
		t.Fatalf("queues after it left:\n%s", r.stdout)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// listRows runs tg list and returns, per row, ID, addressee and state,
// and the lines that are not rows.
func listRows(t *testing.T, id string, args ...string) (got [][]string, notes []string) {
	t.Helper()
	r := tg(t, "", append([]string{"--id", id, "list"}, args...)...)
	if r.code != 0 {
		t.Fatalf("list %v: %d %s", args, r.code, r.stderr)
	}
	for _, l := range lines(r.stdout)[1:] {
		fs := strings.Fields(l)
		if len(fs) < 11 || len(fs[0]) != 26 { // ID, date, time, zone, age, precedence, class, from, to, state, bytes
			notes = append(notes, l)
			continue
		}
		got = append(got, []string{fs[0], fs[8], fs[9]})
	}
	return got, notes
}

// An agency dropped from the directory while the switch was stopped,
// with telegrams waiting, is shown flagged (tg queues, tg list) and its
// queue can be moved.
func TestUnlistedCustodyIsShown(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	const old = telegram.Address("NA.VINH.UBND")
	id := site.Send("HN.UBND", client.Telegram{To: []telegram.Address{old}, Body: []byte("x")}).String()
	site.Stop()
	writeDirectory(t, dir, without(old))
	site = daemontest.StartIn(t, dir)
	op := site.IDDir("operator")
	r := tg(t, "", "--id", op, "queues")
	if !strings.Contains(r.stdout, "NA.VINH.UBND (NOT IN DIRECTORY)") {
		t.Fatalf("queues:\n%s", r.stdout)
	}
	r = tg(t, "", "--id", op, "list")
	if ls := lines(r.stdout); len(ls) != 2 || !strings.HasPrefix(ls[1], id) || !strings.HasSuffix(ls[1], "NOT IN DIRECTORY") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	r = tg(t, "", "--id", op, "--json", "list")
	if !strings.Contains(r.stdout, `"unlisted":true`) {
		t.Fatalf("list --json: %s", r.stdout)
	}
	r = tg(t, "", "--id", op, "move-queue", string(old), "NA.UBND")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "moved 1 telegrams from NA.VINH.UBND to NA.UBND" {
		t.Fatalf("move-queue of an unlisted agency: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if got, _ := listRows(t, op); len(got) != 1 || got[0][1] != "NA.UBND" {
		t.Fatalf("after the move: %v", got)
	}
}
