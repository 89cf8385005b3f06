package main

import (
	"fmt"
	"os"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

type retrieveCmd struct {
	ID  string `arg:"" help:"Telegram ID."`
	Out string `type:"path" help:"Write the body, exactly, to this file instead of printing the telegram."`
}

// Run prints a retrieved copy, marked as one; the inbox is not touched.
func (c *retrieveCmd) Run(e *env) error {
	id, cl, err := e.dialAbout(c.ID)
	if err != nil {
		return err
	}
	defer cl.Close()
	h, body, err := cl.Retrieve(e.ctx, id)
	if err != nil {
		return err
	}
	if c.Out != "" {
		return os.WriteFile(c.Out, body, 0o600)
	}
	m := client.MessageOf(client.Delivery{Header: h, Body: body})
	if e.json {
		return e.emit(struct {
			client.Message
			Retrieved bool `json:"retrieved"`
		}{m, true})
	}
	text, atts, err := client.SplitBody(m.Body)
	if err != nil {
		return err
	}
	m.Body = text
	return e.showTelegram(m, "RETRIEVED COPY (not a new delivery)", attachedLines(e, atts, nil))
}

type resendCmd struct {
	ID     string `arg:"" help:"Telegram ID."`
	To     string `help:"Send it again to this addressee only (default: every addressee it was delivered to)."`
	Reason string `help:"Why, for the audit log."`
}

// Run asks the switch to send a delivered telegram again.
func (c *resendCmd) Run(e *env) error {
	id, cl, err := e.dialAbout(c.ID)
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.Resend(e.ctx, id, telegram.Address(c.To), c.Reason)
	if err != nil {
		return err
	}
	if e.json {
		return e.emit(struct {
			ID telegram.ID `json:"id"`
			// Resent and Skipped: the addressees it goes to again, and
			// those it was not delivered to (nothing to send again).
			Resent  []telegram.Address `json:"resent"`
			Skipped []telegram.Address `json:"skipped"`
		}{id, r.Resent, r.Skipped})
	}
	if len(r.Resent) == 0 {
		fmt.Fprintf(e.stdout, "%s: not sent again: delivered to none of %s yet\n", id, join(r.Skipped))
		return nil
	}
	fmt.Fprintf(e.stdout, "%s: sent again to %s, flagged possible duplicate\n", id, join(r.Resent))
	if len(r.Skipped) > 0 {
		fmt.Fprintf(e.stdout, "not to %s: not delivered there\n", join(r.Skipped))
	}
	return nil
}

type journalCmd struct {
	Agency string `help:"The agency whose telegrams to list, sent or received (a terminal: its own, the default; others: every agency's filings by default)."`
	Since  string `help:"Only telegrams filed at or after this time (RFC 3339, or a duration ago such as 2h)."`
	Until  string `help:"Only telegrams filed at or before this time (RFC 3339, or a duration ago)."`
	Limit  int    `default:"50" help:"Telegrams per page."`
	Before uint64 `help:"Page: go on from where the previous page said (its resume)."`
	All    bool   `help:"Follow the pages to the end instead of printing one page."`
}

// Run lists telegrams from custody and the journal, newest first.
func (c *journalCmd) Run(e *env) error {
	q := wire.JournalQuery{Agency: telegram.Address(c.Agency), Limit: c.Limit, Before: c.Before}
	var err error
	if q.Since, err = parseWhen(c.Since); err != nil {
		return err
	}
	if q.Until, err = parseWhen(c.Until); err != nil {
		return err
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	if !e.json {
		fmt.Fprintf(e.stdout, "%-26s  %-23s  %-10s  %-12s  %-14s  %-10s  %9s  %s\n", "ID", "FILED", "PRECEDENCE", "CLASS", "FROM", "STATE", "BYTES", "TO")
	}
	for {
		page, err := cl.Journal(e.ctx, q)
		if err != nil {
			return err
		}
		for _, r := range page.Rows {
			if e.json {
				if err := e.emit(r); err != nil {
					return err
				}
				continue
			}
			to, size := join(r.To), fmt.Sprint(r.BodyLen)
			if r.State == "purged" {
				to, size = "-", "-"
			}
			fmt.Fprintf(e.stdout, "%-26s  %-23s  %-10s  %-12s  %-14s  %-10s  %9s  %s\n", r.ID, e.when(r.FiledAt),
				r.Precedence, r.Classification, r.From, r.State, size, to)
		}
		if page.Withheld > 0 && !e.json {
			fmt.Fprintf(e.stdout, "(%d above this operator's clearance not shown)\n", page.Withheld)
		}
		if page.Resume == 0 {
			return nil
		}
		if !c.All {
			if !e.json {
				fmt.Fprintf(e.stdout, "more: --before %d\n", page.Resume)
			}
			return nil
		}
		q.Before = page.Resume
	}
}
