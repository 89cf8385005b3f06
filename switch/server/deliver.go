package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

const receiptRank = 4

// dstream is one delivery stream: a precedence's, or the receipts'.
type dstream struct {
	str   *quic.Stream
	items chan schedule.Item
}

// poke wakes the session's pump without blocking.
func (sess *session) poke() {
	select {
	case sess.wake <- struct{}{}:
	default:
	}
}

// handleSubscribe starts pushing telegrams and/or receipts to this
// session, and keeps the subscribe stream open for Drained notices until
// the client closes it or the connection ends.
//
// A subscription lasts as long as its connection: it is not a request in
// progress for shutdown purposes, so it calls release once set up.
func (sess *session) handleSubscribe(str *quic.Stream, payload []byte, release func()) {
	var sub wire.Subscribe
	if err := wire.Decode(wire.TSubscribe, payload, &sub); err != nil {
		sess.replyError(str, err)
		return
	}
	if !sub.Inbox && !sub.Receipts {
		sess.replyError(str, fault.E("subscribe", fault.Invalid, "subscribe to the inbox, receipts or both"))
		return
	}
	sess.mu.Lock()
	already := sess.subscribed
	if !already {
		sess.subscribed, sess.sub = true, sub
	}
	sess.mu.Unlock()
	if already {
		sess.replyError(str, fault.E("subscribe", fault.Invalid, "this connection is already subscribed"))
		return
	}
	sess.replaceOlder(sub)
	ag, err := sess.s.ex.attach(sess, sub.Inbox)
	if fault.Is(fault.Unavailable, err) {
		sess.log.Warn("subscription refused", zap.Error(err))
		sess.replyError(str, err)
		return
	} else if err != nil {
		sess.log.Error("cannot load the agency's queues", zap.Error(err))
		sess.replyError(str, err)
		return
	}
	sess.mu.Lock()
	sess.ag = ag
	sess.mu.Unlock()
	if err := wire.WriteFrame(str, wire.TSubscribed, wire.Subscribed{Agency: sess.id.Agency}); err != nil {
		return
	}
	sess.log.Info("subscribed", zap.Bool("inbox", sub.Inbox), zap.Bool("receipts", sub.Receipts))
	release()
	go sess.watchAcks()
	// The client ends the subscription by closing its side of the stream.
	go func() {
		io.Copy(io.Discard, io.LimitReader(str, 1<<10))
		sess.conn.CloseWithError(0, "subscription ended")
	}()
	sess.pump(str, sub)
}

// pump hands out items to this session until the connection ends.
func (sess *session) pump(notices io.Writer, sub wire.Subscribe) {
	window := sess.s.cfg.Window
	clearance := sess.id.Clearance
	ag := sess.ag.sched
	drainedSent := false
	for {
		handed := false
		inboxEmpty, receiptsEmpty := true, true
		if sub.Inbox && !sess.ag.held.Load() {
			for {
				it, res, err := ag.Next(clearance, func(p telegram.Precedence) int {
					return sess.inflightOf(p.Rank())
				}, window)
				if err != nil {
					sess.log.Error("cannot read the queue", zap.Error(err))
				}
				if res != schedule.Got {
					inboxEmpty = res == schedule.Empty
					break
				}
				if !sess.send(it.Prec.Rank(), it) {
					return
				}
				handed = true
			}
		}
		if sub.Receipts {
			receiptsEmpty = false
			for sess.inflightOf(receiptRank) < window {
				it, ok, err := ag.NextReceipt()
				if err != nil {
					sess.log.Error("cannot read the receipt queue", zap.Error(err))
				}
				if !ok {
					receiptsEmpty = err == nil
					break
				}
				if !sess.send(receiptRank, it) {
					return
				}
				handed = true
			}
		}
		if handed {
			drainedSent = false
		}
		if !drainedSent && inboxEmpty && receiptsEmpty && sess.totalInflight() == 0 {
			if err := wire.WriteFrame(notices, wire.TDrained, wire.Drained{At: time.Now().UTC()}); err != nil {
				return
			}
			drainedSent = true
		}
		select {
		case <-sess.wake:
		case <-sess.ctx.Done():
			return
		}
	}
}

func (sess *session) inflightOf(rank int) int {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.inflight[rank]
}

func (sess *session) totalInflight() int {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	n := 0
	for _, v := range sess.inflight {
		n += v
	}
	return n
}

// send queues it on its stream, opening the stream on first use.
func (sess *session) send(rank int, it schedule.Item) bool {
	sess.mu.Lock()
	ds := sess.streams[rank]
	sess.mu.Unlock()
	if ds == nil {
		str, err := sess.conn.OpenStreamSync(sess.ctx)
		if err != nil {
			sess.log.Debug("cannot open a delivery stream", zap.Error(err))
			sess.ag.sched.Return([]schedule.Item{it})
			return false
		}
		urgency := int8(rank)
		if rank == receiptRank {
			urgency = 0
		}
		str.SetPriority(urgency, false)
		ds = &dstream{str: str, items: make(chan schedule.Item, sess.s.cfg.Window)}
		sess.mu.Lock()
		sess.streams[rank] = ds
		sess.mu.Unlock()
		go sess.writeLoop(rank, ds)
		go sess.ackLoop(rank, ds)
	}
	sess.mu.Lock()
	sess.nextTag++
	tag := sess.nextTag
	sess.inflight[rank]++
	it.Tag = tag
	sess.tags[tag] = it
	sess.mu.Unlock()
	ds.items <- it
	return true
}

// writeLoop writes deliveries on one stream, body streamed from the store
// a chunk at a time.
func (sess *session) writeLoop(rank int, ds *dstream) {
	w := bufio.NewWriterSize(ds.str, 64<<10)
	for {
		var it schedule.Item
		select {
		case it = <-ds.items:
		case <-sess.ctx.Done():
			return
		}
		err := sess.writeItem(w, rank, it)
		// Whatever became of this item (written, withdrawn, quarantined),
		// what is buffered goes out once nothing more is queued.
		if err == nil && len(ds.items) == 0 {
			err = w.Flush()
		}
		if err != nil {
			sess.log.Info("delivery stream failed", zap.Error(err))
			sess.conn.CloseWithError(codeProtocol, "delivery stream failed")
			return
		}
	}
}

// writeItem writes one hand-out to w. An item that must not go out is
// skipped: withdrawn (see writeTelegram), or quarantined when its records
// fail their integrity check (the store is damaged there; the rest go
// on). Only an error that ends the stream is returned.
func (sess *session) writeItem(w io.Writer, rank int, it schedule.Item) error {
	var err error
	if rank == receiptRank {
		err = wire.WriteFrame(w, wire.TReceipt, wire.ReceiptFrame{Tag: it.Tag, Receipt: it.Receipt})
	} else {
		err = sess.writeTelegram(w, rank, it)
	}
	switch {
	case err == nil:
		sess.mu.Lock()
		sess.sent[it.Tag] = time.Now()
		sess.mu.Unlock()
		return nil
	case errors.Is(err, errWithdrawn):
		return nil
	case fault.Is(fault.Integrity, err) && rank != receiptRank:
		sess.quarantine(rank, it, err)
		return nil
	}
	return err
}

// errWithdrawn says a hand-out was not written: the telegram was expired,
// parked, held or already settled, and its slot released.
var errWithdrawn = errors.New("withdrawn")

// writeTelegram writes one delivery, unless the telegram must not go out:
// past its latest delivery time (withdrawn, sender told "expired"), out of
// attempts (parked for an operator, sender told "parked"), or settled
// meanwhile. Every hand-out that is written counts as an attempt; a
// telegram handed out before is marked as a possible duplicate.
func (sess *session) writeTelegram(w io.Writer, rank int, it schedule.Item) error {
	st := sess.s.store
	agency := sess.id.Agency
	if it.Dup {
		// Handed out before: its attempt count must be complete before
		// the count decides whether it goes out again. (Here, not where
		// the session's items are returned: a stream writer may still
		// count an attempt after that. Under load the flush rides the
		// next group commit.)
		if err := st.FlushAttempts(); err != nil {
			return err
		}
	}
	h, cs, err := st.ForDelivery(it.ID, agency)
	if err != nil {
		return err
	}
	decision, dup := custody.Offer(cs, sess.s.expired(h), it.Suspect, it.Dup, sess.s.policy())
	switch decision {
	case custody.Skip:
		// Settled, or held by an operator between the hand-out and now
		// (the hold took it out of the queue; the scheduler is told just
		// after the hold's commit).
		sess.release(rank, it)
		return errWithdrawn
	case custody.Withdraw:
		return sess.withdraw(rank, it, store.ReasonExpired)
	case custody.ParkIt:
		sess.log.Warn("telegram parked after failed attempts", zap.Stringer("id", it.ID), zap.Int("attempts", cs.Attempts))
		return sess.withdraw(rank, it, store.ReasonParked)
	}
	// The first chunk is read and checked before anything is written, so
	// a damaged telegram of up to one chunk never touches the stream.
	body := st.Body(h)
	first, err := body.Next()
	if err != nil && err != io.EOF {
		return err
	}
	st.Attempt(h, agency, sess.id.String(), it.Suspect)
	if err := wire.WriteFrame(w, wire.TDeliver, wire.Deliver{Tag: it.Tag, Header: h, PossibleDuplicate: dup}); err != nil {
		return err
	}
	for chunk := first; chunk != nil; {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		if chunk, err = body.Next(); err == io.EOF {
			break
		} else if fault.Is(fault.Integrity, err) {
			// The frame is out and the body cannot follow: quarantine the
			// telegram, then let the stream fail (the terminal reconnects).
			sess.quarantine(rank, it, err)
			return fault.E("deliver", fault.Internal, "body failed its integrity check mid-delivery", err)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// withdraw takes a handed-out telegram out of this agency's queue for
// reason and releases its slot.
func (sess *session) withdraw(rank int, it schedule.Item, reason string) error {
	ws, err := sess.s.store.Withdraw(it.ID, reason, sess.id.Agency, nil)
	if err != nil {
		return err
	}
	sess.s.ex.dropped(it.ID, reason, ws)
	sess.release(rank, it)
	return errWithdrawn
}

// quarantine handles a telegram whose stored records fail their integrity
// check: it is never delivered; its queue entry goes to the parked list for
// an operator (to restore from backup), the event is logged and audited,
// and the session goes on with the rest.
func (sess *session) quarantine(rank int, it schedule.Item, cause error) {
	sess.log.Error("telegram failed its integrity check; not delivered, parked for an operator",
		zap.Stringer("id", it.ID), zap.Error(cause))
	q := store.SubQueue{Agency: sess.id.Agency, Prec: it.Prec, Class: it.Class}
	if err := sess.s.store.Quarantine(q, it.Seq, it.ID, cause.Error()); err != nil {
		sess.log.Error("cannot quarantine the telegram", zap.Stringer("id", it.ID), zap.Error(err))
		return // left in flight: it goes back to the queue when the session ends
	}
	sess.release(rank, it)
}

// release frees the window slot of a hand-out that is settled
// (acknowledged or withdrawn) and wakes the pump.
func (sess *session) release(rank int, it schedule.Item) {
	sess.ag.sched.Acked(it)
	sess.mu.Lock()
	if _, ok := sess.tags[it.Tag]; ok {
		delete(sess.tags, it.Tag)
		delete(sess.sent, it.Tag)
		sess.inflight[rank]--
	}
	sess.mu.Unlock()
	sess.poke()
}

// watchAcks closes the connection when a delivery written to it goes
// unacknowledged for longer than the ack timeout. Everything in flight
// then returns to the queue, counted as a failed attempt, and goes out
// again, flagged as a possible duplicate, when a terminal is back.
func (sess *session) watchAcks() {
	timeout := sess.s.cfg.AckTimeout
	t := time.NewTicker(max(timeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-sess.ctx.Done():
			return
		case now := <-t.C:
			sess.mu.Lock()
			var late int
			for _, at := range sess.sent {
				if now.Sub(at) > timeout {
					late++
				}
			}
			sess.mu.Unlock()
			if late > 0 {
				sess.log.Warn("deliveries not acknowledged in time; closing the session", zap.Int("late", late),
					zap.Duration("ack_timeout", timeout))
				sess.conn.CloseWithError(codeAckTimeout, "deliveries not acknowledged in time")
				return
			}
		}
	}
}

// ackLoop reads acknowledgements from one delivery stream.
func (sess *session) ackLoop(rank int, ds *dstream) {
	for {
		var ack wire.Ack
		if err := wire.ReadExpect(ds.str, sess.s.cfg.MaxFrame, wire.TAck, &ack); err != nil {
			if !errors.Is(err, io.EOF) && sess.ctx.Err() == nil && !isClosed(err) {
				sess.log.Info("bad acknowledgement", zap.Error(err))
				sess.conn.CloseWithError(codeProtocol, "bad acknowledgement: "+err.Error())
			}
			return
		}
		sess.mu.Lock()
		it, ok := sess.tags[ack.Tag]
		sess.mu.Unlock()
		if !ok {
			sess.s.security(sess.id, fmt.Sprintf("acknowledgement for a delivery never made (tag %d); connection closed", ack.Tag))
			sess.conn.CloseWithError(codeProtocol, "acknowledgement for an unknown delivery")
			return
		}
		go sess.commitAck(rank, it)
	}
}

// commitAck makes an acknowledgement durable, then frees the window slot.
func (sess *session) commitAck(rank int, it schedule.Item) {
	ag := sess.ag.sched
	head := ag.HeadAfterAck(it)
	var err error
	if rank == receiptRank {
		_, err = sess.s.store.AckReceipt(sess.id.Agency, it.Seq, sess.id.String(), head)
	} else {
		q := store.SubQueue{Agency: sess.id.Agency, Prec: it.Prec, Class: it.Class}
		var done bool
		done, err = sess.s.store.Ack(store.Ack{Queue: q, Seq: it.Seq, ID: it.ID, Terminal: sess.id.String(), Head: head})
		if err == nil && done {
			sess.log.Info("telegram delivered", zap.Stringer("id", it.ID), zap.Stringer("precedence", it.Prec))
			sess.s.stats.delivered(it.Prec, time.Since(it.ID.Time()))
		}
	}
	if err != nil {
		// Not durable: leave it in flight; it goes back to the queue when
		// the session ends.
		sess.log.Error("acknowledgement not recorded", zap.Error(err))
		return
	}
	sess.release(rank, it)
}

// close returns everything handed out but unacknowledged to the queues
// and leaves the agency.
func (sess *session) close() {
	sess.mu.Lock()
	ag := sess.ag
	var back []schedule.Item
	for _, it := range sess.tags {
		back = append(back, it)
	}
	sess.tags = map[uint64]schedule.Item{}
	sess.sent = map[uint64]time.Time{}
	sess.mu.Unlock()
	if ag == nil {
		return
	}
	ag.sched.Return(back)
	sess.s.ex.detach(sess, ag)
	// Other sessions of the agency may now take what came back.
	sess.s.ex.mu.Lock()
	for other := range ag.sessions {
		other.poke()
	}
	sess.s.ex.mu.Unlock()
}

// isClosed reports whether err only says the connection or stream ended.
func isClosed(err error) bool {
	var ae *quic.ApplicationError
	var se *quic.StreamError
	var ie *quic.IdleTimeoutError
	return errors.As(err, &ae) || errors.As(err, &se) || errors.As(err, &ie)
}

// policy is the custody policy of the switch's configuration.
func (s *Server) policy() custody.Policy { return custody.Policy{MaxAttempts: s.cfg.MaxAttempts} }
