package store

import (
	"encoding/binary"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// Overdue is one addressee of a telegram found past its speed-of-service
// target.
type Overdue struct {
	Agency telegram.Address
	Prec   telegram.Precedence
	Age    time.Duration // since filing
}

// MarkOverdue records, once, that telegram id passed its speed-of-service
// target for every addressee still waiting: the delivery state is flagged
// (operators query it), an audit record carries the age, and the index
// entry goes, so it is never reported twice.
func (s *Store) MarkOverdue(id telegram.ID) ([]Overdue, error) {
	var out []Overdue
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		out = out[:0]
		var age time.Duration
		h, ok, err := c.stepAddressees(id, func(h telegram.Header) custody.Event {
			age = unixUTC(c.now).Sub(h.FiledAt).Round(time.Second)
			return custody.Event{Kind: custody.Overdue, Reason: "waiting " + age.String()}
		}, func(h telegram.Header, a telegram.Address, fx custody.Effects) {
			if fx.To == custody.InQueue { // counted among the queue's overdue
				c.count(SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}, Counts{Overdue: 1})
			}
			out = append(out, Overdue{Agency: a, Prec: h.Precedence, Age: age})
		})
		if !ok || err != nil {
			return err
		}
		return c.txn.Delete(c.s.ks.dueKey(pOverdue, h.OverdueAt, id))
	}})
	return out, err
}

// Timer kinds for Due.
const (
	DueExpiry   = pExpiry
	DueOverdue  = pOverdue
	DueDeferral = pDeferral
)

// Undefer queues a deferred telegram whose delivery time has come, for
// every addressee still deferred (custody's Due: audited queued), and
// drops its timer. It reports the addressees queued.
func (s *Store) Undefer(id telegram.ID) ([]telegram.Address, error) {
	var out []telegram.Address
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		out = out[:0]
		h, ok, err := c.stepAddressees(id, func(telegram.Header) custody.Event { return custody.Event{Kind: custody.Due} },
			func(_ telegram.Header, a telegram.Address, _ custody.Effects) { out = append(out, a) })
		if !ok || err != nil {
			return err
		}
		return c.txn.Delete(c.s.ks.dueKey(pDeferral, h.DeliverAt, id))
	}})
	return out, err
}

// dueEnd is the smallest timer key of kind after now: every key at or
// before now sorts below it.
func dueEnd(kind byte, now time.Time) []byte {
	return binary.BigEndian.AppendUint64([]byte{kind}, uint64(now.UnixNano())+1)
}

// Due returns up to limit telegram IDs whose timer of the given kind
// (DueExpiry, DueOverdue) is at or before now, earliest first, starting
// after cursor (nil: from the first). next is the cursor for the following
// page; entries that stay in the index (deliveries in flight) are not
// returned again within one pass.
func (s *Store) Due(kind byte, now time.Time, cursor []byte, limit int) (ids []telegram.ID, next []byte, err error) {
	err = s.view(func(txn *badger.Txn) error {
		s.timers(txn, kind, cursor, dueEnd(kind, now), func(key []byte, id telegram.ID, ok bool) bool {
			next = key
			if !ok {
				// A damaged timer names no telegram to act on; the
				// telegram's own records are checked when it is read.
				s.log.Error("unreadable timer skipped", zap.Binary("key", key))
				return true
			}
			ids = append(ids, id)
			return len(ids) < limit
		})
		return nil
	})
	return ids, next, err
}

// DueFrom is the cursor from which Due returns the timers of kind at or
// after from.
func DueFrom(kind byte, from time.Time) []byte { return dueEnd(kind, from.Add(-1)) }

// timers calls fn with the timers of kind in txn, earliest first, after
// cursor (nil: from the first) and before end, until fn returns false:
// each timer's key (a copy) and the telegram it names (ok false: the
// timer is damaged and names none).
func (s *Store) timers(txn *badger.Txn, kind byte, cursor, end []byte, fn func(key []byte, id telegram.ID, ok bool) bool) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{kind}})
	defer it.Close()
	if cursor == nil {
		it.Rewind()
	} else {
		it.Seek(append(append([]byte(nil), cursor...), 0)) // the smallest key after cursor
	}
	for ; it.Valid(); it.Next() {
		k := it.Item().KeyCopy(nil)
		if string(k) >= string(end) {
			return
		}
		v, err := s.value(it.Item())
		ok := err == nil && len(v) == len(telegram.ID{})
		var id telegram.ID
		if ok {
			id = telegram.ID(v)
		}
		if !fn(k, id, ok) {
			return
		}
	}
}

// stepAddressees applies the custody event ev makes from telegram id's
// header to each of its addressees, calling applied for those it applied
// to. ok is false when the telegram is gone (nothing to do).
func (c *commitCtx) stepAddressees(id telegram.ID, ev func(telegram.Header) custody.Event,
	applied func(telegram.Header, telegram.Address, custody.Effects)) (h telegram.Header, ok bool, err error) {
	h, err = c.s.getHeader(c.txn.Txn, id)
	if fault.Is(fault.NotExist, err) {
		return h, false, nil
	} else if err != nil {
		return h, false, err
	}
	e := ev(h)
	for _, a := range h.Addressees() {
		ds, err := c.s.getDelivery(c.txn.Txn, id, a)
		if err != nil {
			return h, false, err
		}
		done, fx, err := c.step(h, a, ds, e)
		if err != nil {
			return h, false, err
		}
		if done {
			applied(h, a, fx)
		}
	}
	return h, true, nil
}
