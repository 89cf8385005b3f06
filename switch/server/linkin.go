package server

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	routing "github.com/dienbao/dienbao/switch/route"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// The receiving half of a link: a peer switch, authenticated by its
// switch certificate and named in the config's peers, opens the link and
// hands over telegrams and delivery reports. This switch takes custody
// (store.FileRelayedBatch: one commit, with the channel's sequence
// number) and only then answers; a copy it cannot take (no route, a
// loop, an addressee not in its directory) is refused with the reason,
// which the sending switch records as NOT_DELIVERED and reports back.

// peer is the configured peer this session is, or a denial.
func (sess *session) peer(str *quic.Stream, what string) (*link, bool) {
	lk, ok := sess.s.links.peerOf(sess.id.Name)
	if !ok {
		why := "this switch is not in a network"
		if sess.s.links != nil {
			why = fmt.Sprintf("its peers are %v", sess.s.links.names())
		}
		sess.deny(str, fault.Errorf(what, fault.Permission, "switch %q is not a peer of this switch (%s)", sess.id.Name, why))
		return nil, false
	}
	return lk, true
}

// handleLinkOpen answers the last sequence numbers committed from the
// peer, per channel.
func (sess *session) handleLinkOpen(str *quic.Stream, payload []byte) {
	var req wire.LinkOpen
	if err := wire.Decode(wire.TLinkOpen, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	lk, ok := sess.peer(str, "link_open")
	if !ok {
		return
	}
	seqs, err := sess.s.store.LinkSeq(lk.peer.Name)
	if err != nil {
		sess.replyError(str, err)
		return
	}
	sess.log.Info("link opened by peer", zap.String("peer", lk.peer.Name))
	wire.WriteFrame(str, wire.TLinkOpened, wire.LinkOpened{Name: sess.s.links.self, Last: seqs.In})
}

// handleRelay takes a batch of hand-overs.
func (sess *session) handleRelay(str *quic.Stream, payload []byte) {
	var req wire.RelayRequest
	if err := wire.Decode(wire.TRelay, payload, &req); err != nil {
		sess.replyError(str, err)
		str.CancelRead(streamProtocol)
		return
	}
	lk, ok := sess.peer(str, "relay")
	if !ok {
		str.CancelRead(streamProtocol)
		return
	}
	var total int64
	for _, h := range req.Handovers {
		total += h.Header.BodyLen
	}
	if total > maxBatchBytes+sess.s.limits.Load().MaxBody {
		sess.replyError(str, fault.Errorf("relay", fault.TooLarge, "a relay batch carries at most %d bytes of bodies", maxBatchBytes))
		str.CancelRead(streamTooLarge)
		return
	}
	// The bodies' bytes come out of the switch-wide budget, as a filing's
	// (FLASH from its reserve), before any is allocated.
	routine, flash := total, int64(0)
	if req.Channel == 0 {
		routine, flash = 0, total
	}
	if !sess.takeBodies(str, routine, flash, "relay", "the switch is receiving as many bodies as it may at once; retry") {
		return
	}
	defer sess.s.bodies.give(total)
	bodies := make([][]byte, len(req.Handovers))
	for i, h := range req.Handovers {
		bodies[i] = make([]byte, h.Header.BodyLen)
		if err := sess.readBody(str, bodies[i]); err != nil {
			sess.log.Info("relay body cut short", zap.Error(err))
			str.CancelRead(streamProtocol)
			return
		}
	}
	var results []wire.Taken
	var err error
	if req.Channel == wire.ReportChannel {
		results, err = sess.s.takeReports(lk, req.Handovers)
	} else {
		results, err = sess.s.takeTelegrams(lk, req.Handovers, bodies)
	}
	if err != nil {
		sess.log.Error("hand-over not taken", zap.Error(err))
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TRelayReply, wire.RelayReply{Results: results})
}

// takeTelegrams decides each hand-over's copy (routing, the directory)
// and takes custody of those it can in one commit.
func (s *Server) takeTelegrams(lk *link, hs []wire.Handover, bodies [][]byte) ([]wire.Taken, error) {
	l := s.links
	lim := s.limits.Load()
	rs := make([]*store.Relay, len(hs))
	now := s.clock.Now()
	for i, h := range hs {
		r := &store.Relay{Header: h.Header, Body: bodies[i], For: h.For, Peer: lk.peer.Name, Seq: h.Seq, Self: l.self}
		r.Refused = s.refuseCopy(&r.Header, h.For, lim.MaxBody)
		if r.Refused == "" {
			r.Refused = s.minimizeRelayed(&r.Header, now)
		}
		rs[i] = r
	}
	res, errs := s.store.FileRelayedBatch(rs)
	out := make([]wire.Taken, len(hs))
	for i, r := range rs {
		switch {
		case errs[i] != nil && fault.Is(fault.Invalid, errs[i]):
			e := wire.ErrorOf(errs[i])
			out[i].Err = &e
		case errs[i] != nil:
			return nil, errs[i]
		case r.Refused != "":
			e := wire.ErrorOf(fault.E("relay", fault.Invalid, r.Refused))
			out[i].Err = &e
		default:
			out[i].Held = res[i].Held
		}
		if res[i].Link != "" {
			lk.gaps.Add(1)
			s.log.Warn("link sequence", zap.String("peer", lk.peer.Name), zap.String("reason", res[i].Link))
		}
	}
	return out, nil
}

// refuseCopy is why this switch cannot take the copies for of a relayed
// telegram ("" if it can): each is served here and in the directory, or
// has a next hop; none loops.
func (s *Server) refuseCopy(h *telegram.Header, to []telegram.Address, maxBody int64) string {
	l := s.links
	if h.BodyLen > maxBody {
		return fmt.Sprintf("the body is %d bytes; %s takes at most %d", h.BodyLen, l.self, maxBody)
	}
	passed := h.Passed()
	for _, a := range to {
		d := l.decide(a, h.Precedence, passed)
		switch d.Kind {
		case routing.Local:
			if !s.directory().Has(a) {
				return fmt.Sprintf("unknown addressee %s: not in the directory of %s", a, l.self)
			}
			if err := s.directory().Addressable(a); err != nil {
				return err.Error()
			}
		case routing.Relay:
		default:
			return d.Reason
		}
	}
	return ""
}

// minimizeRelayed applies this switch's MINIMIZE declarations to a
// telegram relayed in, as to a filing here (by its sender and
// precedence): one that refuses is the copy's NOT_DELIVERED reason,
// which it returns; one that defers holds the copy here until it is
// lifted or ends (its delivery time becomes the declaration's mark).
func (s *Server) minimizeRelayed(h *telegram.Header, now time.Time) string {
	m, ok := s.minimized(h.From, h.Precedence, now)
	switch {
	case !ok:
		return ""
	case m.Defer:
		s.stats.minimized.WithLabelValues("deferred").Inc()
		h.DeliverAt = deferMark(m.Number)
		return ""
	}
	s.stats.minimized.WithLabelValues("refused").Inc()
	return fmt.Sprintf("not relayed by %s: %s", s.links.self, strings.TrimPrefix(m.Refusal(h.Precedence).Error(), "file: not filed: "))
}

// takeReports queues delivery reports for their senders (here, or
// further on), in one commit.
func (s *Server) takeReports(lk *link, hs []wire.Handover) ([]wire.Taken, error) {
	rs := make([]*store.Report, len(hs))
	for i, h := range hs {
		rs[i] = &store.Report{Receipt: *h.Report, Sender: h.Header.From, Precedence: h.Header.Precedence,
			Classification: h.Header.Classification, Peer: lk.peer.Name, Seq: h.Seq}
	}
	if err := s.store.FileReports(rs); err != nil {
		return nil, err
	}
	return make([]wire.Taken, len(hs)), nil
}

// handleLinks lists the links (tg links).
func (sess *session) handleLinks(str *quic.Stream, payload []byte) {
	var req wire.LinksRequest
	if err := wire.Decode(wire.TLinks, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	if sess.s.links == nil {
		wire.WriteFrame(str, wire.TLinksReply, wire.Links{})
		return
	}
	out, err := sess.s.links.report()
	if err != nil {
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TLinksReply, sess.linksInScope(out))
}

// linksInScope keeps the links a scoped operator may see.
func (sess *session) linksInScope(ls wire.Links) wire.Links {
	if sess.id.Scoped() {
		ls.Links = slices.DeleteFunc(ls.Links, func(l wire.Link) bool { return !sess.id.InLink(l.Peer) })
	}
	return ls
}

// handleLinkOperate holds or releases a link (tg hold --link PEER).
func (sess *session) handleLinkOperate(str *quic.Stream, payload []byte) {
	var req wire.LinkOperate
	if err := wire.Decode(wire.TLinkOperate, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	if !sess.id.InLink(req.Peer) {
		sess.deny(str, fault.Errorf("link", fault.Permission, "the link to %s is outside this operator's scope (%s)", req.Peer, scopeList(sess.id)))
		return
	}
	if !sess.id.InLink(req.Peer) {
		sess.deny(str, fault.Errorf("link", fault.Permission, "the link to %s is outside this operator's scope (%s)", req.Peer, scopeList(sess.id)))
		return
	}
	lk, ok := sess.s.links.peerOf(req.Peer)
	if !ok {
		sess.replyError(str, fault.Errorf("link", fault.NotExist, "no link to %q", req.Peer))
		return
	}
	if lk.hold(req.Hold) {
		what := "released"
		if req.Hold {
			what = "held"
		}
		sess.log.Info("link "+what, zap.String("peer", req.Peer))
		if err := sess.s.store.Record(store.AuditEntry{Actor: sess.id.String(), Event: store.AuditLink,
			Reason: fmt.Sprintf("link to %s %s by an operator", req.Peer, what)}); err != nil {
			sess.replyError(str, err)
			return
		}
		lk.poke()
	}
	out, err := sess.s.links.report()
	if err != nil {
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TLinksReply, sess.linksInScope(out))
}

// report describes every link for operators.
func (l *links) report() (wire.Links, error) {
	out := wire.Links{Self: l.self}
	agencies, err := l.s.store.RemoteAgencies()
	if err != nil {
		return out, err
	}
	for _, lk := range l.order {
		seqs, err := l.s.store.LinkSeq(lk.peer.Name)
		if err != nil {
			return out, err
		}
		lk.mu.Lock()
		w := wire.Link{Peer: lk.peer.Name, Address: lk.peer.Address, State: "down", Since: lk.since, Direction: "out",
			SentSeq: seqs.Out, RecvSeq: seqs.In, Gaps: lk.gaps.Load(), RTTMillis: float64(lk.rtt.Microseconds()) / 1000, BytesOut: lk.bytes,
			Relayed: lk.relayed.Load(), LastErr: lk.lastErr}
		switch {
		case lk.held:
			w.State = "held"
		case lk.up:
			w.State = "up"
		}
		for ch := range wire.Channels {
			w.SentSeq[ch] = max(w.SentSeq[ch], lk.sent[ch])
		}
		lk.mu.Unlock()
		out.Links = append(out.Links, w)
	}
	// What waits for each next hop: each agency's queues read once, each
	// precedence counted for the link it goes by now.
	rt := l.routes()
	for _, a := range agencies {
		masks := make([]uint32, len(l.order))
		some := false
		for i, lk := range l.order {
			masks[i] = rt.ranks(a, lk.peer.Name)
			some = some || masks[i] != 0
		}
		if !some {
			continue
		}
		st, err := l.s.store.QueueStats(a)
		if err != nil {
			return out, err
		}
		for _, q := range st.Queues {
			r := q.Queue.Prec.Rank()
			for i := range out.Links {
				if masks[i]&(1<<r) == 0 {
					continue
				}
				w := &out.Links[i]
				w.Waiting[r] += int(q.Waiting)
				if !q.Oldest.IsZero() && (w.Oldest.IsZero() || q.Oldest.Before(w.Oldest)) {
					w.Oldest = q.Oldest
				}
			}
		}
	}
	return out, nil
}
