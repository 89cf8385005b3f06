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
	// Refused, if set, says why this switch does not take the copies (no
	// route, a loop, an addressee it does not know): only the sequence
	// number is kept, and the refusal audited; the sending switch records
	// the copies NOT_DELIVERED with this reason.
	Refused string
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
	res, errs := s.FileRelayedBatch([]*Relay{r})
	return res[0], errs[0]
}

// FileRelayedBatch takes several hand-overs of one channel of a link (as
// the sending switch batches them) in order, in one commit, and returns
// once that is on disk. Results and errors are per hand-over: one refused
// (checkRelay) is not taken, and its sequence number is not kept.
func (s *Store) FileRelayedBatch(rs []*Relay) ([]RelayResult, []error) {
	res := make([]RelayResult, len(rs))
	errs := make([]error, len(rs))
	var ok []int
	for i, r := range rs {
		if errs[i] = checkRelay(r); errs[i] == nil {
			ok = append(ok, i)
		}
	}
	if len(ok) == 0 {
		return res, errs
	}
	err := s.submit(&op{prec: rs[ok[0]].Header.Precedence, apply: func(c *commitCtx) error {
		for _, i := range ok {
			var err error
			if res[i], err = c.fileRelayed(rs[i]); err != nil {
				return err
			}
		}
		return nil
	}})
	if err != nil {
		for _, i := range ok {
			errs[i] = err
		}
	}
	return res, errs
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
	case r.Refused == "" && slices.Contains(h.Passed(), r.Self):
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
	ch := r.Header.Precedence.Rank()
	last, err := c.linkSeq(r.Peer, ch)
	if err != nil {
		return res, err
	}
	h := r.Header
	num, err := c.s.number(c.txn.Txn, h.ID)
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
			if _, err := c.s.get(c.txn.Txn, c.s.ks.deliveryKey(num, h.ID, a)); err == nil {
				res.Held++
				continue
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return res, err
			}
		}
		take = append(take, a)
	}
	// Writes.
	if res.Link, err = c.keepLinkSeq(r.Peer, ch, last, r.Seq, h.ID); err != nil {
		return res, err
	}
	if r.Refused != "" {
		for _, a := range r.For {
			if err := c.appendAudit(AuditEntry{Actor: r.Peer, Event: AuditRefused, ID: h.ID, From: h.From, To: a,
				Precedence: h.Precedence, Classification: h.Classification,
				Reason: linkReason("from", r.Peer, r.Seq) + ": " + r.Refused}); err != nil {
				return res, err
			}
		}
		return RelayResult{Link: res.Link}, nil
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
			Reason: linkReason("from", r.Peer, r.Seq)}); err != nil {
			return res, err
		}
		if err := c.take(&h, num, a); err != nil {
			return res, err
		}
		res.Taken++
	}
	return res, nil
}

// keepLinkSeq keeps seq, the sequence number of a hand-over from peer on
// channel ch after last, and audits a gap or a repeat, which it returns
// described ("" when seq is the next one).
func (c *commitCtx) keepLinkSeq(peer string, ch int, last, seq uint64, id telegram.ID) (string, error) {
	var odd string
	switch {
	case seq == last+1:
	case seq > last+1:
		odd = fmt.Sprintf("gap on the %s channel of the link from %s: expected %d, got %d (%d missing)", ChannelName(ch), peer, last+1, seq, seq-last-1)
	default:
		odd = fmt.Sprintf("repeat on the %s channel of the link from %s: got %d after %d", ChannelName(ch), peer, seq, last)
	}
	if odd != "" {
		if err := c.appendAudit(AuditEntry{Actor: peer, Event: audit.Link, ID: id, Reason: odd}); err != nil {
			return odd, err
		}
	}
	return odd, c.set(c.s.ks.linkKey(pLink, peer, ch), putU64(max(last, seq)))
}

// Channels is how many channels a link has, each with its own sequence
// numbers: one per precedence (by rank, FLASH first), so that a FLASH
// never waits for a number behind a routine telegram still in flight,
// and ReportChannel for delivery reports.
const Channels = 5

// ReportChannel is the channel of delivery reports.
const ReportChannel = 4

// ChannelName names a link's channel: its precedence, or "report".
func ChannelName(ch int) string {
	if ch == ReportChannel {
		return "report"
	}
	return telegram.PrecedenceOfRank(ch).String()
}

// linkSeq is the last sequence number committed from peer on channel ch
// (0: none yet).
func (c *commitCtx) linkSeq(peer string, ch int) (uint64, error) {
	return c.s.linkSeqIn(c.txn.Txn, pLink, peer, ch)
}

func (s *Store) linkSeqIn(txn *badger.Txn, p byte, peer string, ch int) (uint64, error) {
	v, err := s.get(txn, s.ks.linkKey(p, peer, ch))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(v) != 8:
		return 0, fault.Errorf("store.relay", fault.Integrity, "the sequence number kept for the %s channel of the link with %s is damaged", ChannelName(ch), peer)
	}
	return u64(v), nil
}

// LinkSeqs are the last sequence numbers of a link, per channel: In, the
// last committed from the peer; Out, the last this switch handed over and
// had acknowledged.
type LinkSeqs struct {
	In, Out [Channels]uint64
}

// LinkSeq reads the sequence numbers kept for the link with peer.
func (s *Store) LinkSeq(peer string) (LinkSeqs, error) {
	var ls LinkSeqs
	err := s.db.View(func(txn *badger.Txn) error {
		for ch := range Channels {
			var err error
			if ls.In[ch], err = s.linkSeqIn(txn, pLink, peer, ch); err != nil {
				return err
			}
			if ls.Out[ch], err = s.linkSeqIn(txn, pLinkOut, peer, ch); err != nil {
				return err
			}
		}
		return nil
	})
	return ls, err
}
