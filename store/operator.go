package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Operators act on one telegram at a time (hold, release, cancel, requeue)
// or hold a whole agency. Each action is one commit with its audit entry,
// naming the operator. An entry put back in a queue keeps its sequence, so
// it goes out in its original filing order; the queue's head is moved back
// to it if needed, and an EvReinserted event tells the schedulers.

// OpResult says what an operator action changed, per addressee.
type OpResult struct {
	Done    []telegram.Address // addressees the action applied to
	Skipped []telegram.Address // in delivery at that moment, or not in a state it applies to
	Removed []Withdrawn        // entries taken out of a queue
}

// telegramFor reads a telegram's header for an operator action.
func (c *commitCtx) telegramFor(id telegram.ID) (telegram.Header, error) {
	h, err := c.s.getHeader(c.txn.Txn, id)
	if fault.Is(fault.NotExist, err) {
		return h, fault.Errorf("operator", fault.NotExist, "no telegram %s", id)
	}
	return h, err
}

func (c *commitCtx) putDelivery(id telegram.ID, a telegram.Address, ds DeliveryState) error {
	b, err := encodeRecord(&ds)
	if err != nil {
		return err
	}
	num, err := c.s.number(c.txn.Txn, id)
	if err != nil {
		return err
	}
	return c.set(c.s.ks.deliveryKey(num, id, a), b)
}

// reinsert puts id back in queue q at seq, lowering the queue's head to it.
func (c *commitCtx) reinsert(q SubQueue, seq uint64, id telegram.ID) error {
	if err := c.set(c.s.ks.queueKey(q, seq), id[:]); err != nil {
		return err
	}
	head, err := c.s.getU64(c.txn.Txn, c.s.ks.queueHeadKey(q))
	if err != nil {
		return err
	}
	if head > seq {
		if err := c.set(c.s.ks.queueHeadKey(q), putU64(seq)); err != nil {
			return err
		}
	}
	*c.events = append(*c.events, Event{Kind: EvReinserted, Queue: q, Seq: seq, ID: id})
	return nil
}

// Hold takes telegram id out of the queues of its pending addressees until
// Release, except deliveries in flight (busy).
func (s *Store) Hold(id telegram.ID, actor string, busy InFlight) (OpResult, error) {
	return s.operatorStep(id, custody.Event{Kind: custody.Hold, Actor: actor}, busy)
}

// Release puts telegram id back in the queues of its held addressees.
func (s *Store) Release(id telegram.ID, actor string) (OpResult, error) {
	return s.operatorStep(id, custody.Event{Kind: custody.Release, Actor: actor}, nil)
}

// Requeue puts telegram id back in the queues of its parked addressees
// (out of attempts, or quarantined), with its attempts counted afresh.
func (s *Store) Requeue(id telegram.ID, actor string) (OpResult, error) {
	return s.operatorStep(id, custody.Event{Kind: custody.Requeue, Actor: actor}, nil)
}

// operatorStep applies an operator's event to every addressee of telegram
// id it applies to; busy says which queue entries are in flight.
func (s *Store) operatorStep(id telegram.ID, e custody.Event, busy InFlight) (OpResult, error) {
	var res OpResult
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		res = OpResult{}
		h, err := c.telegramFor(id)
		if err != nil {
			return err
		}
		for _, a := range h.Addressees() {
			ds, err := c.s.getDelivery(c.txn.Txn, id, a)
			if err != nil {
				return err
			}
			q := SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}
			e.InFlight = busy.of(a, ds)
			done, fx, err := c.step(h, a, ds, e)
			if err != nil {
				return err
			}
			if !done {
				res.Skipped = append(res.Skipped, a)
				continue
			}
			res.Done = append(res.Done, a)
			if fx.From == custody.InQueue {
				res.Removed = append(res.Removed, Withdrawn{Queue: q, Seq: ds.Seq})
			}
		}
		return nil
	}})
	return res, err
}

// Cancel withdraws telegram id from every addressee still waiting for it
// (queued, held or parked; not deliveries in flight, which their
// acknowledgement settles). Each gets NOT_DELIVERED with reason, and the
// sender a report saying so.
func (s *Store) Cancel(id telegram.ID, actor, reason string, busy InFlight) (OpResult, error) {
	var res OpResult
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		res = OpResult{}
		if _, err := c.telegramFor(id); err != nil {
			return err
		}
		ws, err := c.withdraw(id, withdrawal{event: audit.Cancelled, reason: reason, actor: actor, busy: busy})
		if err != nil {
			return err
		}
		res.Removed = ws
		for _, w := range ws {
			res.Done = append(res.Done, w.Queue.Agency)
		}
		return nil
	}})
	return res, err
}

// HoldAgency holds (on) or releases (off) every delivery to agency: its
// telegrams stay queued, and no terminal of it is handed one until released.
func (s *Store) HoldAgency(agency telegram.Address, actor string, on bool) error {
	return s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		k := c.s.ks.agencyKey(pAgencyHeld, agency)
		what := "release agency"
		if on {
			what = "hold agency"
			if err := c.set(k, []byte{1}); err != nil {
				return err
			}
		} else if err := c.txn.Delete(k); err != nil {
			return err
		}
		*c.events = append(*c.events, Event{Kind: EvAgencyHold, Queue: SubQueue{Agency: agency}, Seq: uint64(b2i(on))})
		return c.appendAudit(AuditEntry{Actor: actor, Event: audit.Operator, To: agency, Reason: what})
	}})
}

// AgencyHeld reports whether deliveries to agency are held.
func (s *Store) AgencyHeld(agency telegram.Address) (bool, error) {
	var held bool
	err := s.view(func(txn *badger.Txn) (err error) {
		held, err = s.agencyHeld(txn, agency)
		return err
	})
	return held, err
}

func (s *Store) agencyHeld(txn *badger.Txn, agency telegram.Address) (bool, error) {
	_, err := s.get(txn, s.ks.agencyKey(pAgencyHeld, agency))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Deliveries returns a telegram's header and the delivery state of each
// addressee, from one snapshot (for tg show).
func (s *Store) Deliveries(id telegram.ID) (telegram.Header, map[telegram.Address]DeliveryState, error) {
	var h telegram.Header
	out := map[telegram.Address]DeliveryState{}
	err := s.view(func(txn *badger.Txn) error {
		var err error
		if h, err = s.getHeader(txn, id); err != nil {
			if fault.Is(fault.NotExist, err) {
				return fault.Errorf("show", fault.NotExist, "no telegram %s", id)
			}
			return err
		}
		for _, a := range h.Addressees() {
			if out[a], err = s.getDelivery(txn, id, a); err != nil {
				return err
			}
		}
		return nil
	})
	return h, out, err
}
