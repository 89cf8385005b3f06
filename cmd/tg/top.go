package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"golang.org/x/term"
)

type topCmd struct {
	Interval time.Duration `default:"1s" help:"Refresh interval."`
	Once     bool          `help:"Print one screen, with rates over one interval, and exit (also when standard output is not a terminal)."`
	Rows     int           `default:"20" help:"Queue rows shown, most waiting first."`
}

func (c *topCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	tty := false
	if f, ok := e.stdout.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	fetch := func() (wire.Queues, error) { return cl.Queues(e.ctx, 10) }
	if tty && !c.Once && !e.json {
		return c.runTUI(e.ctx, fetch)
	}
	// One screen: a first sample for the rates, then one interval later
	// the screen (text, or with --json one object).
	q, err := cl.Queues(e.ctx, 0)
	if err != nil {
		return err
	}
	prev := q.Totals
	select {
	case <-e.ctx.Done():
		return nil
	case <-time.After(c.Interval):
	}
	if q, err = fetch(); err != nil {
		return err
	}
	if e.json {
		return e.emit(topJSON(q, &prev))
	}
	var b strings.Builder
	c.screen(&b, q, &prev)
	fmt.Fprint(e.stdout, b.String())
	return nil
}

// topJSON is tg --json top --once: the figures, the rates over the
// interval, every row (overdue and FLASH first) and the overdue list.
func topJSON(q wire.Queues, prev *wire.Totals) any {
	type rate struct {
		Filed     float64 `json:"filed"`
		Delivered float64 `json:"delivered"`
	}
	f := figuresOf(q)
	rates := map[string]rate{}
	if dt := q.Totals.At.Sub(prev.At).Seconds(); dt > 0 {
		for p := telegram.Routine; p <= telegram.Flash; p++ {
			rates[p.String()] = rate{float64(q.Totals.Filed[p]-prev.Filed[p]) / dt, float64(q.Totals.Delivered[p]-prev.Delivered[p]) / dt}
		}
	}
	rows := topModel{q: q}.rows()
	var minimize []string
	for _, m := range q.Minimize {
		minimize = append(minimize, m.String())
	}
	return struct {
		At        time.Time         `json:"at"`
		Waiting   int64             `json:"waiting"`
		InFlight  int64             `json:"in_flight"`
		Overdue   int64             `json:"overdue"`
		Held      int64             `json:"held"`
		Parked    int64             `json:"parked"`
		Rates     map[string]rate   `json:"rates_per_second"`
		Minimize  []string          `json:"minimize"`
		Admission string            `json:"admission,omitempty"`
		Notices   []wire.Notice     `json:"notices"`
		Rows      []wire.QueueRow   `json:"rows"`
		List      []wire.OverdueRow `json:"overdue_telegrams"`
	}{q.Totals.At, f.waiting, f.inflight, f.overdue, f.held, f.parked, rates, minimize, q.Admission, q.Notices, rows, q.Overdue}
}

type topFigures struct{ waiting, inflight, overdue, held, parked int64 }

func figuresOf(q wire.Queues) topFigures {
	var f topFigures
	for _, r := range q.Rows {
		f.waiting += r.Waiting
		f.inflight += r.InFlight
		f.overdue += r.Overdue
		f.held += r.Held
		f.parked += r.Parked
	}
	return f
}

// screen renders one refresh: rates since the previous one, the busiest
// queues, and the oldest overdue telegrams.
func (c *topCmd) screen(b *strings.Builder, q wire.Queues, prev *wire.Totals) {
	topHeader(b, q, prev)
	fmt.Fprintf(b, "\n")
	rows := append([]wire.QueueRow(nil), q.Rows...)
	sortRows(rows, "waiting")
	if len(rows) > c.Rows {
		rows = rows[:c.Rows]
	}
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENCY\tPRECEDENCE\tWAITING\tIN FLIGHT\tHELD\tPARKED\tOVERDUE\tOLDEST\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", r.Agency, r.Precedence, r.Waiting, r.InFlight, r.Held, r.Parked,
			r.Overdue, age(r.OldestAgeSeconds))
	}
	tw.Flush()
	if len(q.Overdue) > 0 {
		fmt.Fprintf(b, "\nOVERDUE (past the speed-of-service target)\n")
		tw = tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		for _, o := range q.Overdue {
			fmt.Fprintf(tw, "%s\t%s\t%s\twaiting %s\n", o.ID, o.Agency, o.Precedence, age(o.AgeSeconds))
		}
		tw.Flush()
	}
}

// header is the first lines: the time, the figures, MINIMIZE and
// admission control, the rates since prev.
func topHeader(b *strings.Builder, q wire.Queues, prev *wire.Totals) {
	fmt.Fprintf(b, "dienbao top — %s\n", q.Totals.At.Local().Format("2006-01-02 15:04:05"))
	f := figuresOf(q)
	fmt.Fprintf(b, "waiting %d  in flight %d  overdue %d  held %d  parked %d\n", f.waiting, f.inflight, f.overdue, f.held, f.parked)
	for _, m := range q.Minimize { // reasons are printable: checked when declared
		fmt.Fprintf(b, "%s\n", m)
	}
	if q.Admission != "" {
		fmt.Fprintf(b, "SATURATED: %s\n", q.Admission)
	}
	for _, n := range q.Notices {
		fmt.Fprintf(b, "%s\n", audit.Escape(noticeLine(n, time.Now()), false))
	}
	fmt.Fprint(b, "rate/s   ")
	for p := telegram.Flash; p >= telegram.Routine; p-- {
		filed, deliv := "-", "-"
		if prev != nil {
			dt := q.Totals.At.Sub(prev.At).Seconds()
			if dt > 0 {
				filed = fmt.Sprintf("%.0f", float64(q.Totals.Filed[p]-prev.Filed[p])/dt)
				deliv = fmt.Sprintf("%.0f", float64(q.Totals.Delivered[p]-prev.Delivered[p])/dt)
			}
		}
		fmt.Fprintf(b, "  %s filed %s delivered %s", p, filed, deliv)
	}
	fmt.Fprintf(b, "\n")
}
