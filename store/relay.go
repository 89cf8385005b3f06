package store

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Custody transfer, the receiving half (docs/DESIGN.md, "A network of
// switches"): another switch hands over a telegram it holds, with custody
// of the copies for some of its addressees. The telegram keeps the ID,
// filing time, expiry and deferral the filing switch gave it, and its
// trace gains this switch. A copy this switch already holds is not taken
// again (it is the same telegram sent twice), so the addressee sees it
// once. The link's sequence number is checked and kept in the same
// commit: a gap or a repeat is audited.

// Relay is a telegram handed over by another switch.
type Relay struct {
	// Header as the sending switch holds it: ID, FiledAt, ExpiresAt,
	// DeliverAt and Trace (the switches before this one) are kept.
	Header telegram.Header
	Body   []byte
	// For lists the addressees whose copies this switch takes (each one of
	// the header's).
	For  []telegram.Address
	Peer string // the switch it came from
	Seq  uint64 // the link's sequence number for this hand-over
	Self string // this switch's name, added to the trace
}

// RelayResult is the outcome of a hand-over.
type RelayResult struct {
	Taken, Held int // copies taken into custody; copies already held (not taken again)
	// Link is set when the sequence number was not the next expected: a
	// gap (numbers missing) or a repeat.
	Link string
}

// FileRelayed takes custody of r's copies and returns once that is on
// disk: only then may the sending switch record them relayed.
func (s *Store) FileRelayed(r *Relay) (RelayResult, error) {
	var res RelayResult
	if err := checkRelay(r); err != nil {
		return res, err
	}
	err := s.submit(&op{prec: r.Header.Precedence, apply: func(c *commitCtx) (err error) {
		res, err = c.fileRelayed(r)
		return err
	}})
	return res, err
}

// checkRelay refuses a hand-over that could not have come from a switch
// keeping the protocol.
func checkRelay(r *Relay) error {
	const op = "store.relay"
	h := &r.Header
	switch {
	case h.ID.IsZero():
		return fault.E(op, fault.Invalid, "a relayed telegram carries its ID")
	case h.FiledAt.IsZero():
		return fault.E(op, fault.Invalid, "a relayed telegram carries its filing time")
	case r.Peer == "" || r.Self == "":
		return fault.E(op, fault.Invalid, "a hand-over names both switches")
	case len(r.For) == 0:
		return fault.E(op, fault.Invalid, "a hand-over names the addressees it is for")
	case h.BodyLen != int64(len(r.Body)):
		return fault.Errorf(op, fault.Invalid, "the header announces %d bytes of body, the hand-over has %d", h.BodyLen, len(r.Body))
	case slices.Contains(h.Passed(), r.Self):
		return fault.Errorf(op, fault.Invalid, "loop: the telegram already passed %s", r.Self)
	}
	all := h.Addressees()
	for _, a := range r.For {
		if !slices.Contains(all, a) {
			return fault.Errorf(op, fault.Invalid, "%s is not an addressee of the telegram", a)
		}
	}
	return nil
}

func (c *commitCtx) fileRelayed(r *Relay) (RelayResult, error) {
	var res RelayResult
	// Reads first.
	last, err := c.linkSeq(r.Peer)
	if err != nil {
		return res, err
	}
	h := r.Header
	num, err := c.s.number(c.txn, h.ID)
	known := err == nil
	if err != nil && !fault.Is(fault.NotExist, err) {
		return res, err
	}
	var take []telegram.Address
	for _, a := range r.For {
		if slices.Contains(take, a) {
			continue
		}
		if known {
			if _, err := c.s.get(c.txn, c.s.ks.deliveryKey(num, h.ID, a)); err == nil {
				res.Held++
				continue
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return res, err
			}
		}
		take = append(take, a)
	}
	// Writes.
	switch {
	case r.Seq == last+1:
	case r.Seq > last+1:
		res.Link = fmt.Sprintf("gap on the link from %s: expected %d, got %d (%d missing)", r.Peer, last+1, r.Seq, r.Seq-last-1)
	default:
		res.Link = fmt.Sprintf("repeat on the link from %s: got %d after %d", r.Peer, r.Seq, last)
	}
	if res.Link != "" {
		if err := c.appendAudit(AuditEntry{Actor: r.Peer, Event: audit.Link, ID: h.ID, Reason: res.Link}); err != nil {
			return res, err
		}
	}
	if err := c.set(c.s.ks.linkKey(r.Peer), putU64(max(last, r.Seq))); err != nil {
		return res, err
	}
	if len(take) == 0 {
		return res, nil
	}
	if !known {
		h.Trace = append(slices.Clone(h.Trace), telegram.Hop{Switch: r.Self, At: unixUTC(c.now)})
		if !h.DeliverAt.After(unixUTC(c.now)) {
			h.DeliverAt = time.Time{} // its time has come already: queued at once
		}
		if num, err = c.keep(&h, r.Body); err != nil {
			return res, err
		}
		if err := c.dues(&h); err != nil {
			return res, err
		}
	}
	for _, a := range take {
		if err := c.appendAudit(AuditEntry{Actor: r.Peer, Event: audit.Received, ID: h.ID, From: h.From, To: a,
			Precedence: h.Precedence, Classification: h.Classification,
			Reason: fmt.Sprintf("from %s, link sequence %d", r.Peer, r.Seq)}); err != nil {
			return res, err
		}
		if err := c.take(&h, num, a); err != nil {
			return res, err
		}
		res.Taken++
	}
	return res, nil
}

// linkSeq is the last sequence number committed from peer (0: none yet).
func (c *commitCtx) linkSeq(peer string) (uint64, error) {
	v, err := c.s.get(c.txn, c.s.ks.linkKey(peer))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(v) != 8:
		return 0, fault.Errorf("store.relay", fault.Integrity, "the sequence number kept for the link from %s is damaged", peer)
	}
	return u64(v), nil
}

// LinkSeq is the last sequence number committed from peer (0: none yet).
func (s *Store) LinkSeq(peer string) (uint64, error) {
	var seq uint64
	err := s.db.View(func(txn *badger.Txn) (err error) {
		seq, err = (&commitCtx{s: s, txn: txn}).linkSeq(peer)
		return err
	})
	return seq, err
}
