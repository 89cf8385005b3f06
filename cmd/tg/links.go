package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dienbao/dienbao/switch/wire"
)

type linksCmd struct{}

func (c *linksCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	ls, err := cl.Links(e.ctx)
	if err != nil {
		return err
	}
	return e.printLinks(ls)
}

// holdLink is tg hold --link PEER and tg release --link PEER.
func (e *env) holdLink(peer string, hold bool) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	ls, err := cl.HoldLink(e.ctx, peer, hold)
	if err != nil {
		return err
	}
	return e.printLinks(ls)
}

func (e *env) printLinks(ls wire.Links) error {
	if e.json {
		for _, l := range ls.Links {
			if err := e.emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	if len(ls.Links) == 0 {
		_, err := fmt.Fprintln(e.stdout, "this switch is not in a network: no links")
		return err
	}
	fmt.Fprintf(e.stdout, "switch %s\n", ls.Self)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tSTATE\tSINCE\tDIR\tWAITING F/I/P/R\tOLDEST\tSENT F/I/P/R/REP\tRECEIVED F/I/P/R/REP\tGAPS\tRTT\tBYTES/S\tRELAYED")
	for _, l := range ls.Links {
		oldest := "-"
		if !l.Oldest.IsZero() {
			oldest = time.Since(l.Oldest).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.1fms\t%.0f\t%d\n", l.Peer, l.State, e.when(l.Since),
			l.Direction, nums(l.Waiting[:]), oldest, nums(l.SentSeq[:]), nums(l.RecvSeq[:]), l.Gaps, l.RTTMillis, l.BytesOut, l.Relayed)
		if l.LastErr != "" && l.State != "up" {
			fmt.Fprintf(tw, "\t%s\n", e.line(l.LastErr))
		}
	}
	return tw.Flush()
}

func nums[T int | uint64](ns []T) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, "/")
}
