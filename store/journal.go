package store

import (
	"errors"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The journal. A telegram that no addressee waits for any more (settled:
// delivered, expired, cancelled, given up) keeps its sealed header, body
// and delivery states for Options.Retention, so that it can be retrieved
// (Retrieve) and sent again (Resend); then it is purged, and the purge is
// audited (the audit entries themselves stay). Settlement writes a purge
// timer P<time><timer tag> → ID at the time the retention ends; PurgeDue
// takes the timers that are due.

// DefaultRetention is how long a settled telegram is kept by default.
const DefaultRetention = 30 * 24 * time.Hour

// retention is the configured retention; negative keeps no body after
// settlement (the header and states go at the next purge).
func (s *Store) retention() time.Duration {
	switch {
	case s.opts.Retention == 0:
		return DefaultRetention
	case s.opts.Retention < 0:
		return 0
	}
	return s.opts.Retention
}

// settle records in c that telegram h is settled: its body stays for the
// journal (unless Retention is negative) and its purge is timed.
func (c *commitCtx) settle(h telegram.Header) error {
	if c.s.opts.Retention < 0 {
		if err := c.dropBody(h); err != nil {
			return err
		}
	}
	at := time.Unix(0, c.now).Add(c.s.retention())
	return c.set(c.s.ks.dueKey(pPurge, at, h.ID), h.ID[:])
}

func (c *commitCtx) dropBody(h telegram.Header) error {
	num, err := c.s.number(c.txn.Txn, h.ID)
	if err != nil {
		return err
	}
	for n := int64(0); n*ChunkSize < h.BodyLen; n++ {
		if err := c.txn.Delete(bodyKey(num, uint32(n))); err != nil {
			return err
		}
	}
	return nil
}

// PurgeDue purges up to limit telegrams whose retention ended at or
// before now, in one commit, and returns how many timers it took (0: none
// left). A telegram sent again since it was timed (Resend) and not
// settled again, or settled again later, is left for its later timer.
func (s *Store) PurgeDue(now time.Time, limit int) (int, error) {
	return s.purgeTimers(dueEnd(pPurge, now), now, limit, "")
}

// PurgeEarly purges up to limit settled telegrams, oldest first, before
// the end of their retention (the journal gives way when the disk is short
// of space: custody comes first), audited with why. It returns how many
// timers it took (0: the journal is empty).
func (s *Store) PurgeEarly(limit int, why string) (int, error) {
	return s.purgeTimers([]byte{pPurge + 1}, time.Time{}, limit, why)
}

// purgeTimers takes up to limit purge timers below end in one commit,
// purging their telegrams as of now, or at once if early says why. A
// damaged timer is taken out and purges nothing.
func (s *Store) purgeTimers(end []byte, now time.Time, limit int, early string) (int, error) {
	var n int
	err := s.submit(&op{prec: telegram.Routine, apply: func(c *commitCtx) error {
		var keys [][]byte
		var ids []telegram.ID
		c.s.timers(c.txn.Txn, pPurge, nil, end, func(key []byte, id telegram.ID, _ bool) bool {
			keys, ids = append(keys, key), append(ids, id) // a damaged timer's id is zero
			return len(keys) < limit
		})
		n = len(keys)
		for i, id := range ids {
			if err := c.txn.Delete(keys[i]); err != nil {
				return err
			}
			if err := c.purge(id, now, early); err != nil {
				return err
			}
		}
		return nil
	}})
	return n, err
}

// purge removes telegram id's records if it is settled and its retention
// has ended at now (or at once, early saying why).
func (c *commitCtx) purge(id telegram.ID, now time.Time, early string) error {
	if id.IsZero() {
		return nil
	}
	h, err := c.s.getHeader(c.txn.Txn, id)
	if fault.Is(fault.NotExist, err) {
		return nil
	}
	if err != nil {
		return nil // left for an operator: Integrity shows when it is read
	}
	var states []custody.State
	var last time.Time // the latest settlement
	for _, a := range h.Addressees() {
		ds, err := c.s.getDelivery(c.txn.Txn, id, a)
		if err != nil {
			return err
		}
		states = append(states, ds.custody(false))
		if ds.At.After(last) {
			last = ds.At
		}
	}
	if !custody.Finished(states) {
		return nil // sent again and waiting: its next settlement times the purge
	}
	if early == "" && now.Before(last.Add(c.s.retention())) {
		return nil // settled again since: a later timer purges it
	}
	if err := c.dropBody(h); err != nil {
		return err
	}
	num, err := c.s.number(c.txn.Txn, id)
	if err != nil {
		return err
	}
	for _, a := range h.Addressees() {
		if err := c.txn.Delete(c.s.ks.deliveryKey(num, id, a)); err != nil {
			return err
		}
	}
	if h.Ref != "" {
		rk := c.s.ks.refKey(h.From, h.Ref)
		if v, err := c.s.get(c.txn.Txn, rk); err == nil && len(v) >= len(id) && telegram.ID(v[:len(id)]) == id {
			if err := c.txn.Delete(rk); err != nil {
				return err
			}
		} else if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
	}
	if err := c.txn.Delete(headerKey(num)); err != nil {
		return err
	}
	if err := c.txn.Delete(c.s.ks.numberKey(id)); err != nil {
		return err
	}
	c.s.nums.forget(id)
	reason := "kept " + c.s.retention().String() + " after it was settled"
	if early != "" {
		reason = "purged before the end of its retention: " + early
	}
	return c.appendAudit(AuditEntry{Actor: "switch", Event: audit.Purged, ID: id, From: h.From,
		Precedence: h.Precedence, Classification: h.Classification, Reason: reason})
}

// Resend sends telegram id again, from custody or the journal, to
// addressee to (every addressee it was delivered to, if to is empty):
// each copy is queued again under a new sequence, flagged possible
// duplicate when handed out, audited resent naming actor (with reason),
// and reported to the sender when delivered again. Addressees not
// delivered (still waiting, expired, cancelled) are skipped. A telegram
// past its latest delivery time, or whose body was not kept, is refused.
func (s *Store) Resend(id telegram.ID, to telegram.Address, actor, reason string) (OpResult, error) {
	var res OpResult
	err := s.submit(&op{prec: telegram.Routine, apply: func(c *commitCtx) error {
		res = OpResult{}
		h, err := c.s.getHeader(c.txn.Txn, id)
		if fault.Is(fault.NotExist, err) {
			return fault.Errorf("store.resend", fault.NotExist, "no telegram %s in custody or in the journal (settled telegrams are kept %s)", id, c.s.retention())
		}
		if err != nil {
			return err
		}
		if to != "" && !slices.Contains(h.Addressees(), to) {
			return fault.Errorf("store.resend", fault.Invalid, "%s is not an addressee of telegram %s", to, id)
		}
		if now := time.Unix(0, c.now); h.Expired(now) {
			return fault.Errorf("store.resend", fault.Invalid, "telegram %s expired at %s: file it again instead", id, h.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if h.BodyLen > 0 {
			num, err := c.s.number(c.txn.Txn, id)
			if err != nil {
				return err
			}
			if _, err := c.txn.Get(bodyKey(num, 0)); errors.Is(err, badger.ErrKeyNotFound) {
				return fault.Errorf("store.resend", fault.NotExist, "the body of telegram %s was not kept (the journal keeps none)", id)
			} else if err != nil {
				return err
			}
		}
		for _, a := range h.Addressees() {
			if to != "" && a != to {
				continue
			}
			ds, err := c.s.getDelivery(c.txn.Txn, id, a)
			if err != nil {
				return err
			}
			if ds.Status != telegram.Delivered || ds.Via != "" {
				// (One delivered by a switch further on is that switch's to
				// send again: this one would hand it over, and the next
				// switch, holding it, would not take it twice.)
				res.Skipped = append(res.Skipped, a)
				continue
			}
			c.st.qseq++
			ds.Seq = c.st.qseq
			if _, _, err := c.step(h, a, ds, custody.Event{Kind: custody.Resend, Actor: actor, Reason: reason}); err != nil {
				return err
			}
			res.Done = append(res.Done, a)
		}
		return nil
	}})
	return res, err
}
