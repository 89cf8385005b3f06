package main

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

type queuesCmd struct {
	Sort string `default:"agency" enum:"agency,precedence,waiting,oldest,overdue,tier" help:"Sort by agency, tier, precedence, waiting, oldest or overdue (the last three: largest first)."`
	Age  bool   `help:"The waiting telegrams by age since filing, per agency and precedence, as Postfix's qshape shows a queue (0-1m, 1-5m, 5-10m, 10-30m, 30m-1h, 1-3h, 3-6h, >6h)."`
}

func sortRows(rows []wire.QueueRow, by string) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		switch by {
		case "precedence":
			if a.Precedence != b.Precedence {
				return a.Precedence > b.Precedence
			}
		case "waiting":
			if a.Waiting != b.Waiting {
				return a.Waiting > b.Waiting
			}
		case "oldest":
			if a.OldestAgeSeconds != b.OldestAgeSeconds {
				return a.OldestAgeSeconds > b.OldestAgeSeconds
			}
		case "overdue":
			if a.Overdue != b.Overdue {
				return a.Overdue > b.Overdue
			}
		case "tier":
			if a.Tier != b.Tier {
				return slices.Index(directory.Levels, a.Tier) < slices.Index(directory.Levels, b.Tier)
			}
		}
		if a.Agency != b.Agency {
			return a.Agency < b.Agency
		}
		return a.Precedence > b.Precedence
	})
}

func age(seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	return (time.Duration(seconds) * time.Second).String()
}

func (c *queuesCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	q, err := cl.QueuesWith(e.ctx, wire.QueuesRequest{Ages: c.Age})
	if err != nil {
		return err
	}
	sortRows(q.Rows, c.Sort)
	if c.Age && !e.json {
		printAges(e, q)
		return nil
	}
	if e.json {
		for _, r := range q.Rows {
			if err := e.emit(r); err != nil {
				return err
			}
		}
		return nil
	}
	printQueues(e, q.Rows)
	return nil
}

func printQueues(e *env, rows []wire.QueueRow) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENCY\tTIER\tPRECEDENCE\tWAITING\tIN FLIGHT\tHELD\tPARKED\tDEFERRED\tOVERDUE\tOLDEST\tTERMINALS\t")
	for _, r := range rows {
		name := e.line(string(r.Agency))
		if r.AgencyHeld {
			name += " (held)"
		}
		switch {
		case r.Unlisted:
			name += " (NOT IN DIRECTORY)"
		case r.MovedTo != "":
			name += " (moved to " + e.line(string(r.MovedTo)) + ")"
		case r.Drain:
			name += " (draining)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t\n", name, r.Tier, r.Precedence, r.Waiting, r.InFlight,
			r.Held, r.Parked, r.Deferred, r.Overdue, age(r.OldestAgeSeconds), r.Connected)
	}
	tw.Flush()
}

// ageHeads are the age histogram's column names, as qshape's.
var ageHeads = []string{"0-1m", "1-5m", "5-10m", "10-30m", "30m-1h", "1-3h", "3-6h", ">6h"}

// printAges prints the age histograms: a TOTAL line, then one line per
// agency and precedence with telegrams waiting.
func printAges(e *env, q wire.Queues) {
	// Names left-aligned (padded to one width), counts right-aligned.
	width := len("AGENCY")
	for _, r := range q.Rows {
		width = max(width, len(r.Agency))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s  %-10s\tTOTAL\t%s\t\n", width, "AGENCY", "PRECEDENCE", strings.Join(ageHeads, "\t"))
	line := func(agency, prec string, ages []int64) {
		var total int64
		cells := make([]string, len(ages))
		for i, n := range ages {
			total += n
			cells[i] = strconv.FormatInt(n, 10)
		}
		fmt.Fprintf(tw, "%-*s  %-10s\t%d\t%s\t\n", width, e.line(agency), prec, total, strings.Join(cells, "\t"))
	}
	sum := make([]int64, len(ageHeads))
	for _, r := range q.Rows {
		for i, n := range r.Ages {
			sum[i] += n
		}
	}
	line("TOTAL", "", sum)
	for _, r := range q.Rows {
		var total int64
		for _, n := range r.Ages {
			total += n
		}
		if total > 0 {
			line(string(r.Agency), r.Precedence.String(), r.Ages)
		}
	}
	tw.Flush()
	if q.AgesTruncated {
		fmt.Fprintln(e.stdout, "(counted from the first million telegrams waiting)")
	}
}

type sessionsCmd struct{}

func (c *sessionsCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	list, err := cl.Sessions(e.ctx)
	if err != nil {
		return err
	}
	if e.json {
		for _, s := range list {
			if err := e.emit(s); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENCY\tTERMINAL\tROLE\tSINCE\tREMOTE\tIN FLIGHT\tKEY EXCHANGE")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Agency, e.line(s.Terminal), s.Role, e.when(s.Since),
			s.Remote, s.InFlight, s.KeyExchange)
	}
	return tw.Flush()
}

type showCmd struct {
	ID string `arg:"" help:"Telegram ID."`
}

func (c *showCmd) Run(e *env) error {
	id, cl, err := e.dialAbout(c.ID)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, err := cl.Show(e.ctx, id)
	if err != nil {
		return err
	}
	h := s.Header
	if e.json {
		out := map[string]any{"id": h.ID, "from": h.From, "to": h.To, "info": h.Info, "precedence": h.Precedence,
			"classification": h.Classification, "filed_at": h.FiledAt, "body_len": h.BodyLen, "addressees": s.Addressees, "sealed": h.Sealed}
		if !h.ExpiresAt.IsZero() {
			out["expires_at"] = h.ExpiresAt
		}
		if !h.DeliverAt.IsZero() {
			out["deliver_at"] = h.DeliverAt
		}
		if h.Ref != "" {
			out["ref"] = h.Ref
		}
		return e.emit(out)
	}
	sealed := "plain"
	if h.Sealed {
		sealed = "sealed end to end"
	}
	fmt.Fprintf(e.stdout, "%s  %s  %s  from %s  filed %s  %d bytes, %s\n", h.ID, h.Precedence, h.Classification, h.From,
		e.when(h.FiledAt), h.BodyLen, sealed)
	if !h.DeliverAt.IsZero() {
		fmt.Fprintf(e.stdout, "deliver at %s\n", e.when(h.DeliverAt))
	}
	if !h.ExpiresAt.IsZero() {
		fmt.Fprintf(e.stdout, "latest delivery %s\n", e.when(h.ExpiresAt))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESSEE\tSTATE\tATTEMPTS\tOVERDUE\tAT\tTERMINAL\tREASON")
	for _, a := range s.Addressees {
		at := ""
		if !a.At.IsZero() {
			at = a.At.Local().Format("15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%s\t%s\t%s\n", a.Addressee, a.State, a.Attempts, a.Overdue, at, e.line(a.Terminal), e.line(a.Reason))
	}
	return tw.Flush()
}

// actCmd is hold and release: a telegram, or a whole agency.
type actCmd struct {
	ID     string `arg:"" optional:"" help:"Telegram ID."`
	Agency string `help:"Act on every delivery to this agency instead."`
	Link   string `help:"Act on the link to this peer switch instead (held: traffic diverts to alternates; tg links shows it)." placeholder:"PEER"`
}

type holdCmd struct{ actCmd }
type releaseCmd struct{ actCmd }

func (c *holdCmd) Run(e *env) error {
	if c.Link != "" {
		return c.onLink(e, true)
	}
	return c.act(e, wire.ActHold, wire.ActHoldAgency, "")
}

func (c *releaseCmd) Run(e *env) error {
	if c.Link != "" {
		return c.onLink(e, false)
	}
	return c.act(e, wire.ActRelease, wire.ActReleaseAgency, "")
}

func (c *actCmd) onLink(e *env, hold bool) error {
	if c.ID != "" || c.Agency != "" {
		return fault.E("operator", fault.Invalid, "give a telegram ID, --agency or --link, only one")
	}
	return e.holdLink(c.Link, hold)
}

type cancelCmd struct {
	ID     string `arg:"" help:"Telegram ID."`
	Reason string `help:"What the sender is told (default: cancelled by an operator)."`
}

func (c *cancelCmd) Run(e *env) error {
	return (&actCmd{ID: c.ID}).act(e, wire.ActCancel, "", c.Reason)
}

type requeueCmd struct {
	ID string `arg:"" help:"Telegram ID (parked)."`
}

func (c *requeueCmd) Run(e *env) error { return (&actCmd{ID: c.ID}).act(e, wire.ActRequeue, "", "") }

func (c *actCmd) act(e *env, onTelegram, onAgency, reason string) error {
	op := wire.Operate{Action: onTelegram, Reason: reason}
	switch {
	case c.ID != "" && c.Agency != "":
		return fault.E("operator", fault.Invalid, "give a telegram ID or --agency, not both")
	case c.Agency != "" && onAgency != "":
		op = wire.Operate{Action: onAgency, Agency: telegram.Address(c.Agency)}
	case c.ID != "":
		id, err := telegram.ParseID(c.ID)
		if err != nil {
			return err
		}
		op.ID = id
	default:
		return fault.E("operator", fault.Invalid, "give a telegram ID (or --agency A for hold and release)")
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Operate(e.ctx, op)
	if err != nil {
		return err
	}
	if e.json {
		out := map[string]any{"action": op.Action, "done": res.Done, "skipped": res.Skipped}
		if !op.ID.IsZero() {
			out["id"] = op.ID
		}
		return e.emit(out)
	}
	what := strings.ReplaceAll(op.Action, "_", " ")
	if op.Agency != "" {
		_, err = fmt.Fprintf(e.stdout, "%s: %s\n", what, op.Agency)
		return err
	}
	fmt.Fprintf(e.stdout, "%s %s: %s\n", what, op.ID, join(res.Done))
	if len(res.Skipped) > 0 {
		fmt.Fprintf(e.stdout, "not applicable (in delivery, or not in a state for %s): %s\n", what, join(res.Skipped))
	}
	return nil
}
