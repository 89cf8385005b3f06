package store

import (
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Moving an agency's queue (tg move-queue: a merger of provinces or
// districts). Each copy waiting for the old address is settled there as
// moved (custody's Move: audited, the sender told MOVED with the new
// address) and a copy for the new address takes its place in the same
// commit: queued, held or deferred as it was, under the same telegram ID,
// precedence, classification and queue sequence number (so in filing
// order among the new address's own). The header lists the move (Header.Moved)
// so that the new address is an addressee. Deliveries in flight are left
// to their outcome, parked and quarantined copies to an operator's
// requeue: a later move takes them.

// MoveResult says what one MoveQueue batch did.
type MoveResult struct {
	Moved   int         // copies re-addressed
	Removed []Withdrawn // entries taken out of the old address's queues (the schedulers drop them)
}

// moveCandidate is one copy to move, found before any is moved.
type moveCandidate struct {
	id    telegram.ID
	place custody.Place
}

// MoveQueue re-addresses up to limit of the copies waiting for old (in its
// queues but not in flight (busy), held or deferred) and classified up to
// clearance, to new, in one commit. Call it until it moves fewer than
// limit.
func (s *Store) MoveQueue(old, new telegram.Address, actor string, clearance telegram.Classification, busy InFlight, limit int) (MoveResult, error) {
	if old == new || old == "" || new == "" {
		return MoveResult{}, fault.Errorf("store.move", fault.Invalid, "move %s to %s: two different addresses", old, new)
	}
	var res MoveResult
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		res = MoveResult{}
		cands, err := c.moveCandidates(old, clearance, busy, limit)
		if err != nil {
			return err
		}
		for _, m := range cands {
			moved, removed, err := c.move(m, old, new, actor, busy)
			if err != nil {
				return err
			}
			if moved {
				res.Moved++
			}
			if removed != nil {
				res.Removed = append(res.Removed, *removed)
			}
		}
		return nil
	}})
	return res, err
}

// moveCandidates lists up to limit of old's copies to move, classified up
// to clearance: its queues' entries (not in flight) in order, then its
// held and deferred lists.
func (c *commitCtx) moveCandidates(old telegram.Address, clearance telegram.Classification, busy InFlight, limit int) ([]moveCandidate, error) {
	var out []moveCandidate
	txn := c.txn.Txn
	for r := 0; r < 4 && len(out) < limit; r++ {
		for cl := telegram.Unclassified; cl <= clearance && len(out) < limit; cl++ {
			q := SubQueue{Agency: old, Prec: telegram.PrecedenceOfRank(r), Class: cl}
			head, err := c.s.getU64(txn, c.s.ks.queueHeadKey(q))
			if err != nil {
				return nil, err
			}
			prefix := c.s.ks.queuePrefix(q)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			for it.Seek(c.s.ks.queueKey(q, head)); it.Valid() && len(out) < limit; it.Next() {
				seq := u64(it.Item().Key()[len(prefix):])
				if busy[Slot{Agency: old, Seq: seq}] {
					continue
				}
				v, err := c.s.value(it.Item())
				if err != nil {
					it.Close()
					return nil, fault.E("store.move", fault.Integrity, "unreadable queue entry", err)
				}
				var id telegram.ID
				copy(id[:], v)
				out = append(out, moveCandidate{id: id, place: custody.InQueue})
			}
			it.Close()
		}
	}
	for _, l := range []struct {
		p     byte
		place custody.Place
	}{{pHeld, custody.InHeldList}, {pDeferred, custody.InDeferredList}} {
		prefix := c.s.ks.agencyKey(l.p, old)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
			v, err := c.s.value(it.Item())
			if err != nil {
				it.Close()
				return nil, err
			}
			var id telegram.ID
			copy(id[:], v)
			h, err := c.s.getHeader(txn, id)
			if err != nil {
				it.Close()
				return nil, err
			}
			if h.Classification <= clearance {
				out = append(out, moveCandidate{id: id, place: l.place})
			}
		}
		it.Close()
	}
	return out, nil
}

// move re-addresses one copy, if custody says it moves; removed is the
// queue entry it took out of old's queue, if any.
func (c *commitCtx) move(m moveCandidate, old, new telegram.Address, actor string, busy InFlight) (moved bool, removed *Withdrawn, err error) {
	h, err := c.s.getHeader(c.txn.Txn, m.id)
	if err != nil {
		return false, nil, err
	}
	ds, err := c.s.getDelivery(c.txn.Txn, m.id, old)
	if err != nil {
		return false, nil, err
	}
	done, fx, err := c.step(h, old, ds, custody.Event{Kind: custody.Move, Actor: actor, To: new, InFlight: busy.of(old, ds)})
	if err != nil || !done {
		return false, nil, err
	}
	if fx.From == custody.InQueue {
		removed = &Withdrawn{Queue: SubQueue{Agency: old, Prec: h.Precedence, Class: h.Classification}, Seq: ds.Seq}
	}
	return true, removed, c.successor(h, ds, fx.From, old, new, actor)
}

// successor lists the move in h's header and, unless new is an
// addressee already (it gets the telegram once), gives new a copy in
// place p, overdue if old's was.
func (c *commitCtx) successor(h telegram.Header, ds DeliveryState, p custody.Place, old, new telegram.Address, actor string) error {
	already := slices.Contains(h.Addressees(), new)
	h.Moved = append(h.Moved, telegram.Move{From: old, To: new, At: unixUTC(c.now)})
	num, err := c.s.number(c.txn.Txn, h.ID)
	if err != nil {
		return err
	}
	hb, err := encodeRecord(&h)
	if err != nil {
		return err
	}
	if err := c.set(headerKey(num), padRecord(hb)); err != nil {
		return err
	}
	if already {
		return nil
	}
	if err := c.noteRemote(new); err != nil {
		return err
	}
	// The same sequence number: sequences are unique across queues and
	// given in filing order, so the copy takes its filing-order place
	// among new's own (the head moved back to it if need be).
	q := SubQueue{Agency: new, Prec: h.Precedence, Class: h.Classification}
	if err := c.putIn(q, p, ds.Seq, h.ID, ds.Overdue); err != nil {
		return err
	}
	nds := DeliveryState{Seq: ds.Seq, Held: p == custody.InHeldList, Deferred: p == custody.InDeferredList, Overdue: ds.Overdue}
	if err := c.putDelivery(h.ID, new, nds); err != nil {
		return err
	}
	event := audit.Queued
	if p == custody.InDeferredList {
		event = audit.Deferred
	}
	return c.appendAudit(AuditEntry{Actor: actor, Event: event, ID: h.ID, From: h.From, To: new,
		Precedence: h.Precedence, Classification: h.Classification, Reason: "moved from " + string(old)})
}
