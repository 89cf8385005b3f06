package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

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
	var prev *wire.Totals
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	if c.Once || !tty { // a first sample, for the rates
		q, err := cl.Queues(e.ctx, 0)
		if err != nil {
			return err
		}
		prev = &q.Totals
		select {
		case <-e.ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	for {
		q, err := cl.Queues(e.ctx, 10)
		if err != nil {
			return err
		}
		var b strings.Builder
		c.screen(&b, q, prev)
		if tty && !c.Once {
			fmt.Fprint(e.stdout, "\x1b[H\x1b[2J")
		}
		fmt.Fprint(e.stdout, b.String())
		if c.Once || !tty {
			return nil
		}
		t := q.Totals
		prev = &t
		select {
		case <-e.ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// screen renders one refresh: rates since the previous one, the busiest
// queues, and the oldest overdue telegrams.
func (c *topCmd) screen(b *strings.Builder, q wire.Queues, prev *wire.Totals) {
	fmt.Fprintf(b, "dienbao top — %s\n", q.Totals.At.Local().Format("2006-01-02 15:04:05"))
	var waiting, inflight, overdue, held, parked int64
	for _, r := range q.Rows {
		waiting += r.Waiting
		inflight += r.InFlight
		overdue += r.Overdue
		held += r.Held
		parked += r.Parked
	}
	fmt.Fprintf(b, "waiting %d  in flight %d  overdue %d  held %d  parked %d\n", waiting, inflight, overdue, held, parked)
	for _, m := range q.Minimize { // reasons are printable: checked when declared
		fmt.Fprintf(b, "%s\n", m)
	}
	if q.Admission != "" {
		fmt.Fprintf(b, "SATURATED: %s\n", q.Admission)
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
	fmt.Fprintf(b, "\n\n")
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
