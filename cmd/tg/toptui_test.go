package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// topSite files: 5 ROUTINE to HCM.UBND, 2 PRIORITY to NA.VINH.UBND and
// 1 FLASH to DN.UBND, overdue at once.
func topSite(t *testing.T) *daemontest.Site {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Speed.Flash = daemon.Duration(time.Millisecond)
		c.Custody.TimerInterval = daemon.Duration(50 * time.Millisecond)
	})
	send := func(to telegram.Address, p telegram.Precedence, n int) {
		for range n {
			site.Send("HN.UBND", client.Telegram{To: []telegram.Address{to}, Precedence: p, Body: []byte("x")})
		}
	}
	send("HCM.UBND", telegram.Routine, 5)
	send("NA.VINH.UBND", telegram.Priority, 2)
	send("DN.UBND", telegram.Flash, 1)
	return site
}

// tg top's terminal program, driven by its keys on the real switch's
// figures: overdue and FLASH first in red, the terminal's size followed,
// s sorts, / filters, ? helps, q quits.
func TestTopTerminalProgram(t *testing.T) {
	site := topSite(t)
	cl := site.Dial("operator")
	fetch := func() (wire.Queues, error) { return cl.Queues(context.Background(), 10) }
	var m tea.Model = topModel{fetch: fetch, interval: time.Second}
	m, _ = m.Update(tea.WindowSizeMsg{Width: 60, Height: 10})
	deadline := time.Now().Add(10 * time.Second)
	for { // until the FLASH is overdue on the switch
		m, _ = m.Update(m.Init()())
		if strings.Contains(m.View(), "overdue 1") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows := func(v string) []string {
		var out []string
		for _, l := range strings.Split(v, "\n") {
			if f := strings.Fields(ansi.ReplaceAllString(l, "")); len(f) > 1 && strings.Contains(f[0], ".") {
				out = append(out, f[0]+" "+f[1])
			}
		}
		return out
	}
	v := m.View()
	lines := strings.Split(strings.TrimRight(v, "\n"), "\n")
	if len(lines) > 10 {
		t.Errorf("%d lines on a 10-line terminal:\n%s", len(lines), v)
	}
	for _, l := range lines {
		if n := len([]rune(ansi.ReplaceAllString(l, ""))); n > 60 {
			t.Errorf("a %d-column line on a 60-column terminal: %q", n, l)
		}
	}
	if got := rows(v); strings.Join(got, ",") != "DN.UBND FLASH,NA.VINH.UBND PRIORITY,HCM.UBND ROUTINE" {
		t.Fatalf("rows, urgent first: %v\n%s", got, v)
	}
	if !strings.Contains(v, "\x1b[41;97mDN.UBND") {
		t.Errorf("the overdue FLASH row is not in red:\n%q", v)
	}
	key := func(s string) tea.Cmd {
		var cmd tea.Cmd
		switch s {
		case "enter":
			m, cmd = m.Update(tea.KeyMsg{Type: tea.KeyEnter})
		case "esc":
			m, cmd = m.Update(tea.KeyMsg{Type: tea.KeyEsc})
		default:
			m, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)})
		}
		return cmd
	}
	key("s") // most waiting first
	if got := rows(m.View()); strings.Join(got, ",") != "HCM.UBND ROUTINE,NA.VINH.UBND PRIORITY,DN.UBND FLASH" {
		t.Errorf("sorted by waiting: %v", got)
	}
	key("/")
	key("n")
	key("a")
	key("enter")
	if got := rows(m.View()); strings.Join(got, ",") != "NA.VINH.UBND PRIORITY" || !strings.Contains(m.View(), "filter: na") {
		t.Errorf("filtered by na: %v\n%s", got, m.View())
	}
	m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s?")}) // typed faster than read: s, then ?
	if !strings.Contains(m.View(), "s        sort:") {
		t.Errorf("help after s?: %s", m.View())
	}
	key("esc")
	key("?")
	if !strings.Contains(m.View(), "s        sort:") {
		t.Errorf("help: %s", m.View())
	}
	if cmd := key("q"); cmd == nil || cmd() != tea.Quit() {
		t.Error("q does not quit")
	}
}

// tg --json top --once: one object with the figures, rates, rows (urgent
// first) and the overdue telegrams.
func TestTopJSON(t *testing.T) {
	site := topSite(t)
	deadline := time.Now().Add(10 * time.Second)
	var out struct {
		Waiting  int64                      `json:"waiting"`
		Overdue  int64                      `json:"overdue"`
		Rates    map[string]json.RawMessage `json:"rates_per_second"`
		Rows     []wire.QueueRow            `json:"rows"`
		Telegram []map[string]any           `json:"overdue_telegrams"`
	}
	for {
		r := tg(t, "", "--id", site.IDDir("operator"), "--json", "top", "--once", "--interval", "100ms")
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("%q %s: %v", r.stdout, r.stderr, err)
		}
		if out.Overdue == 1 || time.Now().After(deadline) {
			break
		}
	}
	if out.Waiting != 8 || out.Overdue != 1 || len(out.Rates) != 4 || len(out.Rows) != 3 || out.Rows[0].Agency != "DN.UBND" ||
		len(out.Telegram) != 1 || out.Telegram[0]["agency"] != "DN.UBND" {
		t.Fatalf("top --json: %+v", out)
	}
}
