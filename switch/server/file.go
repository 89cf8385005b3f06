package server

import (
	"errors"
	"net"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/failpoint"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// maxBatchBytes bounds the bodies of one File request together.
const maxBatchBytes = 64 << 20

// retryOverRate is the retry-after hint of a filing over its agency's
// rate, and retryBudget that of one refused for the body budgets.
const (
	retryOverRate = 250 * time.Millisecond
	retryBudget   = 100 * time.Millisecond
)

// bodyBudgetWait is how long a filing waits for the switch's body budget
// before it is refused with "retry later".
const bodyBudgetWait = 2 * time.Second

// readBody reads one body in chunks, each of which must come within
// BodyTimeout: a sender that stops sending is cut, not waited for.
func (sess *session) readBody(str *quic.Stream, buf []byte) error {
	defer str.SetReadDeadline(time.Time{})
	for off := 0; off < len(buf); {
		str.SetReadDeadline(time.Now().Add(sess.s.cfg.BodyTimeout))
		n, err := str.Read(buf[off:min(off+64<<10, len(buf))])
		off += n
		if err != nil && off < len(buf) {
			return err
		}
	}
	return nil
}

// handleFile serves a File request: check sizes before reading any body,
// read the bodies, check each filing, commit the acceptable ones (group
// commit: each returns after fsync), audit the refused ones, reply.
func (sess *session) handleFile(str *quic.Stream, payload []byte) {
	var req wire.FileRequest
	if err := wire.Decode(wire.TFile, payload, &req); err != nil {
		sess.replyError(str, err)
		str.CancelRead(streamProtocol)
		return
	}
	lim := *sess.s.limits.Load()
	n := len(req.Filings)
	if n == 0 || n > wire.MaxBatch {
		sess.replyError(str, fault.Errorf("file", fault.Invalid, "a filing batch holds 1 to %d telegrams, not %d", wire.MaxBatch, n))
		str.CancelRead(streamProtocol)
		return
	}
	var total int64
	for _, f := range req.Filings {
		if err := filing.CheckSize(f.BodyLen, lim); err != nil {
			sess.refused(err)
			sess.replyError(str, err)
			str.CancelRead(streamTooLarge)
			return
		}
		total += f.BodyLen
	}
	if total > maxBatchBytes {
		err := fault.Errorf("file", fault.TooLarge, "a filing batch carries at most %d bytes of bodies", maxBatchBytes)
		sess.replyError(str, err)
		str.CancelRead(streamTooLarge)
		return
	}
	if err := sess.s.storageRefusesAll(req.Filings); err != nil {
		sess.replyError(str, err)
		str.CancelRead(streamBusy)
		return
	}
	if ok, why := sess.s.clock.Trusted(); !ok {
		sess.replyError(str, fault.Errorf("file", fault.Unavailable, "the switch's clock is not trusted: %s; nothing was filed, retry later", why))
		str.CancelRead(streamBusy)
		return
	}
	if !sess.s.allowFilings(sess.id, n) {
		e := fault.Errorf("file", fault.Unavailable, "%s is over its filing rate (%d per second); nothing was filed, retry later",
			sess.id.Agency, sess.s.cfg.FilingRate)
		if n <= 2*sess.s.cfg.FilingRate { // a batch over the burst never passes: no use retrying it
			e.RetryAfter = retryOverRate
		}
		sess.replyError(str, e)
		str.CancelRead(streamBusy)
		return
	}
	if err := sess.s.minimizedRequest(sess.id.Agency, req.Filings); err != nil {
		sess.refused(err)
		sess.replyError(str, err)
		str.CancelRead(streamBusy)
		return
	}
	admitted, err := sess.s.admitRequest(req.Filings)
	if err != nil {
		sess.replyError(str, err)
		str.CancelRead(streamBusy)
		return
	}
	// The bodies' bytes are reserved, on the connection and across the
	// switch, before any is allocated or read (budget.go).
	var flash int64 // of total, the FLASH bodies' bytes
	for _, f := range req.Filings {
		if f.Precedence == telegram.Flash {
			flash += f.BodyLen
		}
	}
	if !sess.bodies.take(total-flash, flash, 0) {
		e := fault.Errorf("file", fault.Unavailable, "this connection is already receiving %d bytes of bodies, the most it may; nothing was filed, retry later", sess.s.cfg.ConnBodyBudget)
		e.RetryAfter = retryBudget
		sess.replyError(str, e)
		str.CancelRead(streamBusy)
		return
	}
	defer sess.bodies.give(total)
	if !sess.takeBodies(str, total-flash, flash, "file", "the switch is receiving as many bodies as it may at once; nothing was filed, retry later") {
		return
	}
	defer sess.s.bodies.give(total)
	bodies := make([][]byte, n)
	for i, f := range req.Filings {
		bodies[i] = make([]byte, f.BodyLen)
		if err := sess.readBody(str, bodies[i]); err != nil {
			sess.log.Info("filing body cut short", zap.Error(err))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				sess.replyError(str, fault.Errorf("file", fault.Invalid, "the body made no progress for %s; nothing was filed", sess.s.cfg.BodyTimeout))
			}
			str.CancelRead(streamProtocol)
			return
		}
	}
	results := make([]wire.FileResult, n)
	var accepted []*store.Filing
	var index []int // accepted[k] answers results[index[k]]
	now := sess.s.clock.Now()
	for i, f := range req.Filings {
		var seal sealed
		h, deferredBy, audited, err := sess.decide(f, bodies[i], &seal, lim, now, admitted)
		if err != nil {
			if audited {
				sess.refused(err)
			}
			e := wire.ErrorOf(err)
			results[i].Err = &e
			continue
		}
		results[i].Minimize = deferredBy
		accepted = append(accepted, &store.Filing{Header: h, Body: bodies[i], Actor: sess.id.String(),
			SpeedTarget: sess.s.cfg.SpeedTargets[h.Precedence], Sealed: seal.note, ContentDigest: seal.content})
		index = append(index, i)
	}
	if len(accepted) > 0 {
		res, errs := sess.s.store.FileBatch(accepted)
		for k, i := range index {
			if errs[k] != nil {
				sess.log.Error("filing not stored", zap.Error(errs[k]))
				e := wire.ErrorOf(errs[k])
				results[i].Err = &e
				continue
			}
			deferredBy := results[i].Minimize
			if res[k].Duplicate { // the earlier filing stands, deferred or not
				deferredBy = 0
			}
			results[i] = wire.FileResult{ID: res[k].ID, Duplicate: res[k].Duplicate, Minimize: deferredBy}
			h := accepted[k].Header
			if !res[k].Duplicate {
				sess.s.stats.filed[h.Precedence].Add(1)
			}
			if ce := sess.log.Check(zap.InfoLevel, "telegram accepted"); ce != nil {
				ce.Write(zap.Stringer("id", res[k].ID), zap.Stringer("precedence", h.Precedence),
					zap.Stringer("classification", h.Classification), zap.Int("addressees", len(h.To)+len(h.Info)),
					zap.Int64("bytes", h.BodyLen), zap.Bool("duplicate", res[k].Duplicate))
			}
		}
	}
	failpoint.Hit("before-reply")
	if err := wire.WriteFrame(str, wire.TFileReply, wire.FileReply{Results: results}); err != nil {
		sess.log.Info("filing reply not delivered; the sender can refile with the same reference", zap.Error(err))
	}
}

// decide checks one filing of a request whose bodies are read: the
// filing checks, then storage pressure, a MINIMIZE, and admission control
// (unless the request was admitted as a whole, before its bodies). It
// returns the header to store and the MINIMIZE it is deferred under (0:
// none), or the refusal and whether it is audited (storage pressure and
// admission control only count theirs: storage.go, admission.go).
func (sess *session) decide(f wire.Filing, body []byte, seal *sealed, lim filing.Limits, now time.Time, admitted bool) (h telegram.Header, deferredBy uint64, audited bool, err error) {
	s := sess.s
	if h, err = filing.CheckRouted(sess.id, filingRequest(f), s.directory(), s.elsewhere(), lim, now); err != nil {
		return h, 0, true, err
	}
	if err := s.checkSealed(&h, body, seal); err != nil {
		return h, 0, true, err
	}
	if err := s.storageRefuses(h.Precedence); err != nil {
		return h, 0, false, err
	}
	m, minimized := s.minimized(sess.id.Agency, h.Precedence, now)
	if minimized && !m.Defer {
		s.stats.minimized.WithLabelValues("refused").Inc()
		return h, 0, true, m.Refusal(h.Precedence)
	}
	if !admitted {
		if err := s.admit(h.Precedence); err != nil {
			return h, 0, false, err
		}
	}
	if minimized {
		h.DeliverAt = deferMark(m.Number) // queued when it is lifted or ends
		s.stats.minimized.WithLabelValues("deferred").Inc()
		return h, m.Number, false, nil
	}
	return h, 0, false, nil
}

// refused logs and audits a refused filing. The reason is the error
// message, which never contains a body or subject.
func (sess *session) refused(err error) {
	sess.log.Info("filing refused", zap.String("reason", audit.Clean(err.Error(), 512)), zap.Stringer("kind", fault.KindOf(err)))
	e := store.AuditEntry{Actor: sess.id.String(), Event: store.AuditRefused, From: sess.id.Agency, Reason: err.Error()}
	if fault.KindOf(err) == fault.Permission {
		e.Event, e.Reason = store.AuditSecurity, "filing refused: "+err.Error()
	}
	sess.s.refusal(deniedKey(e.Event, e.Actor, e.From, e.Reason), e, false)
}

// filingRequest is the domain request a protocol filing carries.
func filingRequest(f wire.Filing) filing.Request {
	return filing.Request{To: f.To, Info: f.Info, Precedence: f.Precedence, Classification: f.Classification,
		Subject: f.Subject, Ref: f.Ref, BodyLen: f.BodyLen, ExpiresAt: f.ExpiresAt, DeliverAt: f.DeliverAt}
}
