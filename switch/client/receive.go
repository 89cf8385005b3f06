package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/dienbao/dienbao/envelope"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// Delivery is a telegram handed to this terminal.
type Delivery struct {
	Header telegram.Header
	Body   []byte
	// PossibleDuplicate: the switch sent this before without seeing an
	// acknowledgement. Store by ID and drop it if already stored.
	PossibleDuplicate bool
	// Opened is set for a telegram sealed end to end, verified and
	// opened (Header.Subject and Body are then the opened ones): the
	// signed form to keep beside it.
	Opened *envelope.Opened
}

// Handler stores what the switch delivers. Both methods must store
// durably before returning nil; returning an error withholds the
// acknowledgement (the switch will deliver again later) and ends Receive.
// Methods are called concurrently.
type Handler interface {
	Telegram(d Delivery) error
	Receipt(r telegram.Receipt) error
}

// ReceiveOptions choose what to receive.
type ReceiveOptions struct {
	Inbox    bool // this agency's telegrams
	Receipts bool // delivery reports for telegrams this agency filed
	// Follow keeps receiving until ctx ends; otherwise Receive returns once
	// the switch says nothing is left.
	Follow bool
}

// Receive subscribes and hands deliveries to h until nothing is left (or,
// with Follow, until ctx ends). It consumes the connection: the client is
// closed when it returns. On a replicated switch, with Follow, it finds
// the new leader when the connection ends, and subscribes again.
func (c *Client) Receive(ctx context.Context, opts ReceiveOptions, h Handler) error {
	if !c.group || !opts.Follow {
		return c.receiveOnce(ctx, opts, h)
	}
	for {
		hf := &watchHandler{Handler: h}
		err := c.receiveOnce(ctx, opts, hf)
		if ctx.Err() != nil {
			return nil
		}
		if hf.failed() || fault.Is(fault.Permission, err) || fault.Is(fault.Invalid, err) {
			return err
		}
		if err := c.redial(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// watchHandler remembers whether the handler failed (Receive ends then,
// instead of connecting again).
type watchHandler struct {
	Handler
	mu  sync.Mutex
	bad bool
}

func (w *watchHandler) Telegram(d Delivery) error { return w.note(w.Handler.Telegram(d)) }
func (w *watchHandler) Receipt(r telegram.Receipt) error {
	return w.note(w.Handler.Receipt(r))
}

func (w *watchHandler) note(err error) error {
	var ref *envelope.Refusal
	if err != nil && !errors.As(err, &ref) {
		w.mu.Lock()
		w.bad = true
		w.mu.Unlock()
	}
	return err
}

func (w *watchHandler) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad
}

// receiveOnce is Receive on this connection.
func (c *Client) receiveOnce(ctx context.Context, opts ReceiveOptions, h Handler) error {
	var wg sync.WaitGroup
	// Deferred in this order so that the connection is closed first: the
	// delivery-stream readers end only when it is.
	defer wg.Wait()
	defer c.Close()
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return c.closeErr(err)
	}
	if err := wire.WriteFrame(str, wire.TSubscribe, wire.Subscribe{Inbox: opts.Inbox, Receipts: opts.Receipts}); err != nil {
		return c.closeErr(err)
	}
	var sub wire.Subscribed
	if err := wire.ReadExpect(str, c.MaxFrame, wire.TSubscribed, &sub); err != nil {
		return c.closeErr(err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Deliveries arrive on streams the switch opens.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ds, err := c.conn.AcceptStream(ctx)
			if err != nil {
				cancel(err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.serveDeliveries(ctx, ds, h); err != nil {
					cancel(err)
				}
			}()
		}
	}()
	// Drained notices arrive on the subscribe stream.
	drained := make(chan struct{}, 1)
	go func() {
		for {
			var d wire.Drained
			if err := wire.ReadExpect(str, c.MaxFrame, wire.TDrained, &d); err != nil {
				cancel(err)
				return
			}
			select {
			case drained <- struct{}{}:
			default:
			}
		}
	}()
	// Without Follow, the first Drained ends the subscription: the switch
	// hands out nothing more and closes the connection once what it
	// handed out before (a telegram that arrived just then) is stored and
	// acknowledged, so nothing is cut off half received.
	ending := false
	for {
		select {
		case <-drained:
			if !opts.Follow && !ending {
				ending = true
				str.Close()
			}
		case <-ctx.Done():
			err := context.Cause(ctx)
			if ending && endedBySwitch(err) {
				return nil
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				if opts.Follow {
					return nil
				}
				return err
			}
			return c.closeErr(err)
		}
	}
}

// serveDeliveries reads one delivery stream: store, then acknowledge.
// What arrived together is acknowledged together: one Ack frame once
// nothing more is waiting to be read.
func (c *Client) serveDeliveries(ctx context.Context, ds *quic.Stream, h Handler) error {
	r := bufio.NewReaderSize(ds, 64<<10)
	var acks []uint64
	for {
		t, payload, err := wire.ReadFrame(r, c.MaxFrame)
		if err != nil {
			if errors.Is(err, io.EOF) && len(acks) > 0 {
				return wire.WriteFrame(ds, wire.TAck, wire.Ack{Tag: acks[0], More: acks[1:]})
			} else if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var tag uint64
		switch t {
		case wire.TDeliver:
			var d wire.Deliver
			if err := wire.Decode(t, payload, &d); err != nil {
				return err
			}
			if d.Header.BodyLen < 0 || d.Header.BodyLen > c.MaxBody {
				return fault.Errorf("receive", fault.TooLarge, "the switch announced a %d-byte body", d.Header.BodyLen)
			}
			body := make([]byte, d.Header.BodyLen)
			if _, err := io.ReadFull(r, body); err != nil {
				return err
			}
			dv := Delivery{Header: d.Header, Body: body, PossibleDuplicate: d.PossibleDuplicate}
			err := c.open(ctx, &dv)
			if err == nil {
				err = h.Telegram(dv)
			}
			var ref *envelope.Refusal
			if errors.As(err, &ref) {
				// Not valid: refused back, so the sender is told.
				if err := wire.WriteFrame(ds, wire.TReject, wire.Reject{Tag: d.Tag, Reason: ref.Reason, Detail: ref.Detail}); err != nil {
					return err
				}
				if c.OnReject != nil {
					c.OnReject(d.Header, ref)
				}
			} else if err != nil {
				return err
			} else {
				tag = d.Tag
			}
		case wire.TReceipt:
			var r wire.ReceiptFrame
			if err := wire.Decode(t, payload, &r); err != nil {
				return err
			}
			if err := h.Receipt(r.Receipt); err != nil {
				return err
			}
			tag = r.Tag
		default:
			return fault.Errorf("receive", fault.Invalid, "unexpected %s frame on a delivery stream", t)
		}
		if tag != 0 { // 0: refused, not acknowledged
			acks = append(acks, tag)
		}
		if len(acks) == 0 || r.Buffered() > 0 && len(acks) < wire.MaxAcksPerFrame {
			continue
		}
		if err := wire.WriteFrame(ds, wire.TAck, wire.Ack{Tag: acks[0], More: acks[1:]}); err != nil {
			return err
		}
		acks = acks[:0]
	}
}

// endedBySwitch reports whether err is the switch closing the connection
// without an error, as it does once a subscription ended and everything
// handed out was acknowledged.
func endedBySwitch(err error) bool {
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && ae.Remote && ae.ErrorCode == 0
}
