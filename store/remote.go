package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// In a network of switches, copies for an agency another switch serves
// wait in that agency's queues here (its sub-queues and receipt queue, as
// for an agency served here) until a link hands them to the next switch.
// The switch's links must find those agencies without the directory,
// which lists only its own: the store keeps a register of them (key G,
// the agency's tag; value, sealed, its address), written in the commit
// that first queues something for one, and never shrunk (a network has
// few agencies).

// remotes is the register in memory.
type remotes struct {
	is     atomic.Pointer[func(telegram.Address) bool]
	once   sync.Once
	mu     sync.Mutex
	known  map[telegram.Address]bool
	err    error
	notify atomic.Pointer[func(telegram.Address)]
}

// SetRemote tells the store which addresses other switches serve (the
// routing table's answer: relayed, not local); nil: none. notify, if set,
// is told (from the commit loop, without blocking) of an agency added to
// the register.
func (s *Store) SetRemote(is func(telegram.Address) bool, notify func(telegram.Address)) {
	if is == nil {
		s.remote.is.Store(nil)
	} else {
		s.remote.is.Store(&is)
	}
	if notify == nil {
		s.remote.notify.Store(nil)
	} else {
		s.remote.notify.Store(&notify)
	}
}

// isRemote reports whether a is served by another switch.
func (s *Store) isRemote(a telegram.Address) bool {
	is := s.remote.is.Load()
	return is != nil && (*is)(a)
}

// noteRemote registers agency a, if another switch serves it, in this
// commit (unless the register has it); the register in memory learns of
// it once the commit is on disk (registered).
func (c *commitCtx) noteRemote(a telegram.Address) error {
	if !c.s.isRemote(a) || slices.Contains(c.remotes, a) {
		return nil
	}
	if err := c.s.loadRemotes(); err != nil {
		return err
	}
	r := &c.s.remote
	r.mu.Lock()
	known := r.known[a]
	r.mu.Unlock()
	if known {
		return nil
	}
	v, err := encodeRecord(string(a))
	if err != nil {
		return err
	}
	c.remotes = append(c.remotes, a)
	return c.set(c.s.ks.agencyKey(pRemote, a), v)
}

// registered adds agencies a commit on disk registered (commit loop).
func (s *Store) registered(as []telegram.Address) {
	if len(as) == 0 {
		return
	}
	r := &s.remote
	r.mu.Lock()
	for _, a := range as {
		r.known[a] = true
	}
	r.mu.Unlock()
	if n := r.notify.Load(); n != nil {
		for _, a := range as {
			(*n)(a)
		}
	}
}

// loadRemotes reads the register from disk, once.
func (s *Store) loadRemotes() error {
	r := &s.remote
	r.once.Do(func() {
		known, err := s.readRegister(pRemote, "the register of agencies served elsewhere")
		r.mu.Lock()
		r.known, r.err = known, err
		r.mu.Unlock()
	})
	return r.err
}

// readRegister reads a register of agencies: keys prefix<agency tag>,
// values the sealed address.
func (s *Store) readRegister(prefix byte, what string) (map[telegram.Address]bool, error) {
	known := map[telegram.Address]bool{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := s.value(it.Item())
			var a string
			if err == nil {
				err = decodeRecord(v, &a)
			}
			if err != nil {
				return fault.E("store.register", fault.Integrity, "an entry of "+what+" is damaged", err)
			}
			known[telegram.Address(a)] = true
		}
		return nil
	})
	return known, err
}

// RemoteAgencies lists the agencies served by other switches that have
// had telegrams or reports queued here.
func (s *Store) RemoteAgencies() ([]telegram.Address, error) {
	if err := s.loadRemotes(); err != nil {
		return nil, err
	}
	r := &s.remote
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]telegram.Address, 0, len(r.known))
	for a := range r.known {
		out = append(out, a)
	}
	return out, nil
}

// Report is a delivery report handed over by another switch, for the
// telegram's sender (served here, or further on).
type Report struct {
	Receipt        telegram.Receipt
	Sender         telegram.Address
	Precedence     telegram.Precedence
	Classification telegram.Classification
	Peer           string // the switch it came from
	Seq            uint64 // the report channel's sequence number
}

// FileReports queues reports handed over on a link's report channel, in
// order, in one commit, and returns once that is on disk. The sender's
// terminal keeps one report per telegram and addressee, so a report
// handed over twice (a lost acknowledgement) reaches it once.
func (s *Store) FileReports(rs []*Report) error {
	for _, r := range rs {
		if r.Receipt.ID.IsZero() || r.Sender == "" || r.Peer == "" || r.Receipt.Addressee == "" {
			return fault.E("store.relay", fault.Invalid, "a relayed delivery report names its telegram, addressee, sender and link")
		}
		if r.Receipt.Status != telegram.Delivered && r.Receipt.Status != telegram.NotDelivered && r.Receipt.Status != telegram.Moved {
			return fault.Errorf("store.relay", fault.Invalid, "a relayed delivery report says DELIVERED, NOT_DELIVERED or MOVED, not %v", r.Receipt.Status)
		}
	}
	return s.submit(&op{prec: telegram.Routine, apply: func(c *commitCtx) error {
		for _, r := range rs {
			last, err := c.linkSeq(r.Peer, ReportChannel)
			if err != nil {
				return err
			}
			if _, err := c.keepLinkSeq(r.Peer, ReportChannel, last, r.Seq, r.Receipt.ID); err != nil {
				return err
			}
			h := telegram.Header{ID: r.Receipt.ID, From: r.Sender, Precedence: r.Precedence, Classification: r.Classification}
			if err := c.reported(r); err != nil {
				return err
			}
			if err := c.queueReceipt(h, r.Receipt); err != nil {
				return err
			}
		}
		return nil
	}})
}

// reported records, on a copy this switch relayed, the outcome its report
// brings back (custody's Reported): tg show says delivered, not relayed.
func (c *commitCtx) reported(r *Report) error {
	h, err := c.s.getHeader(c.txn.Txn, r.Receipt.ID)
	if fault.Is(fault.NotExist, err) {
		return nil // a switch on the way that no longer holds it, or never did
	} else if err != nil {
		return err
	}
	ds, err := c.s.getDelivery(c.txn.Txn, h.ID, r.Receipt.Addressee)
	if errors.Is(err, badger.ErrKeyNotFound) || fault.Is(fault.NotExist, err) {
		return nil
	} else if err != nil {
		return err
	}
	if ds.Via == "" || ds.Status != 0 {
		return nil
	}
	_, _, err = c.stepFrom(h, r.Receipt.Addressee, ds, ds.custody(false),
		custody.Event{Kind: custody.Reported, Status: r.Receipt.Status, Reason: r.Receipt.Reason, Actor: r.Receipt.Terminal})
	return err
}

// keepLinkOut keeps seq as the last sequence number acknowledged by peer
// on channel ch, if it is higher.
func (c *commitCtx) keepLinkOut(peer string, ch int, seq uint64) error {
	last, err := c.s.linkSeqIn(c.txn.Txn, pLinkOut, peer, ch)
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	if seq <= last {
		return nil
	}
	return c.set(c.s.ks.linkKey(pLinkOut, peer, ch), putU64(seq))
}

// linkReason is the audit reason of a hand-over.
func linkReason(dir, peer string, seq uint64) string {
	return fmt.Sprintf("%s %s, link sequence %d", dir, peer, seq)
}
