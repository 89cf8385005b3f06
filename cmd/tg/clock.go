package main

import (
	"fmt"
)

type clockCmd struct {
	Confirm bool `help:"Vouch for the switch's wall clock: the switch trusts it again (audited)."`
}

func (c *clockCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	k, err := cl.Clock(e.ctx, c.Confirm)
	if err != nil {
		return err
	}
	if e.json {
		return e.emit(k)
	}
	state := "trusted"
	if !k.Trusted {
		state = "NOT TRUSTED: " + k.Reason + "; filings, expiry and overdue decisions are suspended"
	}
	_, err = fmt.Fprintf(e.stdout, "switch time %s, wall clock %s: %s\n", e.when(k.Now), e.when(k.Wall), state)
	return err
}
