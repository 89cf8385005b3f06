package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/dienbao/dienbao/switch/wire"
)

// groupCmd is tg group status|add|remove.
type groupCmd struct {
	Status groupStatusCmd `cmd:"" default:"1" help:"The group as the leader sees it: members, leader, term, applied index, lag and last contact per member."`
	Add    groupAddCmd    `cmd:"" help:"Add a member (operator; audited). Add it to every node's config too, for their next start."`
	Remove groupRemoveCmd `cmd:"" help:"Remove a member (operator; audited). Remove it from every node's config too."`
}

type groupStatusCmd struct{}

type groupAddCmd struct {
	ID           uint64 `arg:"" help:"The new node's ID (unused in the group)."`
	Name         string `required:"" help:"The name on the new node's switch certificate."`
	Address      string `required:"" help:"Where terminals reach it (HOST:PORT)."`
	GroupAddress string `name:"group-address" required:"" help:"Where the other nodes reach it (HOST:PORT)."`
}

type groupRemoveCmd struct {
	ID uint64 `arg:"" help:"The node's ID."`
}

func (c *groupStatusCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.Group(e.ctx)
	if err != nil {
		return err
	}
	return e.printGroup(st)
}

func (c *groupAddCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.GroupAdd(e.ctx, wire.GroupMember{ID: c.ID, Name: c.Name, Addr: c.Address, GroupAddr: c.GroupAddress})
	if err != nil {
		return err
	}
	return e.printGroup(st)
}

func (c *groupRemoveCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.GroupRemove(e.ctx, c.ID)
	if err != nil {
		return err
	}
	return e.printGroup(st)
}

func (e *env) printGroup(st wire.GroupStatus) error {
	if e.json {
		return e.emit(st)
	}
	if !st.Group {
		_, err := fmt.Fprintln(e.stdout, "this switch is a single node, not a replicated group")
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if st.State == "" {
		// Not an operator: the leader and the addresses only.
		fmt.Fprintf(e.stdout, "group of %d: leader node %d\n", len(st.Members), st.Leader)
		fmt.Fprintln(tw, "NODE\tNAME\tADDRESS\tROLE")
		for _, m := range st.Members {
			role := "follower"
			if m.Leader {
				role = "leader"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.ID, e.line(m.Name), m.Addr, role)
		}
		return tw.Flush()
	}
	fmt.Fprintf(e.stdout, "group of %d: leader node %d, term %d; commit %d, applied %d, last %d, snapshot at %d\n",
		len(st.Members), st.Leader, st.Term, st.Commit, st.Applied, st.LastIndex, st.Snapshot)
	fmt.Fprintln(tw, "NODE\tNAME\tADDRESS\tGROUP ADDRESS\tROLE\tMATCH\tLAG\tLAST CONTACT")
	for _, m := range st.Members {
		role, contact := "follower", "-"
		if m.Leader {
			role = "leader"
		}
		if !m.LastContact.IsZero() {
			contact = time.Since(m.LastContact).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", m.ID, e.line(m.Name), m.Addr, m.GroupAddr, role, m.Match, m.Lag, contact)
	}
	return tw.Flush()
}
