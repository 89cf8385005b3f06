package store

import (
	"time"

	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The store keeps custody as a DeliveryState per addressee (its on-disk
// form) and the entry's place: its queue, the held list or the parked
// list. What happens to it is decided by switch/custody; this file turns a
// DeliveryState into a custody.State and applies custody's effects inside
// the commit that read the state.

// custodyOf is the custody state of ds, an addressee's delivery state in
// sub-queue q. A quarantined entry is pending on record and kept in the
// parked list.
func (c *commitCtx) custodyOf(q SubQueue, ds DeliveryState) custody.State {
	st := ds.custody(false)
	if st.Phase == custody.Queued && c.quarantined(q, ds.Seq) { // only a queued one can be
		st.Phase = custody.Quarantined
	}
	return st
}

func (ds DeliveryState) custody(quarantined bool) custody.State {
	st := custody.State{Reason: ds.Reason, Attempts: ds.Attempts, Cut: ds.Cut, Overdue: ds.Overdue}
	switch {
	case ds.Status == telegram.Delivered:
		st.Phase = custody.Delivered
	case ds.Parked():
		st.Phase = custody.Parked
	case ds.Status == telegram.NotDelivered:
		st.Phase = custody.NotDelivered
	case ds.Via != "": // relayed, its outcome not reported back yet
		st.Phase = custody.Relayed
	case ds.MovedTo != "":
		st.Phase = custody.Moved
	case ds.Held:
		st.Phase = custody.Held
	case ds.Deferred:
		st.Phase = custody.Deferred
	case quarantined:
		st.Phase = custody.Quarantined
	default:
		st.Phase = custody.Queued
	}
	return st
}

// recorded is ds after custody moved it to n: settled ones carry the time
// (and an acknowledged one its terminal); pending ones carry neither time
// nor reason.
func recorded(ds DeliveryState, n custody.State, at time.Time, terminal string) DeliveryState {
	ds.Attempts, ds.Cut, ds.Overdue = n.Attempts, n.Cut, n.Overdue
	ds.Held, ds.Deferred = n.Phase == custody.Held, n.Phase == custody.Deferred
	switch n.Phase {
	case custody.Relayed: // terminal: the next switch
		ds.Status, ds.Reason, ds.At, ds.Via = 0, "", at, terminal
	case custody.Moved: // terminal: the successor agency
		ds.Status, ds.Reason, ds.At, ds.MovedTo = 0, "", at, telegram.Address(terminal)
	case custody.Delivered:
		ds.Status, ds.Reason, ds.At, ds.Terminal = telegram.Delivered, "", at, terminal
	case custody.Parked, custody.NotDelivered: // custody's reason for parking is ReasonParked
		ds.Status, ds.Reason, ds.At = telegram.NotDelivered, n.Reason, at
	default:
		ds.Status, ds.Reason, ds.At = 0, "", time.Time{}
	}
	return ds
}

// step applies custody event e to addressee a of telegram h, whose
// delivery state is ds: it asks custody, and if the event applies, moves
// the entry, writes the new delivery state, appends the audit entries and
// queues the report. It reports whether the event applied and the effects.
func (c *commitCtx) step(h telegram.Header, a telegram.Address, ds DeliveryState, e custody.Event) (bool, custody.Effects, error) {
	q := SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}
	return c.stepFrom(h, a, ds, c.custodyOf(q, ds), e)
}

// stepFrom is step from a custody state the caller already knows (an
// acknowledgement found the entry in its queue: it is not quarantined).
func (c *commitCtx) stepFrom(h telegram.Header, a telegram.Address, ds DeliveryState, from custody.State, e custody.Event) (bool, custody.Effects, error) {
	q := SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}
	n, fx := custody.Step(from, e, unixUTC(c.now), custody.Policy{})
	if !fx.Applied {
		return false, fx, nil
	}
	if fx.From != fx.To {
		if err := c.takeOut(q, fx.From, ds); err != nil {
			return false, fx, err
		}
		if err := c.putIn(q, fx.To, ds.Seq, h.ID, n.Overdue); err != nil {
			return false, fx, err
		}
	}
	terminal := ""
	switch e.Kind {
	case custody.Ack, custody.HandOver, custody.Reported:
		terminal = e.Actor
	case custody.Move:
		terminal = string(e.To)
	}
	if err := c.putDelivery(h.ID, a, recorded(ds, n, fx.At, terminal)); err != nil {
		return false, fx, err
	}
	for _, ae := range fx.Audit {
		if err := c.appendAudit(AuditEntry{Actor: ae.Actor, Event: ae.Event, ID: h.ID, From: h.From, To: a,
			Precedence: h.Precedence, Classification: h.Classification, Reason: ae.Reason}); err != nil {
			return false, fx, err
		}
	}
	if fx.Report != nil {
		r := telegram.Receipt{ID: h.ID, Addressee: a, Status: fx.Report.Status, Reason: fx.Report.Reason, At: fx.At, Terminal: terminal}
		if e.Kind == custody.Move {
			r.Terminal, r.MovedTo = "", e.To
		}
		if err := c.queueReceipt(h, r); err != nil {
			return false, fx, err
		}
	}
	return true, fx, nil
}

// Slot names one addressee's queue entry: the agency and the sequence.
type Slot struct {
	Agency telegram.Address
	Seq    uint64
}

// InFlight is what of a telegram is handed out to terminals and not yet
// acknowledged, as the switchboard saw it with hand-outs paused: the
// store reads it inside the commit of an action that must leave those
// deliveries alone (hold, cancel, expiry). Nil: nothing is.
type InFlight map[Slot]bool

// of reports whether addressee a's entry is handed out at this
// moment; only a queued entry can be.
func (busy InFlight) of(a telegram.Address, ds DeliveryState) bool {
	return ds.Pending() && !ds.Held && !ds.Deferred && busy[Slot{Agency: a, Seq: ds.Seq}]
}

// putIn keeps an entry in place p and counts it in; one put back in its
// queue keeps its sequence (reinsert).
func (c *commitCtx) putIn(q SubQueue, p custody.Place, seq uint64, id telegram.ID, overdue bool) error {
	switch p {
	case custody.InQueue:
		c.count(q, Counts{Waiting: 1, Overdue: b2i(overdue)})
		return c.reinsert(q, seq, id)
	case custody.InHeldList:
		c.count(q, Counts{Held: 1})
		return c.set(c.s.ks.heldKey(q.Agency, seq), id[:])
	case custody.InParkedList:
		c.count(q, Counts{Parked: 1})
		return c.set(c.s.ks.parkedKey(q.Agency, seq), id[:])
	case custody.InDeferredList:
		c.count(q, Counts{Deferred: 1})
		return c.set(c.s.ks.deferredKey(q.Agency, seq), id[:])
	}
	return nil
}

// takeOut removes the entry of an addressee's delivery from place p (its
// queue, the held, parked or deferred list) and counts it out.
func (c *commitCtx) takeOut(q SubQueue, p custody.Place, ds DeliveryState) error {
	var k []byte
	var d Counts
	switch p {
	case custody.InHeldList:
		k, d = c.s.ks.heldKey(q.Agency, ds.Seq), Counts{Held: -1}
	case custody.InParkedList:
		k, d = c.s.ks.parkedKey(q.Agency, ds.Seq), Counts{Parked: -1}
	case custody.InDeferredList:
		k, d = c.s.ks.deferredKey(q.Agency, ds.Seq), Counts{Deferred: -1}
	case custody.InQueue:
		k, d = c.s.ks.queueKey(q, ds.Seq), Counts{Waiting: -1, Overdue: -b2i(ds.Overdue)}
	default:
		return nil
	}
	if err := c.txn.Delete(k); err != nil {
		return err
	}
	c.count(q, d)
	return nil
}

// finished reports whether no addressee of h waits for it any more (as
// this commit leaves them); settled is an addressee this commit settled.
// Settled reports whether no addressee waits for a telegram any more,
// given all its delivery states (custody.Finished): it is kept only for
// the journal's retention.
func Settled(states map[telegram.Address]DeliveryState) bool {
	cs := make([]custody.State, 0, len(states))
	for _, ds := range states {
		cs = append(cs, ds.custody(false))
	}
	return custody.Finished(cs)
}

func (c *commitCtx) finished(h telegram.Header, settled telegram.Address) (bool, error) {
	var states []custody.State
	for _, a := range h.Addressees() {
		if a == settled {
			continue
		}
		ds, err := c.s.getDelivery(c.txn.Txn, h.ID, a)
		if fault.Is(fault.NotExist, err) {
			// Not in this switch's custody (yet): an addressee served
			// elsewhere, or one whose copy a peer switch has not handed
			// over yet (each agency's copies come on their own).
			continue
		}
		if err != nil {
			return false, err
		}
		// Quarantined or queued, both pending: no need to look which.
		states = append(states, ds.custody(false))
	}
	return custody.Finished(states), nil
}
