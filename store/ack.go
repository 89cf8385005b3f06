package store

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// DeliveryState is where one telegram stands for one addressee.
type DeliveryState struct {
	Status   telegram.Status `cbor:"1,keyasint,omitempty"` // 0 while pending
	At       time.Time       `cbor:"2,keyasint,omitzero"`
	Terminal string          `cbor:"3,keyasint,omitempty"`
	Reason   string          `cbor:"4,keyasint,omitempty"` // NOT_DELIVERED: expired, parked, ...
	Seq      uint64          `cbor:"5,keyasint,omitempty"` // the queue entry's sequence
	// Attempts counts hand-outs to a terminal of the addressee. Every
	// attempt but an acknowledged one failed.
	Attempts int  `cbor:"6,keyasint,omitempty"`
	Overdue  bool `cbor:"7,keyasint,omitempty"` // passed its speed-of-service target while pending
	// Held: an operator took the entry out of the queue (it is in the held
	// list under Seq) until released. Still pending.
	Held bool `cbor:"8,keyasint,omitempty"`
	// Cut counts attempts that a crash of the switch may have cut rather
	// than the terminal failed: they do not count towards parking.
	Cut int `cbor:"9,keyasint,omitempty"`
	// Deferred: filed for delivery at a later time (the header's
	// DeliverAt); kept in the deferred list under Seq until then. Pending.
	Deferred bool `cbor:"10,keyasint,omitempty"`
	// Via: relayed, custody passed to this next switch at At (settled
	// here; the next switch reports delivery to the sender).
	Via string `cbor:"11,keyasint,omitempty"`
	// (A relayed copy whose report came back keeps Via, with the
	// report's Status, Reason, At and Terminal.)
	// MovedTo: an operator re-addressed the copy to this agency at At
	// (settled here: the successor's copy is a delivery state of its own).
	MovedTo telegram.Address `cbor:"12,keyasint,omitempty"`
}

// Failed is how many attempts failed at the addressee's end, as far as the
// switch can tell: what decides parking.
func (d DeliveryState) Failed() int { return d.Attempts - d.Cut }

// Pending reports whether the addressee still waits for the telegram.
func (d DeliveryState) Pending() bool { return d.Status == 0 && d.Via == "" && d.MovedTo == "" }

// Parked reports whether the addressee's delivery was given up after too
// many attempts (or quarantined) and waits for an operator: the telegram is
// kept for it, and tg requeue puts it back.
func (d DeliveryState) Parked() bool {
	return d.Status == telegram.NotDelivered && d.Reason == ReasonParked
}

func unixUTC(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Ack records that a terminal of q.Agency durably stored telegram id,
// delivered from sub-queue q at sequence seq. In one transaction it
// removes the queue entry, marks the addressee delivered, queues a
// delivery report for the sender, writes the audit records, moves the
// sub-queue's head to head (when head > 0), and deletes the body once
// every addressee has it. Acknowledging an entry that is already gone
// changes nothing and reports done=false.
type Ack struct {
	Queue    SubQueue
	Seq      uint64
	ID       telegram.ID
	Terminal string // the acknowledging identity
	Head     uint64 // the sub-queue's new head, 0 to leave it
	// Via is set when the acknowledgement comes from the next switch, which
	// committed the telegram (LinkSeq: the link's sequence number of that
	// hand-over): custody passes on, audited "relayed", and the sender's
	// report will come from further on.
	Via     string
	LinkSeq uint64
	// Reject, if set, is not an acknowledgement: the terminal refused the
	// telegram (end-to-end verification failed) for this reason
	// (signature, unreadable), Detail saying what failed. The addressee is
	// settled NOT_DELIVERED with it and the sender told.
	Reject, Detail string
}

// Ack commits a; it returns after fsync.
func (s *Store) Ack(a Ack) (done bool, err error) {
	r := s.AckAll([]Ack{a})[0]
	return r.Done, r.Err
}

// Acked is what became of one acknowledgement of AckAll: Done as for
// Ack, or the error that kept it from being recorded.
type Acked struct {
	Done bool
	Err  error
}

// AckAll commits acknowledgements of one precedence (as a terminal sends
// them, several to a frame) in order, in one commit, and returns after
// fsync. One that fails (an unreadable record) does not keep the others
// from being recorded.
func (s *Store) AckAll(as []Ack) []Acked {
	if len(as) == 0 {
		return nil
	}
	prec := as[0].Queue.Prec
	return s.ackEach(len(as), &op{prec: prec, lazy: prec != telegram.Flash}, func(c *commitCtx, i int) (bool, error) { return c.ack(as[i]) })
}

// ackEach applies n acknowledgements in one commit of o's lane, in order,
// each with its own outcome: one that fails (an unreadable record) does
// not keep the others from being recorded; a transaction grown too big
// splits the commit, and the op is applied again.
func (s *Store) ackEach(n int, o *op, ack func(c *commitCtx, i int) (bool, error)) []Acked {
	out := make([]Acked, n)
	o.apply = func(c *commitCtx) error {
		for i := range out {
			if out[i].Done, out[i].Err = ack(c, i); errors.Is(out[i].Err, badger.ErrTxnTooBig) {
				return out[i].Err
			}
		}
		return nil
	}
	if err := s.submit(o); err != nil {
		for i := range out {
			out[i] = Acked{Err: err}
		}
	}
	return out
}

func (c *commitCtx) ack(a Ack) (bool, error) {
	qk := c.s.ks.queueKey(a.Queue, a.Seq)
	if _, err := c.txn.Get(qk); errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	h, err := c.s.getHeader(c.txn.Txn, a.ID)
	if err != nil {
		return false, err
	}
	ds, err := c.s.getDelivery(c.txn.Txn, a.ID, a.Queue.Agency)
	if err != nil {
		return false, err
	}
	// The entry is in its queue (read above): not quarantined.
	e := custody.Event{Kind: custody.Ack, Actor: a.Terminal}
	if a.Reject != "" {
		e = custody.Event{Kind: custody.Reject, Actor: a.Terminal, Reason: a.Reject, Detail: a.Detail}
	}
	if a.Via != "" {
		e = custody.Event{Kind: custody.HandOver, Actor: a.Via, Reason: linkReason("to", a.Via, a.LinkSeq)}
		if err := c.keepLinkOut(a.Via, a.Queue.Prec.Rank(), a.LinkSeq); err != nil {
			return false, err
		}
	}
	done, _, err := c.stepFrom(h, a.Queue.Agency, ds, ds.custody(false), e)
	// (An acknowledged addressee is settled: only the others can keep the body.)
	if err != nil || !done {
		return false, err
	}
	if a.Head > 0 {
		if err := c.set(c.s.ks.queueHeadKey(a.Queue), putU64(a.Head)); err != nil {
			return false, err
		}
	}
	if finished, err := c.finished(h, a.Queue.Agency); err != nil || !finished {
		return true, err
	}
	return true, c.finish(h)
}

// finish settles a telegram no addressee waits for any more: its timers
// go, and it is kept in the journal (journal.go) until its purge.
func (c *commitCtx) finish(h telegram.Header) error {
	if err := c.settle(h); err != nil {
		return err
	}
	if !h.ExpiresAt.IsZero() {
		if err := c.txn.Delete(c.s.ks.dueKey(pExpiry, h.ExpiresAt, h.ID)); err != nil {
			return err
		}
	}
	if !h.DeliverAt.IsZero() {
		if err := c.txn.Delete(c.s.ks.dueKey(pDeferral, h.DeliverAt, h.ID)); err != nil {
			return err
		}
	}
	if !h.OverdueAt.IsZero() {
		return c.txn.Delete(c.s.ks.dueKey(pOverdue, h.OverdueAt, h.ID))
	}
	return nil
}

// queueReceipt puts a delivery report in the sender's receipt queue.
func (c *commitCtx) queueReceipt(h telegram.Header, r telegram.Receipt) error {
	if err := c.noteRemote(h.From); err != nil {
		return err
	}
	b, err := encodeRecord(&r)
	if err != nil {
		return err
	}
	c.st.rseq++
	if err := c.set(c.s.ks.receiptKey(h.From, c.st.rseq), b); err != nil {
		return err
	}
	*c.events = append(*c.events, Event{Kind: EvReceipt, Queue: SubQueue{Agency: h.From}, Seq: c.st.rseq, ID: r.ID, Receipt: r})
	return c.appendAudit(AuditEntry{Actor: "switch", Event: AuditReportQueued, ID: r.ID, From: h.From, To: r.Addressee,
		Precedence: h.Precedence, Classification: h.Classification, Reason: r.Status.String()})
}

// AckReceipt records that a terminal of agency stored the delivery report
// at seq. head, when > 0, becomes the agency's receipt-queue head.
func (s *Store) AckReceipt(agency telegram.Address, seq uint64, terminal string, head uint64) (bool, error) {
	r := s.AckReceipts(agency, []ReceiptAck{{Seq: seq, Head: head}}, terminal)[0]
	return r.Done, r.Err
}

// ReceiptAck is one acknowledgement of a delivery report: its sequence in
// the agency's receipt queue, and the queue's new head (0 to leave it).
type ReceiptAck struct {
	Seq, Head uint64
	// Via: the next switch took the report (LinkSeq: the report channel's
	// sequence number of that hand-over).
	Via     string
	LinkSeq uint64
	// Reject, if set, is not an acknowledgement: the terminal refused the
	// telegram (end-to-end verification failed) for this reason
	// (signature, unreadable), Detail saying what failed. The addressee is
	// settled NOT_DELIVERED with it and the sender told.
	Reject, Detail string
}

// AckReceipts records, in order and in one commit, that a terminal of
// agency stored the delivery reports of as.
func (s *Store) AckReceipts(agency telegram.Address, as []ReceiptAck, terminal string) []Acked {
	// The routine lane: the report is already in the sender's hands, this
	// only clears it, and it must not take a FLASH's place in a commit.
	return s.ackEach(len(as), &op{prec: telegram.Routine, lazy: true}, func(c *commitCtx, i int) (bool, error) {
		return c.ackReceipt(agency, as[i], terminal)
	})
}

func (c *commitCtx) ackReceipt(agency telegram.Address, a ReceiptAck, terminal string) (bool, error) {
	k := c.s.ks.receiptKey(agency, a.Seq)
	item, err := c.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var r telegram.Receipt
	v, err := c.s.value(item)
	if err == nil {
		err = decodeRecord(v, &r)
	}
	if err != nil {
		return false, fault.E("store.ackreceipt", fault.Integrity, "unreadable delivery report", err)
	}
	if err := c.txn.Delete(k); err != nil {
		return false, err
	}
	if a.Head > 0 {
		if err := c.set(c.s.ks.receiptHeadKey(agency), putU64(a.Head)); err != nil {
			return false, err
		}
	}
	reason := r.Status.String()
	if a.Via != "" {
		if err := c.keepLinkOut(a.Via, ReportChannel, a.LinkSeq); err != nil {
			return false, err
		}
		reason += ", relayed " + linkReason("to", a.Via, a.LinkSeq)
	}
	return true, c.appendAudit(AuditEntry{Actor: terminal, Event: AuditReportDelivered, ID: r.ID, From: agency,
		To: r.Addressee, Reason: reason})
}

// FlushAttempts returns once every attempt counted so far is committed.
func (s *Store) FlushAttempts() error {
	return s.submit(&op{prec: telegram.Routine, apply: func(*commitCtx) error { return nil }})
}

// Attempt counts a hand-out of telegram h to terminal for addressee a
// and audits it. It does not wait for the commit: the count rides the next
// group commit, and losing it in a crash only means one attempt fewer is
// counted. Read the state first with Delivery to decide on the hand-out;
// before handing out again something handed out before, call
// FlushAttempts, so the count read is complete.
//
// afterCrash says the telegram may have been in flight when the switch
// last crashed (schedule.Item.Suspect): its last attempt is then counted
// as cut by the crash, not failed.
func (s *Store) Attempt(h telegram.Header, a telegram.Address, terminal string, afterCrash bool) {
	id := h.ID
	// Same lane as the telegram's acknowledgement, so the attempt is
	// counted before the ack that settles it.
	// A FLASH's attempt takes the FLASH lane; any other waits for the next
	// commit (most often its acknowledgement's), in the lazy lane, which
	// each routine commit takes before its acknowledgements.
	s.submitAsync(&op{prec: h.Precedence, lazy: h.Precedence != telegram.Flash, apply: func(c *commitCtx) error {
		ds, err := c.s.getDelivery(c.txn.Txn, id, a)
		if err != nil {
			return nil // gone meanwhile: nothing to count
		}
		_, _, err = c.step(h, a, ds, custody.Event{Kind: custody.Attempt, Actor: terminal, AfterCrash: afterCrash})
		return err
	}})
}
