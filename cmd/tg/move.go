package main

import (
	"fmt"

	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

type moveQueueCmd struct {
	From string `arg:"" help:"The agency whose waiting telegrams to move (an old address)."`
	To   string `arg:"" help:"The agency that takes them (the new address, in the directory)."`
}

// Run re-addresses the telegrams waiting for From to To, keeping their
// IDs, precedence and order; each sender is told MOVED with the new
// address, each copy audited.
func (c *moveQueueCmd) Run(e *env) error {
	req := wire.MoveQueue{From: telegram.Address(c.From), To: telegram.Address(c.To)}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.MoveQueue(e.ctx, req)
	if err != nil {
		return err
	}
	if e.json {
		return e.emit(r)
	}
	fmt.Fprintf(e.stdout, "moved %d telegrams from %s to %s\n", r.Moved, r.From, r.To)
	if r.Waiting+r.Held+r.Deferred > 0 {
		fmt.Fprintf(e.stdout, "still for %s: %d waiting (in flight when moved, or above this operator's clearance), %d held, %d deferred: run again once their delivery ends\n",
			r.From, r.Waiting, r.Held, r.Deferred)
	}
	if r.Parked > 0 {
		fmt.Fprintf(e.stdout, "still for %s: %d parked: tg requeue them, then run again\n", r.From, r.Parked)
	}
	return nil
}
