package store

import (
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Reasons a telegram is withdrawn from an addressee's queue. Each is also
// the audit event and the NOT_DELIVERED reason the sender sees.
const (
	ReasonExpired = "expired" // past its latest delivery time
	ReasonParked  = "parked"  // too many failed delivery attempts; waits for an operator
)

// Withdrawn names a queue entry that a withdrawal removed.
type Withdrawn struct {
	Queue SubQueue
	Seq   uint64
}

// Withdraw takes telegram id out of the queues of its pending addressees
// (only addressee `only`, if set), skipping deliveries in flight (busy). For each one it removes the
// queue entry, records NOT_DELIVERED with reason, queues a report to the
// sender and writes the audit record; parked entries are also indexed for
// operators. When no addressee was skipped and the reason is expiry, the
// expiry index entry goes too. It returns what it removed.
func (s *Store) Withdraw(id telegram.ID, reason string, only telegram.Address, busy InFlight) ([]Withdrawn, error) {
	var out []Withdrawn
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) (err error) {
		out, err = c.withdraw(id, withdrawal{event: reason, reason: reason, only: only, busy: busy})
		return err
	}})
	return out, err
}

// withdrawal says how: the audit event (expired, parked, cancelled), the
// reason the sender reads (a cancel's), who acts, and which addressees.
type withdrawal struct {
	event, reason, actor string
	only                 telegram.Address
	busy                 InFlight
}

func (c *commitCtx) withdraw(id telegram.ID, w withdrawal) ([]Withdrawn, error) {
	h, err := c.s.getHeader(c.txn.Txn, id)
	if fault.Is(fault.NotExist, err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	kind := custody.Cancel
	switch w.event {
	case ReasonExpired:
		kind = custody.Expire
	case ReasonParked:
		kind = custody.Park
	}
	var out []Withdrawn
	applied, skippedInFlight := false, false
	for _, a := range h.Addressees() {
		if w.only != "" && a != w.only {
			continue
		}
		ds, err := c.s.getDelivery(c.txn.Txn, id, a)
		if err != nil {
			return nil, err
		}
		q := SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}
		busy := w.busy.of(a, ds)
		done, _, err := c.step(h, a, ds, custody.Event{Kind: kind, Actor: w.actor, Reason: w.reason, InFlight: busy})
		if err != nil {
			return nil, err
		}
		if !done {
			skippedInFlight = skippedInFlight || busy
			continue
		}
		applied = true
		out = append(out, Withdrawn{Queue: q, Seq: ds.Seq})
	}
	if applied {
		if finished, err := c.finished(h, ""); err != nil {
			return nil, err
		} else if finished {
			return out, c.finish(h) // nobody waits any more
		}
	}
	if kind == custody.Expire && w.only == "" && !skippedInFlight && !h.ExpiresAt.IsZero() {
		// Every addressee is settled for expiry purposes: the timer is done.
		return out, c.txn.Delete(c.s.ks.dueKey(pExpiry, h.ExpiresAt, id))
	}
	return out, nil
}
