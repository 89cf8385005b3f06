package client

import (
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Telegram is what a terminal files.
type Telegram struct {
	To             []telegram.Address
	Info           []telegram.Address
	Precedence     telegram.Precedence // default ROUTINE
	Classification telegram.Classification
	Subject        string
	// Ref is the sender's own reference: filing again with the same Ref
	// returns the first filing's ID and files nothing new.
	Ref  string
	Body []byte
	// ExpiresAt, if set, is the latest delivery time: addressees that do
	// not have the telegram by then never get it, and the sender receives
	// NOT_DELIVERED, reason expired.
	ExpiresAt time.Time
	// DeliverAt, if set, defers delivery: the switch takes custody at once
	// and queues the telegram at that time.
	DeliverAt time.Time
	// Plain files the telegram unsealed even though this terminal holds
	// its agency's keys (only below SECRET, where the site allows it).
	Plain bool

	sealed bool // Body is the envelope (e2e.go)
}

// Filed is the switch's answer to one filing.
type Filed struct {
	ID        telegram.ID
	Duplicate bool  // Ref matched an earlier filing; ID is that filing's
	Err       error // the filing was refused
	// Minimize: accepted, and deferred under this MINIMIZE declaration
	// until it is lifted or ends.
	Minimize uint64
	// Sealed: it was filed sealed and signed end to end.
	Sealed bool
}

// Send files one telegram and returns its ID once the switch has stored it
// durably (ACCEPTED).
func (c *Client) Send(ctx context.Context, t Telegram) (Filed, error) {
	res, err := c.SendBatch(ctx, []Telegram{t})
	if err != nil {
		return Filed{}, err
	}
	return res[0], res[0].Err
}

// SendBatch files several telegrams on one stream. The error is for the
// request as a whole; each Filed carries its own outcome. Filings the
// switch refuses with a retry-after hint (it is saturated, or the agency
// is over its filing rate) are filed again after the hint, backing off
// (doubling, with jitter, up to maxBackoff) for up to RetryFor; what is
// still refused then is returned with its refusal. A filing refused that
// way was not filed, so filing it again never duplicates it.
func (c *Client) SendBatch(ctx context.Context, ts []Telegram) ([]Filed, error) {
	retryFor := c.RetryFor
	if retryFor == 0 {
		retryFor = DefaultRetryFor
	}
	giveUp := time.Now().Add(retryFor)
	out := make([]Filed, len(ts))
	pending := make([]int, len(ts)) // indices of ts still to file
	for i := range pending {
		pending[i] = i
	}
	ts, err := c.seal(ctx, ts)
	if err != nil {
		return nil, err
	}
	var backoff time.Duration
	for round := 0; ; round++ {
		sub := make([]Telegram, len(pending))
		for k, i := range pending {
			sub[k] = ts[i]
		}
		res, err := c.sendOnce(ctx, sub)
		var again []int
		var hint time.Duration
		if err != nil {
			if hint = fault.RetryAfter(err); hint == 0 && round == 0 {
				return nil, err
			}
			for _, i := range pending {
				out[i] = Filed{Err: err}
			}
			if hint > 0 {
				again = pending
			}
		} else {
			for k, i := range pending {
				out[i] = res[k]
				out[i].Sealed = ts[i].sealed
				if h := fault.RetryAfter(res[k].Err); h > 0 {
					again, hint = append(again, i), max(hint, h)
				}
			}
		}
		if len(again) == 0 {
			return out, nil
		}
		backoff = min(max(hint, 2*backoff), maxBackoff)
		wait := backoff/2 + rand.N(backoff) // jitter: senders refused together do not return together
		if retryFor < 0 || time.Now().Add(wait).After(giveUp) || !sleep(ctx, wait) {
			if err != nil && !slices.ContainsFunc(out, func(f Filed) bool { return f.Err == nil }) {
				return nil, err // refused as a whole, every time
			}
			return out, nil
		}
		pending = again
	}
}

// maxBackoff bounds the wait between two retries of a refused filing.
const maxBackoff = 5 * time.Second

// sleep waits d, or less if ctx ends first (then it returns false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sendOnce files ts in one request.
func (c *Client) sendOnce(ctx context.Context, ts []Telegram) ([]Filed, error) {
	const op = "send"
	if len(ts) == 0 || len(ts) > wire.MaxBatch {
		return nil, fault.Errorf(op, fault.Invalid, "a batch holds 1 to %d telegrams", wire.MaxBatch)
	}
	req := wire.FileRequest{Filings: make([]wire.Filing, len(ts))}
	for i, t := range ts {
		p := t.Precedence
		if p == 0 {
			p = telegram.Routine
		}
		cl := t.Classification
		if cl == 0 {
			cl = telegram.Unclassified
		}
		req.Filings[i] = wire.Filing{To: t.To, Info: t.Info, Precedence: p, Classification: cl,
			Subject: t.Subject, Ref: t.Ref, BodyLen: int64(len(t.Body)), ExpiresAt: t.ExpiresAt, DeliverAt: t.DeliverAt}
	}
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, c.closeErr(err)
	}
	defer str.CancelRead(0)
	stop := context.AfterFunc(ctx, func() { str.CancelWrite(0); str.CancelRead(0) })
	defer stop()
	if err := wire.WriteFrame(str, wire.TFile, req); err != nil {
		return nil, c.closeErr(err)
	}
	for _, t := range ts {
		if _, err := str.Write(t.Body); err != nil {
			return nil, c.readError(str, err)
		}
	}
	if err := str.Close(); err != nil {
		// The switch refused the request before reading all of it.
		return nil, c.readError(str, err)
	}
	var rep wire.FileReply
	if err := wire.ReadExpect(str, c.MaxFrame, wire.TFileReply, &rep); err != nil {
		return nil, c.closeErr(err)
	}
	if len(rep.Results) != len(ts) {
		return nil, fault.Errorf(op, fault.Internal, "the switch answered %d filings out of %d", len(rep.Results), len(ts))
	}
	out := make([]Filed, len(ts))
	for i, r := range rep.Results {
		out[i] = Filed{ID: r.ID, Duplicate: r.Duplicate, Minimize: r.Minimize}
		if r.Err != nil {
			out[i].Err = r.Err.Fault()
		}
	}
	return out, nil
}

// readError prefers the switch's own explanation (an Error frame) when a
// write failed because the switch stopped reading.
func (c *Client) readError(str io.Reader, werr error) error {
	var e wire.Error
	t, payload, err := wire.ReadFrame(str, c.MaxFrame)
	if err == nil && t == wire.TError && wire.Decode(t, payload, &e) == nil {
		return e.Fault()
	}
	return c.closeErr(werr)
}
