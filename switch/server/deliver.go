package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/switchboard"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// Delivery on the wire: a subscribed session has a seat at the
// switchboard, which decides what goes out next and what a write or an
// acknowledgement does to custody. This file opens one stream per
// precedence (and one for delivery reports), writes each hand-out on its
// stream and reads the acknowledgements back.

// dstream is one delivery stream: a precedence's, or the receipts'.
type dstream struct {
	rank  int // the precedence's rank, or switchboard.ReceiptRank
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
	if l := sess.s.links; l != nil && l.elsewhere(sess.id.Agency) {
		// Its copies wait here only to be handed to the next switch.
		sess.replyError(str, fault.Errorf("subscribe", fault.Permission,
			"%s is served by another switch (this one, %s, relays it via %s): connect to that switch to receive", sess.id.Agency, l.self, l.routes().via(sess.id.Agency, telegram.Flash)))
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
	seat, err := sess.s.board.Attach(sess.id, sub.Inbox, sub.Receipts, sess.poke)
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
	sess.seat = seat
	sess.mu.Unlock()
	if err := wire.WriteFrame(str, wire.TSubscribed, wire.Subscribed{Agency: sess.id.Agency}); err != nil {
		return
	}
	sess.log.Info("subscribed", zap.Bool("inbox", sub.Inbox), zap.Bool("receipts", sub.Receipts))
	release()
	go sess.watchAcks(seat)
	// The client ends the subscription by closing its side of the stream:
	// nothing more is handed out, and the pump closes the connection once
	// what is in flight is acknowledged (or the acknowledgement timeout
	// closes it).
	go func() {
		io.Copy(io.Discard, io.LimitReader(str, 1<<10))
		seat.Stop()
		sess.poke()
	}()
	sess.pump(str, seat)
}

// subscriptionEnded is the message of the connection's close once the
// terminal ended its subscription and acknowledged what it held.
const subscriptionEnded = "subscription ended"

// pump hands out items to this session until the connection ends, and
// tells the terminal when nothing is left for it.
func (sess *session) pump(notices io.Writer, seat *switchboard.Seat) {
	drainedSent := false
	for {
		handed := false
		inboxEmpty, receiptsEmpty := true, true
		for {
			it, res, err := seat.NextTelegram()
			if err != nil {
				sess.log.Error("cannot read the queue", zap.Error(err))
			}
			if res != switchboard.Got {
				inboxEmpty = res == switchboard.Empty
				break
			}
			if !sess.send(seat, it) {
				return
			}
			handed = true
		}
		for {
			it, ok, full, err := seat.NextReceipt()
			if err != nil {
				sess.log.Error("cannot read the receipt queue", zap.Error(err))
			}
			if !ok {
				receiptsEmpty = err == nil && !full
				break
			}
			if !sess.send(seat, it) {
				return
			}
			handed = true
		}
		if handed {
			drainedSent = false
		}
		if seat.Stopped() && seat.InFlight() == 0 {
			sess.conn.CloseWithError(0, subscriptionEnded)
			return
		}
		if !drainedSent && inboxEmpty && receiptsEmpty && seat.InFlight() == 0 {
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

// send queues a hand-out on its stream, opening the stream on first use.
func (sess *session) send(seat *switchboard.Seat, it schedule.Item) bool {
	rank := switchboard.Rank(it)
	sess.mu.Lock()
	ds := sess.streams[rank]
	sess.mu.Unlock()
	if ds == nil {
		str, err := sess.conn.OpenStreamSync(sess.ctx)
		if err != nil {
			sess.log.Debug("cannot open a delivery stream", zap.Error(err))
			seat.Return(it)
			return false
		}
		urgency := int8(rank)
		if rank == switchboard.ReceiptRank {
			urgency = 0
		}
		str.SetPriority(urgency, false)
		ds = &dstream{rank: rank, str: str, items: make(chan schedule.Item, sess.s.cfg.Window)}
		sess.mu.Lock()
		sess.streams[rank] = ds
		sess.mu.Unlock()
		go sess.writeLoop(seat, ds)
		go sess.ackLoop(seat, ds)
	}
	ds.items <- it
	return true
}

// writeLoop writes deliveries on one stream, body streamed from the store
// a chunk at a time.
func (sess *session) writeLoop(seat *switchboard.Seat, ds *dstream) {
	w := bufio.NewWriterSize(ds.str, 64<<10)
	for {
		var it schedule.Item
		select {
		case it = <-ds.items:
		case <-sess.ctx.Done():
			return
		}
		err := sess.writeItem(w, seat, it)
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
// skipped: withdrawn (see Seat.Prepare), or quarantined when its records
// fail their integrity check (the store is damaged there; the rest go
// on). Only an error that ends the stream is returned.
func (sess *session) writeItem(w io.Writer, seat *switchboard.Seat, it schedule.Item) error {
	var err error
	if it.Prec == 0 {
		err = wire.WriteFrame(w, wire.TReceipt, wire.ReceiptFrame{Tag: it.Tag, Receipt: it.Receipt})
	} else {
		err = sess.writeTelegram(w, seat, it)
	}
	switch {
	case err == nil:
		seat.Written(it.Tag)
		return nil
	case errors.Is(err, switchboard.ErrWithdrawn):
		return nil
	case fault.Is(fault.Integrity, err) && it.Prec != 0:
		seat.Quarantine(it, err)
		return nil
	}
	return err
}

// writeTelegram writes one delivery the seat cleared: the frame, then the
// body a chunk at a time.
func (sess *session) writeTelegram(w io.Writer, seat *switchboard.Seat, it schedule.Item) error {
	d, err := seat.Prepare(it)
	if err != nil {
		return err
	}
	if err := wire.WriteFrame(w, wire.TDeliver, wire.Deliver{Tag: it.Tag, Header: d.Header, PossibleDuplicate: d.PossibleDuplicate}); err != nil {
		return err
	}
	for {
		chunk, err := d.Next()
		if err == io.EOF {
			return nil
		} else if fault.Is(fault.Integrity, err) {
			// The frame is out and the body cannot follow: quarantine the
			// telegram, then let the stream fail (the terminal reconnects).
			seat.Quarantine(it, err)
			return fault.E("deliver", fault.Internal, "body failed its integrity check mid-delivery", err)
		} else if err != nil {
			return err
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
}

// watchAcks closes the connection when a delivery written to it goes
// unacknowledged for longer than the ack timeout. Everything in flight
// then returns to the queue, counted as a failed attempt, and goes out
// again, flagged as a possible duplicate, when a terminal is back.
func (sess *session) watchAcks(seat *switchboard.Seat) {
	timeout := sess.s.cfg.AckTimeout
	t := time.NewTicker(max(timeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-sess.ctx.Done():
			return
		case now := <-t.C:
			if late := seat.Late(now); late > 0 {
				sess.log.Warn("deliveries not acknowledged in time; closing the session", zap.Int("late", late),
					zap.Duration("ack_timeout", timeout))
				sess.conn.CloseWithError(codeAckTimeout, "deliveries not acknowledged in time")
				return
			}
		}
	}
}

// ackLoop reads acknowledgements from one delivery stream.
func (sess *session) ackLoop(seat *switchboard.Seat, ds *dstream) {
	for {
		var ack wire.Ack
		t, payload, err := wire.ReadFrame(ds.str, sess.s.cfg.MaxFrame)
		if err == nil {
			switch t {
			case wire.TAck:
				err = wire.Decode(t, payload, &ack)
			case wire.TReject:
				if err = sess.reject(seat, ds, payload); err == nil {
					continue
				}
			default:
				err = fmt.Errorf("unexpected %s frame on a delivery stream", t)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && sess.ctx.Err() == nil && !isClosed(err) {
				sess.log.Info("bad acknowledgement", zap.Error(err))
				sess.conn.CloseWithError(codeProtocol, "bad acknowledgement: "+err.Error())
			}
			return
		}
		if len(ack.More) >= wire.MaxAcksPerFrame {
			sess.log.Info("bad acknowledgement", zap.Int("tags", len(ack.More)+1))
			sess.conn.CloseWithError(codeProtocol, fmt.Sprintf("bad acknowledgement: more than %d tags in one frame", wire.MaxAcksPerFrame))
			return
		}
		if err := seat.AckAll(append([]uint64{ack.Tag}, ack.More...), ds.rank); err != nil {
			sess.s.security(sess.id, fmt.Sprintf("%v; connection closed", err))
			sess.conn.CloseWithError(codeProtocol, "acknowledgement for an unknown delivery")
			return
		}
	}
}

// close returns everything handed out but unacknowledged to the queues
// and leaves the switchboard.
func (sess *session) close() {
	sess.mu.Lock()
	seat := sess.seat
	sess.mu.Unlock()
	if seat != nil {
		seat.Close()
	}
}

// isClosed reports whether err only says the connection or stream ended.
func isClosed(err error) bool {
	var ae *quic.ApplicationError
	var se *quic.StreamError
	var ie *quic.IdleTimeoutError
	return errors.As(err, &ae) || errors.As(err, &se) || errors.As(err, &ie)
}
