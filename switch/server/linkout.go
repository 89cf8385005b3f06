package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	routing "github.com/dienbao/dienbao/switch/route"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/switchboard"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// The sending half of a link. Towards its peer a switch behaves as a
// terminal of every agency the peer is the next hop for: it takes a seat
// at the switchboard for each (the same windows, precedence order,
// custody checks and redelivery flagged possible duplicate as for a
// terminal), and hands the telegrams and delivery reports over in
// batches, one channel per precedence and one for reports, each a
// request stream of its own, so that a FLASH never waits behind a
// routine body in flight. A hand-over is settled here (custody "relayed")
// only once the peer has answered that its commit is on disk.

// relayBatch bounds one hand-over batch: telegrams, and bytes of bodies
// (a single larger body goes alone).
const (
	relayBatch      = 256
	relayBatchBytes = 1 << 20
)

// relayWindow is how many hand-overs of one precedence a link holds in
// flight for one agency: two batches, so that the next is ready while
// the last one's acknowledgements are being committed.
const relayWindow = 2 * relayBatch

// A channel takes no more hand-outs while this many, or this many bytes
// of bodies, wait to be sent on it (besides the one being sent): what a
// link holds in memory is bounded whatever the backlog, and a channel
// that is full never keeps another from taking more.
const (
	channelItems = relayWindow
	channelBytes = 4 << 20
)

// linkRetry is how long a link waits before dialling again after a
// failure.
const linkRetry = time.Second

// run keeps the link up until ctx ends (or holds it while an operator
// does).
func (lk *link) run(ctx context.Context) {
	for ctx.Err() == nil {
		if !lk.isHeld() {
			err := lk.session(ctx)
			if ctx.Err() != nil {
				break
			}
			lk.setDown(err)
			lk.log.Debug("link session ended", zap.Error(err))
		}
		t := time.NewTimer(linkRetry)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-lk.reseat:
		}
		t.Stop()
	}
	lk.setDown(errors.New("the switch is stopping"))
}

// session dials the peer, opens the link and hands over until the
// connection fails, the link is held or ctx ends.
func (lk *link) session(ctx context.Context) error {
	s := lk.l.s
	addr, err := net.ResolveUDPAddr("udp", lk.peer.Address)
	if err != nil {
		return fault.E("link", fault.Unavailable, "cannot resolve "+lk.peer.Name+"'s address "+lk.peer.Address, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := s.tr.Dial(dctx, addr, lk.tlsConfig(), &quic.Config{
		HandshakeIdleTimeout:  5 * time.Second,
		MaxIdleTimeout:        10 * time.Second,
		KeepAlivePeriod:       2 * time.Second,
		MaxIncomingStreams:    16,
		MaxIncomingUniStreams: -1,
	})
	cancel()
	if err != nil {
		return fault.E("link", fault.Unavailable, "cannot reach "+lk.peer.Name+" at "+lk.peer.Address, err)
	}
	defer conn.CloseWithError(0, "link closed")
	last, err := lk.open(ctx, conn)
	if err != nil {
		return err
	}
	out := &outbound{lk: lk, conn: conn, next: last, seats: map[telegram.Address]*switchboard.Seat{}}
	for ch := range out.signal {
		out.signal[ch] = make(chan struct{}, 1)
	}
	lk.setUp()
	return out.serve(ctx)
}

// tlsConfig presents this switch's certificate and accepts only the
// peer's: a switch certificate of the network's CA, named as the peer.
func (lk *link) tlsConfig() *tls.Config {
	s := lk.l.s
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   wire.KeyExchanges,
		Certificates:       []tls.Certificate{s.cfg.Cert},
		NextProtos:         []string{wire.ALPN},
		InsecureSkipVerify: true, // checked below, against the CA, on the switch's clock
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the peer sent no certificate")
			}
			id, err := s.verifyChain(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, "the peer's certificate is not accepted")
			if err != nil {
				return err
			}
			if id.Role != certs.Switch || id.Name != lk.peer.Name {
				return fmt.Errorf("the peer at %s is %q (%s), not switch %s", lk.peer.Address, id.Name, id.Role, lk.peer.Name)
			}
			return nil
		},
	}
}

// open asks the peer for the last sequence number it committed from this
// switch on each channel: numbering goes on from there. A peer that has
// fewer than this switch saw acknowledged lost hand-overs it had taken
// (a restore from backup): that is logged and audited, never silent.
func (lk *link) open(ctx context.Context, conn *quic.Conn) ([wire.Channels]uint64, error) {
	var last [wire.Channels]uint64
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return last, err
	}
	defer str.Close()
	str.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteFrame(str, wire.TLinkOpen, wire.LinkOpen{From: lk.l.self}); err != nil {
		return last, err
	}
	var opened wire.LinkOpened
	if err := wire.ReadExpect(str, wire.DefaultMaxFrame, wire.TLinkOpened, &opened); err != nil {
		return last, fault.E("link", fault.Unavailable, "the link to "+lk.peer.Name+" was not opened", err)
	}
	seqs, err := lk.l.s.store.LinkSeq(lk.peer.Name)
	if err != nil {
		return last, err
	}
	for ch := range wire.Channels {
		if opened.Last[ch] < seqs.Out[ch] {
			reason := fmt.Sprintf("%s has committed up to %d on the %s channel, but acknowledged up to %d: it lost hand-overs it had taken (restored from a backup?)",
				lk.peer.Name, opened.Last[ch], store.ChannelName(ch), seqs.Out[ch])
			lk.log.Error("link sequence numbers went back", zap.String("reason", reason))
			if err := lk.l.s.store.Record(store.AuditEntry{Actor: lk.l.self, Event: store.AuditLink, Reason: reason}); err != nil {
				return last, err
			}
		}
	}
	return opened.Last, nil
}

// outbound is one connection's worth of hand-overs to the peer.
type outbound struct {
	lk   *link
	conn *quic.Conn
	next [wire.Channels]uint64 // the last sequence number used per channel

	mu     sync.Mutex
	seats  map[telegram.Address]*switchboard.Seat
	queued [wire.Channels][]handout
	bytes  [wire.Channels]int // of the bodies in queued
	signal [wire.Channels]chan struct{}
}

// open is the mask of the channels that may take more (bit r: the
// precedence of rank r; bit ReportChannel: reports), as Seat.NextIn takes
// it.
func (o *outbound) open() uint32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var mask uint32
	for ch := range wire.Channels {
		if len(o.queued[ch]) < channelItems && o.bytes[ch] < channelBytes {
			mask |= 1 << ch
		}
	}
	return mask
}

// handout is one item taken from a seat, ready to hand over.
type handout struct {
	seat *switchboard.Seat
	it   schedule.Item
	h    telegram.Header
	dup  bool
	body []byte
}

func (o *outbound) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, wire.Channels+1)
	var wg sync.WaitGroup
	for ch := range wire.Channels {
		wg.Go(func() {
			if err := o.sender(ctx, ch); err != nil {
				errc <- err
			}
		})
	}
	wg.Go(func() { o.cosignLoop(ctx) })
	defer func() {
		cancel()
		o.conn.CloseWithError(0, "link closed")
		wg.Wait()
		o.mu.Lock()
		for _, seat := range o.seats {
			seat.Close() // what was not acknowledged goes back, flagged
		}
		o.seats = nil
		o.mu.Unlock()
	}()
	// Seats are reviewed when a link or the register changes, and every
	// second (a diversion time may have passed); hand-outs are pulled
	// whenever a seat or a channel says something may be ready.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reseat := true
	for {
		if o.lk.isHeld() {
			return errors.New("held by an operator")
		}
		if reseat {
			if err := o.seat(); err != nil {
				return err
			}
		}
		if err := o.pull(); err != nil {
			return err
		}
		reseat = false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-o.conn.Context().Done():
			return context.Cause(o.conn.Context())
		case <-o.lk.wake:
		case <-o.lk.reseat:
			reseat = true
		case <-tick.C:
			reseat = true
		}
	}
}

// seat takes a seat for every agency whose next hop is this peer now,
// and gives up those whose next hop changed.
func (o *outbound) seat() error {
	l := o.lk.l
	agencies, err := l.s.store.RemoteAgencies()
	if err != nil {
		return err
	}
	rt := l.routes()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, a := range agencies {
		mask := rt.ranks(a, o.lk.peer.Name)
		seat, has := o.seats[a]
		switch {
		case mask != 0 && !has:
			who := certs.Identity{Name: "link to " + o.lk.peer.Name, Role: certs.Switch, Agency: a, Clearance: telegram.TopSecret}
			seat, err := l.s.board.Attach(who, true, true, o.lk.poke)
			if err != nil {
				o.lk.log.Warn("cannot seat an agency on the link", zap.Stringer("agency", a), zap.Error(err))
				continue
			}
			seat.SetRanks(mask)
			seat.SetWindow(relayWindow)
			o.seats[a] = seat
		case mask != 0:
			seat.SetRanks(mask)
		case has:
			seat.Close()
			delete(o.seats, a)
		}
	}
	return nil
}

// pull takes from every seat what its windows allow and queues it on its
// channel.
func (o *outbound) pull() error {
	o.mu.Lock()
	seats := make([]*switchboard.Seat, 0, len(o.seats))
	for _, s := range o.seats {
		seats = append(seats, s)
	}
	o.mu.Unlock()
	for _, seat := range seats {
		for {
			it, res, err := seat.NextIn(o.open())
			if err != nil {
				return err
			}
			if res != switchboard.Got {
				break
			}
			if err := o.prepare(seat, it); err != nil {
				return err
			}
		}
		for o.open()&(1<<wire.ReportChannel) != 0 {
			it, ok, _, err := seat.NextReceipt()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			o.queue(wire.ReportChannel, handout{seat: seat, it: it})
		}
	}
	return nil
}

// prepare clears a telegram for hand-over (custody's Offer, as for a
// terminal), reads its body and queues it; a telegram that would loop is
// not delivered, with "loop detected".
func (o *outbound) prepare(seat *switchboard.Seat, it schedule.Item) error {
	d, err := seat.Prepare(it)
	switch {
	case errors.Is(err, switchboard.ErrWithdrawn):
		return nil
	case fault.Is(fault.Integrity, err):
		seat.Quarantine(it, err)
		return nil
	case err != nil:
		return err
	}
	body := make([]byte, 0, d.Header.BodyLen)
	for {
		chunk, err := d.Next()
		if err == io.EOF {
			break
		}
		if fault.Is(fault.Integrity, err) {
			seat.Quarantine(it, err)
			return nil
		}
		if err != nil {
			return err
		}
		body = append(body, chunk...)
	}
	l := o.lk.l
	h := d.Header
	passed := l.passed(&h)
	if dec := l.decide(seat.Agency(), h.Precedence, passed); dec.Kind == routing.Loop || dec.Kind == routing.NoRoute {
		return seat.Refuse(it, dec.Reason)
	}
	if slices.Contains(passed, o.lk.peer.Name) {
		return seat.Refuse(it, fmt.Sprintf("loop detected: %s, the next hop towards %s, has already passed the telegram", o.lk.peer.Name, seat.Agency()))
	}
	if len(h.Trace) == 0 { // filed here: the trace starts with this switch
		h.Trace = []telegram.Hop{{Switch: l.self, At: h.FiledAt}}
	}
	o.queue(h.Precedence.Rank(), handout{seat: seat, it: it, h: h, dup: d.PossibleDuplicate, body: body})
	return nil
}

func (o *outbound) queue(ch int, ho handout) {
	o.mu.Lock()
	o.queued[ch] = append(o.queued[ch], ho)
	o.bytes[ch] += len(ho.body)
	o.mu.Unlock()
	select {
	case o.signal[ch] <- struct{}{}:
	default:
	}
}

// batch takes the next batch of channel ch.
func (o *outbound) batch(ch int) []handout {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queued[ch]
	n, bytes := 0, 0
	for n < len(q) && n < relayBatch && (n == 0 || bytes+len(q[n].body) <= relayBatchBytes) {
		bytes += len(q[n].body)
		n++
	}
	out := slices.Clone(q[:n])
	o.queued[ch] = q[n:]
	o.bytes[ch] -= bytes
	if n > 0 {
		o.lk.poke() // room on the channel: pull again
	}
	return out
}

// sender hands over channel ch's batches one at a time, each numbered on
// from the last: a batch is answered only once the peer's commit is on
// disk, so numbers are never out of order on a channel.
func (o *outbound) sender(ctx context.Context, ch int) error {
	for {
		b := o.batch(ch)
		if len(b) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-o.signal[ch]:
				continue
			}
		}
		for {
			err := o.handOver(ctx, ch, b)
			var busy *fault.Error
			if errors.As(err, &busy) && busy.RetryAfter > 0 {
				// The peer has no room for the bodies now (nothing was
				// taken, its numbers not used): the same batch again.
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(busy.RetryAfter):
				}
				continue
			}
			if err != nil {
				return err
			}
			break
		}
	}
}

// handOver sends one batch and settles what the peer answered.
func (o *outbound) handOver(ctx context.Context, ch int, b []handout) error {
	l := o.lk.l
	req := wire.RelayRequest{Channel: ch, Handovers: make([]wire.Handover, len(b))}
	total := 0
	for i, ho := range b {
		w := wire.Handover{Seq: o.next[ch] + 1 + uint64(i), Header: ho.h, PossibleDuplicate: ho.dup}
		if ch == wire.ReportChannel {
			r := ho.it.Receipt
			w.Report = &r
			w.Header = o.reportHeader(ho)
		} else {
			w.For = []telegram.Address{ho.seat.Agency()}
			w.Header.OverdueAt = time.Time{} // each switch keeps its own speed of service
			if w.Header.DeliverAt.After(l.s.clock.Now()) {
				// Handed out, so due here: a MINIMIZE's deferral mark
				// (lifted here) must not hold it at the next switch.
				w.Header.DeliverAt = time.Time{}
			}
		}
		req.Handovers[i] = w
		total += len(ho.body)
	}
	start := time.Now()
	str, err := o.conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer str.Close()
	urgency := int8(ch)
	if ch == wire.ReportChannel {
		urgency = 0
	}
	str.SetPriority(urgency, false)
	if err := writeBatch(str, req, b); err != nil {
		// The peer may have refused the batch before its bodies (no room
		// for them now): its answer says so.
		str.SetReadDeadline(time.Now().Add(2 * time.Second))
		var busy *fault.Error
		if rerr := wire.ReadExpect(str, wire.DefaultMaxFrame, wire.TRelayReply, &wire.RelayReply{}); errors.As(rerr, &busy) && busy.RetryAfter > 0 {
			return busy
		}
		return err
	}
	str.SetReadDeadline(time.Now().Add(l.s.cfg.AckTimeout))
	var reply wire.RelayReply
	if err := wire.ReadExpect(str, wire.DefaultMaxFrame, wire.TRelayReply, &reply); err != nil {
		var busy *fault.Error
		if errors.As(err, &busy) && busy.RetryAfter > 0 {
			return busy
		}
		return fault.E("link", fault.Unavailable, "hand-over to "+o.lk.peer.Name+" not answered", err)
	}
	if len(reply.Results) != len(b) {
		return fault.Errorf("link", fault.Invalid, "%s answered %d of %d hand-overs", o.lk.peer.Name, len(reply.Results), len(b))
	}
	o.next[ch] += uint64(len(b))
	o.lk.took(ch, o.next[ch], time.Since(start), total, len(b))
	for i, ho := range b {
		seq := req.Handovers[i].Seq
		rank := switchboard.Rank(ho.it)
		if e := reply.Results[i].Err; e != nil && ch != wire.ReportChannel {
			o.lk.log.Info("hand-over refused by the next switch", zap.Stringer("id", ho.it.ID), zap.String("reason", e.Msg))
			if err := ho.seat.Refuse(ho.it, e.Msg); err != nil {
				return err
			}
			continue
		} else if e != nil {
			o.lk.log.Warn("delivery report refused by the next switch; dropped", zap.Stringer("id", ho.it.Receipt.ID), zap.String("reason", e.Msg))
		}
		if err := ho.seat.AckRelayed([]uint64{ho.it.Tag}, rank, o.lk.peer.Name, []uint64{seq}); err != nil {
			return err
		}
	}
	return nil
}

// writeBatch writes a relay request and its bodies.
func writeBatch(w io.Writer, req wire.RelayRequest, b []handout) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := wire.WriteFrame(bw, wire.TRelay, req); err != nil {
		return err
	}
	for _, ho := range b {
		if _, err := bw.Write(ho.body); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// reportHeader is what a relayed report carries of its telegram: the ID,
// the sender (the seat's agency), precedence and classification (for the
// audit entries on the way).
func (o *outbound) reportHeader(ho handout) telegram.Header {
	h := telegram.Header{ID: ho.it.Receipt.ID, From: ho.seat.Agency(), Precedence: telegram.Routine, Classification: telegram.Unclassified}
	if full, err := o.lk.l.s.store.Header(ho.it.Receipt.ID); err == nil {
		h.Precedence, h.Classification = full.Precedence, full.Classification
	}
	return h
}

// took records a batch the peer took: the channel's last number, the
// round trip and the bytes.
func (lk *link) took(ch int, seq uint64, rtt time.Duration, bytes, n int) {
	lk.relayed.Add(uint64(n))
	lk.mu.Lock()
	defer lk.mu.Unlock()
	lk.sent[ch] = seq
	lk.rtt = rtt
	if s := rtt.Seconds(); s > 0 {
		lk.bytes = 0.8*lk.bytes + 0.2*float64(bytes)/s
	}
}
