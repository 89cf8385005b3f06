package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/telegram"
)

// AgencyList names one of an agency's lists of telegrams out of its
// queues, each entry keyed by its sub-queue sequence.
type AgencyList byte

// The lists.
const (
	ListHeld     AgencyList = pHeld     // held by an operator
	ListParked   AgencyList = pParked   // parked for an operator
	ListDeferred AgencyList = pDeferred // deferred until its delivery time
)

// Parked lists up to limit telegrams parked for agency.
func (s *Store) Parked(agency telegram.Address, limit int) ([]Entry, error) {
	return s.Listed(ListParked, agency, limit)
}

// Listed returns up to limit entries of one of agency's lists, in
// sequence order.
func (s *Store) Listed(l AgencyList, agency telegram.Address, limit int) ([]Entry, error) {
	var out []Entry
	prefix := s.ks.agencyKey(byte(l), agency)
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
			e := Entry{Seq: u64(it.Item().Key()[len(prefix):])}
			v, err := s.value(it.Item())
			if err != nil {
				return err
			}
			copy(e.ID[:], v)
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Quarantine takes a queue entry whose telegram failed an integrity check
// out of its queue and puts it in the parked list for an operator, with an
// audit record naming the telegram, as custody's Quarantine says. It reads
// neither the header nor the delivery state (they may be what is
// damaged): the entry being in its queue is what makes it queued, and the
// delivery state stays as it is (pending; custody reads an entry pending
// on record and in the parked list as quarantined).
func (s *Store) Quarantine(q SubQueue, seq uint64, id telegram.ID, reason string) error {
	return s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		if _, err := c.txn.Get(c.s.ks.queueKey(q, seq)); errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		_, fx := custody.Step(custody.State{Phase: custody.Queued}, custody.Event{Kind: custody.Quarantine, Reason: reason}, unixUTC(c.now), custody.Policy{})
		if err := c.takeOut(q, fx.From, DeliveryState{Seq: seq}); err != nil {
			return err
		}
		if err := c.putIn(q, fx.To, seq, id, false); err != nil {
			return err
		}
		for _, ae := range fx.Audit {
			if err := c.appendAudit(AuditEntry{Actor: ae.Actor, Event: ae.Event, ID: id, To: q.Agency,
				Precedence: q.Prec, Classification: q.Class, Reason: ae.Reason}); err != nil {
				return err
			}
		}
		return nil
	}})
}

// quarantined reports whether the pending entry at seq of q was moved to
// the parked list by Quarantine (its delivery state still says pending).
func (c *commitCtx) quarantined(q SubQueue, seq uint64) bool {
	return c.s.quarantined(c.txn.Txn, q, seq)
}

func (s *Store) quarantined(txn *badger.Txn, q SubQueue, seq uint64) bool {
	if _, err := txn.Get(s.ks.queueKey(q, seq)); err == nil {
		return false
	}
	_, err := txn.Get(s.ks.parkedKey(q.Agency, seq))
	return err == nil
}
