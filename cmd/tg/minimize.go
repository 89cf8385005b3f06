package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

type minimizeCmd struct {
	Below  string   `help:"Declare a MINIMIZE: filings below this precedence (PRIORITY, IMMEDIATE or FLASH) are refused, or deferred with --defer."`
	Level  string   `help:"Only agencies of this level of the network (centre, province, district, commune)."`
	Agency []string `sep:"," help:"Only these agencies (A,B,...)."`
	Reason string   `help:"Why: terminals are told it when their filings are refused."`
	Until  string   `help:"When it ends by itself: a duration (6h) or an RFC 3339 time. Without it, it lasts until lifted."`
	Defer  bool     `help:"Accept the filings it covers and hold them back until it is lifted or ends, instead of refusing them."`
	Lift   bool     `help:"Lift MINIMIZE declarations: those numbered, or every one."`
	Number []uint64 `arg:"" optional:"" help:"With --lift: the declarations to lift (default: all)."`
}

func (c *minimizeCmd) Run(e *env) error {
	const op = "minimize"
	var req wire.MinimizeRequest
	declaring := c.Below != "" || c.Level != "" || len(c.Agency) > 0 || c.Reason != "" || c.Until != "" || c.Defer
	switch {
	case c.Lift && declaring:
		return fault.E(op, fault.Invalid, "--lift takes only declaration numbers; declare and lift separately")
	case len(c.Number) > 0 && !c.Lift:
		return fault.E(op, fault.Invalid, "declaration numbers are for --lift")
	case c.Lift:
		req.Lift, req.LiftAll = c.Number, len(c.Number) == 0
	case declaring:
		if c.Below == "" {
			return fault.E(op, fault.Invalid, "a MINIMIZE needs --below: the precedence below which filings are restricted")
		}
		below, err := telegram.ParsePrecedence(c.Below)
		if err != nil {
			return err
		}
		until, _, err := parseAhead("--until", c.Until, time.Now())
		if err != nil {
			return err
		}
		if until.IsZero() && c.Until != "" {
			return fault.Errorf(op, fault.Invalid, "--until %q: give a duration (6h) or an RFC 3339 time", c.Until)
		}
		agencies, err := addresses(c.Agency)
		if err != nil {
			return err
		}
		req.Declare = &filing.Minimize{Below: below, Level: c.Level, Agencies: agencies, Reason: c.Reason, Until: until, Defer: c.Defer}
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.Minimize(e.ctx, req)
	if err != nil {
		return err
	}
	if e.json {
		return e.emit(r)
	}
	switch {
	case r.Declared != 0:
		fmt.Fprintf(e.stdout, "MINIMIZE %d declared\n", r.Declared)
	case len(r.Lifted) > 0:
		fmt.Fprintf(e.stdout, "lifted: MINIMIZE %s; %d deferred telegrams queued\n", joinNumbers(r.Lifted), r.Released)
	}
	if len(r.InForce) == 0 {
		_, err = fmt.Fprintln(e.stdout, "no MINIMIZE in force")
		return err
	}
	for _, m := range r.InForce {
		line := e.line(m.String())
		if m.By != "" {
			line += " (declared by " + e.line(m.By) + " at " + e.when(m.At) + ")"
		}
		if _, err := fmt.Fprintln(e.stdout, line); err != nil {
			return err
		}
	}
	return nil
}

func joinNumbers(ns []uint64) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
