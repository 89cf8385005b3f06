package store

import (
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
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
// (only addressee `only`, if set), skipping those for which skip reports
// true (for example, deliveries in flight). For each one it removes the
// queue entry, records NOT_DELIVERED with reason, queues a report to the
// sender and writes the audit record; parked entries are also indexed for
// operators. When no addressee was skipped and the reason is expiry, the
// expiry index entry goes too. It returns what it removed.
func (s *Store) Withdraw(id telegram.ID, reason string, only telegram.Address, skip func(q SubQueue, seq uint64) bool) ([]Withdrawn, error) {
	var out []Withdrawn
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) (err error) {
		out, err = c.withdraw(id, withdrawal{event: reason, reason: reason, only: only, skip: skip})
		return err
	}})
	return out, err
}

// withdrawal says how: the audit event (expired, parked, cancelled), the
// reason the sender reads, who acts, and which addressees.
type withdrawal struct {
	event, reason, actor string
	only                 telegram.Address
	skip                 func(SubQueue, uint64) bool
	parked               bool // also settle addressees that are parked (cancel)
}

func (c *commitCtx) withdraw(id telegram.ID, w withdrawal) ([]Withdrawn, error) {
	h, err := c.s.getHeader(c.txn, id)
	if fault.Is(fault.NotExist, err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if w.actor == "" {
		w.actor = "switch"
	}
	type todo struct {
		a  telegram.Address
		ds DeliveryState
	}
	var list []todo
	stillWaited, skippedInFlight := false, false
	for _, a := range h.Addressees() {
		ds, err := c.s.getDelivery(c.txn, id, a)
		if err != nil {
			return nil, err
		}
		parked := w.parked && ds.Parked()
		if !ds.Pending() && !parked {
			stillWaited = stillWaited || ds.Parked()
			continue
		}
		q := SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}
		switch {
		case w.only != "" && a != w.only:
			stillWaited = true
		case !ds.Held && !parked && w.skip != nil && w.skip(q, ds.Seq):
			stillWaited, skippedInFlight = true, true
		default:
			list = append(list, todo{a, ds})
		}
	}
	at := unixUTC(c.now)
	var out []Withdrawn
	// Writes only from here.
	for _, td := range list {
		q := SubQueue{Agency: td.a, Prec: h.Precedence, Class: h.Classification}
		ds := td.ds
		if err := c.takeOut(q, ds); err != nil {
			return nil, err
		}
		ds.Status, ds.Reason, ds.At, ds.Held = telegram.NotDelivered, w.reason, at, false
		b, err := wire.Marshal(&ds)
		if err != nil {
			return nil, err
		}
		if err := c.set(c.s.ks.deliveryKey(id, td.a), b); err != nil {
			return nil, err
		}
		if w.event == ReasonParked {
			if err := c.set(c.s.ks.parkedKey(td.a, ds.Seq), id[:]); err != nil {
				return nil, err
			}
			c.count(q, Counts{Parked: 1})
			stillWaited = true // kept for an operator to requeue
		}
		auditReason := ""
		if w.reason != w.event {
			auditReason = w.reason
		}
		if err := c.appendAudit(AuditEntry{Actor: w.actor, Event: w.event, ID: id, From: h.From, To: td.a,
			Precedence: h.Precedence, Classification: h.Classification, Reason: auditReason}); err != nil {
			return nil, err
		}
		if err := c.queueReceipt(h, telegram.Receipt{ID: id, Addressee: td.a, Status: telegram.NotDelivered,
			Reason: w.reason, At: at}); err != nil {
			return nil, err
		}
		out = append(out, Withdrawn{Queue: q, Seq: td.ds.Seq})
	}
	if !stillWaited && len(list) > 0 {
		return out, c.finish(h) // nobody waits any more
	}
	if w.event == ReasonExpired && w.only == "" && !skippedInFlight && !h.ExpiresAt.IsZero() {
		// Every addressee is settled for expiry purposes: the timer is done.
		return out, c.txn.Delete(dueKey(pExpiry, h.ExpiresAt, id))
	}
	return out, nil
}
