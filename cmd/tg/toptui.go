package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// tg top on a terminal: a bubbletea program. It follows the terminal's
// size, colours the precedences, puts overdue and FLASH first, and takes
// keys: q quits, ? shows help, s cycles the sort, / filters by agency,
// Esc clears the filter.

// topSorts are the orders s cycles through; the first is the default.
var topSorts = []string{"urgent", "waiting", "oldest", "agency"}

type topModel struct {
	fetch    func() (wire.Queues, error)
	interval time.Duration
	q        wire.Queues
	prev     *wire.Totals
	err      error
	width    int
	height   int
	sort     int
	filter   string
	typing   bool // the filter is being typed
	help     bool
}

type topData struct {
	q   wire.Queues
	err error
}

type topTick struct{}

func (m topModel) load() tea.Cmd {
	return func() tea.Msg {
		q, err := m.fetch()
		return topData{q, err}
	}
}

func (m topModel) Init() tea.Cmd { return m.load() }

func (m topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case topData:
		if msg.err == nil {
			if !m.q.Totals.At.IsZero() {
				t := m.q.Totals
				m.prev = &t
			}
			m.q = msg.q
		}
		m.err = msg.err
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return topTick{} })
	case topTick:
		return m, m.load()
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !m.typing { // keys typed faster than read: one at a time
			var cmd tea.Cmd
			var mm tea.Model = m
			for _, r := range msg.Runes {
				if mm, cmd = mm.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}); cmd != nil {
					return mm, cmd
				}
			}
			return mm, nil
		}
		if m.typing {
			switch msg.Type {
			case tea.KeyEnter:
				m.typing = false
			case tea.KeyEsc:
				m.typing, m.filter = false, ""
			case tea.KeyBackspace:
				if m.filter != "" {
					m.filter = m.filter[:len(m.filter)-1]
				}
			case tea.KeyRunes:
				m.filter += string(msg.Runes)
			}
			return m, nil
		}
		switch msg.String() {
		case "q", "ctrl+c":
			return m, tea.Quit
		case "?":
			m.help = !m.help
		case "s":
			m.sort = (m.sort + 1) % len(topSorts)
		case "/":
			m.typing, m.filter = true, ""
		case "esc":
			m.filter, m.help = "", false
		}
	}
	return m, nil
}

// ANSI colours of the precedences.
var precColour = map[telegram.Precedence]string{telegram.Flash: "\x1b[1;31m", telegram.Immediate: "\x1b[33m", telegram.Priority: "\x1b[34m"}

func (m topModel) rows() []wire.QueueRow {
	rows := slices.Clone(m.q.Rows)
	if m.filter != "" {
		f := strings.ToUpper(m.filter)
		rows = slices.DeleteFunc(rows, func(r wire.QueueRow) bool { return !strings.Contains(string(r.Agency), f) })
	}
	switch topSorts[m.sort] {
	case "urgent": // overdue first, then FLASH first, then most waiting
		slices.SortStableFunc(rows, func(a, b wire.QueueRow) int {
			if (a.Overdue > 0) != (b.Overdue > 0) {
				if a.Overdue > 0 {
					return -1
				}
				return 1
			}
			if a.Precedence != b.Precedence {
				return int(b.Precedence) - int(a.Precedence)
			}
			return int(b.Waiting - a.Waiting)
		})
	case "agency":
		sortRows(rows, "agency")
	default:
		sortRows(rows, topSorts[m.sort])
	}
	return rows
}

func (m topModel) View() string {
	var b strings.Builder
	if m.help {
		b.WriteString("dienbao top — keys\n\n  q        quit\n  ?        this help (any key but q closes it)\n" +
			"  s        sort: urgent (overdue, then FLASH first), waiting, oldest, agency\n" +
			"  /        filter by agency (type, Enter to keep, Esc to clear)\n  Esc      clear the filter\n")
		return b.String()
	}
	var s strings.Builder
	topHeader(&s, m.q, m.prev)
	for _, l := range strings.SplitAfter(s.String(), "\n") {
		b.WriteString(cut(strings.TrimSuffix(l, "\n"), m.width))
		if strings.HasSuffix(l, "\n") {
			b.WriteString("\n")
		}
	}
	if m.err != nil {
		fmt.Fprintf(&b, "\x1b[31merror: %v\x1b[0m\n", m.err)
	}
	status := "sort: " + topSorts[m.sort]
	if m.filter != "" || m.typing {
		status += "   filter: " + m.filter
		if m.typing {
			status += "_"
		}
	}
	fmt.Fprintf(&b, "%s   (? help, q quit)\n\n", status)
	head := fmt.Sprintf("%-20s %-10s %8s %9s %6s %7s %8s %8s %4s", "AGENCY", "PRECEDENCE", "WAITING", "IN FLIGHT", "HELD", "PARKED", "OVERDUE", "OLDEST", "TERM")
	b.WriteString(cut(head, m.width) + "\n")
	used := strings.Count(b.String(), "\n")
	room := m.height - used - 1
	if m.height == 0 {
		room = 20
	}
	rows := m.rows()
	for i, r := range rows {
		if i >= room {
			fmt.Fprintf(&b, "… %d more", len(rows)-i)
			break
		}
		line := cut(fmt.Sprintf("%-20s %-10s %8d %9d %6d %7d %8d %8s %4d", r.Agency, r.Precedence, r.Waiting, r.InFlight, r.Held, r.Parked,
			r.Overdue, age(r.OldestAgeSeconds), r.Connected), m.width)
		switch {
		case r.Overdue > 0:
			line = "\x1b[41;97m" + line + "\x1b[0m"
		case precColour[r.Precedence] != "":
			line = precColour[r.Precedence] + line + "\x1b[0m"
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// cut shortens s to width columns (0: no limit).
func cut(s string, width int) string {
	if width > 0 && len([]rune(s)) > width {
		return string([]rune(s)[:width])
	}
	return s
}

// runTUI runs tg top as a terminal program until q.
func (c *topCmd) runTUI(ctx context.Context, fetch func() (wire.Queues, error)) error {
	p := tea.NewProgram(topModel{fetch: fetch, interval: c.Interval}, tea.WithAltScreen(), tea.WithContext(ctx))
	_, err := p.Run()
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}
