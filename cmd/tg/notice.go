package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/wire"
)

type noticeCmd struct {
	Affects string   `help:"What the incident affects: an address prefix (NA, HN.UBND) or a link (link:PEER). With --until and the text, posts a notice."`
	Until   string   `help:"Until when it is expected to last: a duration (4h), HH:MM, \"DATE HH:MM\" or RFC 3339."`
	Close   uint64   `help:"Close the open notice with this number."`
	Text    []string `arg:"" optional:"" help:"What happened and what to expect."`
}

// Run posts, closes or lists incident notices.
func (c *noticeCmd) Run(e *env) error {
	var req wire.NoticeRequest
	text := strings.Join(c.Text, " ")
	switch {
	case c.Close != 0:
		if c.Affects != "" || text != "" {
			return usage("notice --close N takes nothing else")
		}
		req.Close = c.Close
	case c.Affects != "" || c.Until != "" || text != "":
		if c.Affects == "" || c.Until == "" || text == "" {
			return usage("a notice needs --affects, --until and its text")
		}
		until, err := parseDeliverAt(c.Until, time.Now())
		if err != nil {
			return usage("--until: " + err.Error())
		}
		req.Post = &wire.Notice{Affects: c.Affects, Until: until, Text: text}
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.Notice(e.ctx, req)
	if err != nil {
		return err
	}
	if e.json {
		return e.emit(r)
	}
	if r.Posted != 0 {
		fmt.Fprintf(e.stdout, "notice %d posted\n", r.Posted)
	}
	if r.Closed != 0 {
		fmt.Fprintf(e.stdout, "notice %d closed\n", r.Closed)
	}
	if req.Post == nil && req.Close == 0 {
		if len(r.Open) == 0 {
			fmt.Fprintln(e.stdout, "no open notices")
		}
		for _, n := range r.Open {
			fmt.Fprintln(e.stdout, e.line(noticeLine(n, time.Now())))
		}
	}
	return nil
}

// noticeLine is one notice as tg notice and tg top print it.
func noticeLine(n wire.Notice, now time.Time) string {
	late := ""
	if now.After(n.Until) {
		late = " (PAST ITS EXPECTED END)"
	}
	return fmt.Sprintf("NOTICE %d  %s  until %s%s  by %s: %s", n.Number, n.Affects, n.Until.Local().Format("2006-01-02 15:04 MST"), late, n.By, n.Text)
}

// usage is a usage error (exit status 2).
func usage(msg string) error { return fault.E("notice", fault.Invalid, msg) }
