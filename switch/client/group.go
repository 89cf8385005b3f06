package client

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/wire"
)

// A replicated switch is a group of nodes of which only the leader
// serves; a follower closes each connection saying it is not the leader
// and where the leader is. With several addresses in the identity
// folder's switch file, Dial tries them all at once and keeps the one
// that answers as leader (asking the group's status, one round trip),
// again and again for up to GroupRetryFor while the group elects a
// leader. Receive with Follow does the same when its connection ends, and
// subscribes again: what was handed out and not acknowledged comes again
// flagged possible duplicate, and an Inbox drops what it already holds.

// GroupRetryFor is how long Dial looks for a group's leader.
var GroupRetryFor = 30 * time.Second

// Group reads the group's status: on a single switch, Group is false.
// Operators see Raft's figures too.
func (c *Client) Group(ctx context.Context) (wire.GroupStatus, error) {
	return c.groupOp(ctx, wire.GroupRequest{Op: wire.GroupStatusOp})
}

// GroupAdd adds a member to the group (operators; audited).
func (c *Client) GroupAdd(ctx context.Context, m wire.GroupMember) (wire.GroupStatus, error) {
	return c.groupOp(ctx, wire.GroupRequest{Op: wire.GroupAddOp, Member: m})
}

// GroupRemove removes a member from the group (operators; audited).
func (c *Client) GroupRemove(ctx context.Context, id uint64) (wire.GroupStatus, error) {
	return c.groupOp(ctx, wire.GroupRequest{Op: wire.GroupRemoveOp, ID: id})
}

func (c *Client) groupOp(ctx context.Context, req wire.GroupRequest) (wire.GroupStatus, error) {
	var r wire.GroupStatus
	err := c.request(ctx, wire.TGroup, req, wire.TGroupReply, &r)
	return r, err
}

// Addr is the address this client is connected to.
func (c *Client) Addr() string { return c.addr }

// groupRound bounds one round of dialLeader; GroupIdleTimeout is the
// most a connection to a group's leader stays up without hearing from it
// (keep-alives go at a third of it), so that a leader that died is left
// for the next one within seconds.
const (
	groupRound       = 1500 * time.Millisecond
	GroupIdleTimeout = 4 * time.Second
)

// dialGroup connects to whichever of addrs leads.
func dialGroup(ctx context.Context, f *certs.Folder, o options, addrs []string) (*Client, error) {
	o.idle = min(o.idle, GroupIdleTimeout)
	o.keepAlive = min(o.keepAlive, o.idle/3)
	deadline := time.Now().Add(GroupRetryFor)
	for {
		c, errs := dialLeader(ctx, f, o, addrs)
		if c != nil {
			return c, nil
		}
		for _, err := range errs {
			if fault.Is(fault.Permission, err) {
				return nil, err
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			msgs := make([]string, len(errs))
			for i, err := range errs {
				msgs[i] = err.Error()
			}
			return nil, fault.Errorf("dial", fault.Unavailable, "no leader found among the switch's nodes (%s): %s",
				strings.Join(addrs, ", "), strings.Join(msgs, "; "))
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// dialLeader dials every address at once and returns the first that
// answers as leader (the others are closed), or every error.
func dialLeader(ctx context.Context, f *certs.Folder, o options, addrs []string) (*Client, []error) {
	type result struct {
		c   *Client
		err error
	}
	// A node that is down does not answer at all: each round is short,
	// and dialGroup tries again.
	dctx, cancel := context.WithTimeout(ctx, groupRound)
	results := make(chan result, len(addrs))
	for _, a := range addrs {
		go func() {
			c, err := dialOne(dctx, f, o, a)
			if err == nil {
				var st wire.GroupStatus
				if st, err = c.Group(dctx); err == nil {
					c.learn(st, addrs)
				} else {
					c.Close()
					c = nil
					err = fmt.Errorf("%s: %w", a, err)
				}
			}
			results <- result{c, err}
		}()
	}
	var errs []error
	noLeader := 0
	for i := range addrs {
		r := <-results
		if r.err != nil && strings.Contains(r.err.Error(), "no leader now") {
			// A majority knows no leader: the group is electing; the
			// nodes that have not answered (down, perhaps) are not
			// waited for.
			if noLeader++; 2*noLeader > len(addrs) {
				errs = append(errs, r.err)
				go func(left int) {
					defer cancel()
					for range left {
						if r := <-results; r.c != nil {
							r.c.Close()
						}
					}
				}(len(addrs) - i - 1)
				return nil, errs
			}
		}
		if r.err == nil {
			go func(left int) { // close the others as they come
				defer cancel()
				for range left {
					if r := <-results; r.c != nil {
						r.c.Close()
					}
				}
			}(len(addrs) - i - 1)
			return r.c, nil
		}
		errs = append(errs, r.err)
	}
	cancel()
	return nil, errs
}

// learn keeps the group's addresses: the folder's and the members'.
func (c *Client) learn(st wire.GroupStatus, addrs []string) {
	c.addrs = slices.Clone(addrs)
	if !st.Group {
		return
	}
	c.group = true
	for _, m := range st.Members {
		if m.Addr != "" && !slices.Contains(c.addrs, m.Addr) {
			c.addrs = append(c.addrs, m.Addr)
		}
	}
}

// redial connects to the group's leader again, in place of the ended
// connection.
func (c *Client) redial(ctx context.Context) error {
	n, err := dialGroup(ctx, c.folder, c.opts, c.addrs)
	if err != nil {
		return err
	}
	c.conn, c.addr, c.addrs = n.conn, n.addr, n.addrs
	return nil
}

// NotLeader reports whether err is a follower's refusal.
func NotLeader(err error) bool {
	return err != nil && strings.Contains(err.Error(), wire.NotLeaderPrefix)
}
