package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/fault"

	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

type listCmd struct {
	Agency    string        `help:"Only copies for this addressee."`
	Prec      string        `help:"Only this precedence (FLASH, IMMEDIATE, PRIORITY, ROUTINE)."`
	Class     string        `help:"Only this classification (up to this operator's clearance)."`
	State     string        `enum:",waiting,in_flight,held,parked,deferred,overdue" default:"" help:"Only copies in this state: waiting, in_flight, held, parked, deferred, or overdue (waiting or in flight past the precedence's speed-of-service target)."`
	OlderThan time.Duration `name:"older-than" help:"Only copies filed at least this long ago (e.g. 10m)."`
	From      string        `help:"Only telegrams from this sender."`
	Newest    bool          `help:"Newest filing first (default: oldest first)."`
	Limit     int           `default:"100" help:"Rows per page (at most 10000)."`
	After     string        `help:"Page: go on after this row (the ID/ADDRESSEE the previous page printed as more:)."`
	All       bool          `help:"Follow the pages to the end instead of printing one page."`
}

// Run lists the telegrams in the switch's custody, one row per addressee
// copy: header fields only, never the subject or the body.
func (c *listCmd) Run(e *env) error {
	req := wire.ListRequest{Agency: telegram.Address(c.Agency), From: telegram.Address(c.From), State: c.State,
		OlderThan: c.OlderThan, Newest: c.Newest, Limit: c.Limit}
	var err error
	if c.Prec != "" {
		if req.Precedence, err = telegram.ParsePrecedence(c.Prec); err != nil {
			return err
		}
	}
	if c.Class != "" {
		if req.Class, err = telegram.ParseClassification(c.Class); err != nil {
			return err
		}
	}
	if c.After != "" {
		if req.After, err = wire.ParseListCursor(c.After); err != nil {
			return fault.E("list", fault.Invalid, "", err)
		}
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	if !e.json {
		fmt.Fprintf(e.stdout, "%-26s  %-23s  %8s  %-10s  %-12s  %-14s  %-14s  %-9s  %9s\n",
			"ID", "FILED", "AGE", "PRECEDENCE", "CLASS", "FROM", "TO", "STATE", "BYTES")
	}
	for {
		page, err := cl.List(e.ctx, req)
		if err != nil {
			return err
		}
		if e.json {
			if err := e.emit(page); err != nil {
				return err
			}
		} else {
			printList(e, page)
		}
		if page.Next.IsZero() || !c.All {
			if !page.Next.IsZero() && !e.json {
				fmt.Fprintf(e.stdout, "more: --after %s\n", page.Next)
			}
			return nil
		}
		req.After = page.Next
	}
}

func printList(e *env, page wire.List) {
	for _, r := range page.Rows {
		var flags []string
		if r.Overdue {
			flags = append(flags, "OVERDUE")
		}
		if r.AgencyHeld {
			flags = append(flags, "agency held")
		}
		if r.Unlisted {
			flags = append(flags, "NOT IN DIRECTORY")
		}
		note := ""
		if len(flags) > 0 {
			note = "  " + strings.Join(flags, ", ")
		}
		fmt.Fprintf(e.stdout, "%-26s  %-23s  %8s  %-10s  %-12s  %-14s  %-14s  %-9s  %9d%s\n", r.ID, e.when(r.FiledAt),
			age(r.AgeSeconds), r.Precedence, r.Classification, e.line(string(r.From)), e.line(string(r.Addressee)), r.State, r.BodyLen, note)
	}
	if page.Withheld > 0 {
		fmt.Fprintf(e.stdout, "(%d above this operator's clearance not shown)\n", page.Withheld)
	}
	if page.Truncated {
		fmt.Fprintf(e.stdout, "(stopped after reading %d copies: narrow the filters)\n", wire.MaxListScan)
	}
}
