package store

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
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

// More audit events.
const (
	AuditExpired = ReasonExpired // a telegram was withdrawn at its latest delivery time
	AuditParked  = ReasonParked  // a telegram was parked after too many failed attempts
	AuditAttempt = "attempt"     // a telegram was handed to a terminal
	AuditOverdue = "overdue"     // a telegram passed its speed-of-service target while waiting
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
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		out = out[:0]
		var err error
		out, err = c.withdraw(id, reason, only, skip)
		return err
	}})
	return out, err
}

func (c *commitCtx) withdraw(id telegram.ID, reason string, only telegram.Address, skip func(SubQueue, uint64) bool) ([]Withdrawn, error) {
	h, err := c.s.getHeader(c.txn, id)
	if fault.Is(fault.NotExist, err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	type todo struct {
		a  telegram.Address
		ds DeliveryState
	}
	var list []todo
	stillPending, skippedInFlight := false, false
	for _, a := range h.Addressees() {
		ds, err := c.s.getDelivery(c.txn, id, a)
		if err != nil {
			return nil, err
		}
		if !ds.Pending() {
			continue
		}
		q := SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}
		switch {
		case only != "" && a != only:
			stillPending = true
		case skip != nil && skip(q, ds.Seq):
			stillPending, skippedInFlight = true, true
		default:
			list = append(list, todo{a, ds})
		}
	}
	at := unixUTC(c.now)
	var out []Withdrawn
	// Writes only from here.
	for _, td := range list {
		q := SubQueue{Agency: td.a, Prec: h.Precedence, Class: h.Classification}
		if err := c.txn.Delete(c.s.ks.queueKey(q, td.ds.Seq)); err != nil {
			return nil, err
		}
		ds := td.ds
		ds.Status, ds.Reason, ds.At = telegram.NotDelivered, reason, at
		b, err := wire.Marshal(&ds)
		if err != nil {
			return nil, err
		}
		if err := c.set(c.s.ks.deliveryKey(id, td.a), b); err != nil {
			return nil, err
		}
		if reason == ReasonParked {
			if err := c.set(c.s.ks.parkedKey(td.a, td.ds.Seq), id[:]); err != nil {
				return nil, err
			}
		}
		if err := c.appendAudit(AuditEntry{Actor: "switch", Event: reason, ID: id, Agency: td.a,
			Precedence: h.Precedence, Classification: h.Classification}); err != nil {
			return nil, err
		}
		if err := c.queueReceipt(h, telegram.Receipt{ID: id, Addressee: td.a, Status: telegram.NotDelivered,
			Reason: reason, At: at}); err != nil {
			return nil, err
		}
		out = append(out, Withdrawn{Queue: q, Seq: td.ds.Seq})
	}
	if !stillPending && len(list) > 0 {
		return out, c.finish(h) // nobody waits any more
	}
	if reason == ReasonExpired && only == "" && !skippedInFlight && !h.ExpiresAt.IsZero() {
		// Every addressee is settled for expiry purposes: the timer is done.
		return out, c.txn.Delete(dueKey(pExpiry, h.ExpiresAt, id))
	}
	return out, nil
}

// Attempt counts a hand-out of telegram id to terminal for addressee a
// and audits it. It does not wait for the commit: the count rides the next
// group commit, and losing it in a crash only means one attempt fewer is
// counted. Read the state first with Delivery to decide on the hand-out.
func (s *Store) Attempt(id telegram.ID, a telegram.Address, terminal string) {
	s.submitAsync(&op{apply: func(c *commitCtx) error {
		ds, err := c.s.getDelivery(c.txn, id, a)
		if err != nil || !ds.Pending() {
			return nil // gone meanwhile: nothing to count
		}
		ds.Attempts++
		b, err := wire.Marshal(&ds)
		if err != nil {
			return err
		}
		if err := c.set(c.s.ks.deliveryKey(id, a), b); err != nil {
			return err
		}
		return c.appendAudit(AuditEntry{Actor: terminal, Event: AuditAttempt, ID: id, Agency: a})
	}})
}

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
		h, err := c.s.getHeader(c.txn, id)
		if fault.Is(fault.NotExist, err) {
			return nil
		} else if err != nil {
			return err
		}
		now := unixUTC(c.now)
		type todo struct {
			a  telegram.Address
			ds DeliveryState
		}
		var list []todo
		for _, a := range h.Addressees() {
			ds, err := c.s.getDelivery(c.txn, id, a)
			if err != nil {
				return err
			}
			if ds.Pending() && !ds.Overdue {
				list = append(list, todo{a, ds})
			}
		}
		for _, td := range list {
			td.ds.Overdue = true
			b, err := wire.Marshal(&td.ds)
			if err != nil {
				return err
			}
			if err := c.set(c.s.ks.deliveryKey(id, td.a), b); err != nil {
				return err
			}
			age := now.Sub(h.FiledAt).Round(time.Second)
			if err := c.appendAudit(AuditEntry{Actor: "switch", Event: AuditOverdue, ID: id, Agency: td.a,
				Precedence: h.Precedence, Classification: h.Classification, Reason: "waiting " + age.String()}); err != nil {
				return err
			}
			out = append(out, Overdue{Agency: td.a, Prec: h.Precedence, Age: age})
		}
		return c.txn.Delete(dueKey(pOverdue, h.OverdueAt, id))
	}})
	return out, err
}

// Timer kinds for Due.
const (
	DueExpiry  = pExpiry
	DueOverdue = pOverdue
)

// Due returns up to limit telegram IDs whose timer of the given kind
// (DueExpiry, DueOverdue) is at or before now, earliest first, starting
// after cursor (nil: from the first). next is the cursor for the following
// page; entries that stay in the index (deliveries in flight) are not
// returned again within one pass.
func (s *Store) Due(kind byte, now time.Time, cursor []byte, limit int) (ids []telegram.ID, next []byte, err error) {
	end := dueKey(kind, now, telegram.ID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{kind}})
		defer it.Close()
		if cursor == nil {
			it.Rewind()
		} else {
			it.Seek(append(append([]byte(nil), cursor...), 0)) // the smallest key after cursor
		}
		for ; it.Valid() && len(ids) < limit; it.Next() {
			k := it.Item().Key()
			if string(k) > string(end) {
				break
			}
			var id telegram.ID
			copy(id[:], k[9:])
			ids = append(ids, id)
			next = it.Item().KeyCopy(nil)
		}
		return nil
	})
	return ids, next, err
}

// Parked lists up to limit telegrams parked for agency.
func (s *Store) Parked(agency telegram.Address, limit int) ([]Entry, error) {
	var out []Entry
	prefix := s.ks.agencyKey(pParked, agency)
	err := s.db.View(func(txn *badger.Txn) error {
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

// AuditIntegrity is the audit event for a record that failed its
// integrity check.
const AuditIntegrity = "integrity"

// Quarantine takes a queue entry whose telegram failed an integrity check
// out of its queue and puts it in the parked list for an operator, with an
// audit record naming the telegram. It reads neither the header nor the
// delivery state (they may be what is damaged), and deletes nothing else.
func (s *Store) Quarantine(q SubQueue, seq uint64, id telegram.ID, reason string) error {
	return s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		if _, err := c.txn.Get(c.s.ks.queueKey(q, seq)); errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if err := c.txn.Delete(c.s.ks.queueKey(q, seq)); err != nil {
			return err
		}
		if err := c.set(c.s.ks.parkedKey(q.Agency, seq), id[:]); err != nil {
			return err
		}
		return c.appendAudit(AuditEntry{Actor: "switch", Event: AuditIntegrity, ID: id, Agency: q.Agency,
			Precedence: q.Prec, Classification: q.Class, Reason: reason})
	}})
}
