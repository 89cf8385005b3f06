package server

import (
	"github.com/dienbao/dienbao/switch/fault"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// watchClock logs and audits, once each, the clock becoming untrusted and
// trusted again (see switch/clock). It runs at start and at every tick.
func (s *Server) watchClock() {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	_, why := s.clock.Trusted()
	if why == s.clockTold {
		return
	}
	s.clockTold = why
	reason := "the clock is trusted again"
	if why != "" {
		reason = "the clock is not trusted: " + why + "; filings, expiry and overdue decisions are suspended"
		s.log.Error("switch clock not trusted", zap.String("reason", why), zap.Duration("offset", s.clock.Offset()))
	} else {
		s.log.Warn("switch clock trusted again")
	}
	if err := s.store.Record(store.AuditEntry{Actor: s.cfg.Name, Event: audit.Clock, Reason: reason}); err != nil {
		s.log.Error("cannot audit a clock change", zap.Error(err))
	}
}

// expired reports whether h is past its latest delivery time on a trusted
// clock; on an untrusted one nothing expires.
func (s *Server) expired(h telegram.Header) bool {
	ok, _ := s.clock.Trusted()
	return ok && h.Expired(s.clock.Now())
}

// confirmClock trusts the wall clock on the word of sess's operator, and
// audits it, naming the operator.
func (s *Server) confirmClock(sess *session) error {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	before := s.clock.Offset()
	s.clock.Confirm()
	sess.log.Warn("the wall clock confirmed by an operator", zap.Duration("offset", before))
	s.clockTold = "" // trusted, and said so below
	return s.store.Record(store.AuditEntry{Actor: sess.id.String(), Event: audit.Clock,
		Reason: "the wall clock confirmed by an operator, " + before.Round(time.Second).String() + " from the switch's time"})
}

// handleClock shows the switch's clock; with Confirm, the operator vouches
// for the wall clock (audited, naming the operator) and the switch trusts
// it from now on.
func (sess *session) handleClock(str *quic.Stream, payload []byte) {
	var req wire.ClockRequest
	if err := wire.Decode(wire.TClock, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	s := sess.s
	if req.Confirm && sess.id.Scoped() {
		sess.deny(str, fault.Errorf("clock", fault.Permission, "vouching for the switch's clock acts on the whole network; this operator's certificate is limited to %s", scopeList(sess.id)))
		return
	}
	if req.Confirm {
		if err := s.confirmClock(sess); err != nil {
			sess.replyError(str, err)
			return
		}
	}
	ok, why := s.clock.Trusted()
	wire.WriteFrame(str, wire.TClockReply, wire.Clock{Trusted: ok, Reason: why, Now: s.clock.Now().UTC(), Wall: s.clock.Wall().UTC()})
}
