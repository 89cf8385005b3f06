package server

import (
	"fmt"
	"slices"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// MINIMIZE. An operator declares that, during an emergency, filings below
// a precedence from some agencies (all, a level of the network, or a
// list) are refused, or accepted and deferred, so that urgent traffic
// flows (filing.Minimize decides which filing a declaration applies to).
// Declarations are kept in the store (the setting "minimize"), so they
// outlive a restart; each declaration, lifting and end is audited (event
// minimize). A refusal is counted and audited like every refused filing
// (aggregated: refusals.go).
//
// A deferred filing is stored with its delivery time set to a mark of its
// own declaration, far in the future (deferMark); lifting the declaration,
// or its end, queues every telegram deferred to that mark. A switch that
// stops in between finishes the queueing when it starts, and a filing
// that commits just after its declaration was lifted is queued at the
// next timer tick.

const minimizeSetting = "minimize"

// minimizeState is what the store keeps: the declarations in force and
// the next declaration's number.
type minimizeState struct {
	Next uint64            `cbor:"1,keyasint"`
	In   []filing.Minimize `cbor:"2,keyasint"`
}

// deferBase is the first of the deferral marks: declaration n's is n
// nanoseconds after it. (Timer keys hold Unix nanoseconds, which end in
// 2262.)
var deferBase = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

func deferMark(n uint64) time.Time { return deferBase.Add(time.Duration(n)) }

// loadMinimize reads the declarations from the store, and queues what
// was deferred under declarations no longer in force.
func (s *Server) loadMinimize() error {
	st := &minimizeState{Next: 1}
	if _, err := s.store.Setting(minimizeSetting, st); fault.Is(fault.Integrity, err) {
		return fault.E("minimize", fault.Integrity, "the stored MINIMIZE declarations are unreadable", err)
	} else if err != nil {
		return err
	}
	s.minimize.Store(st)
	for _, m := range st.In {
		s.log.Warn("MINIMIZE in force", zap.String("declaration", m.String()))
	}
	_, err := s.releaseLifted(st)
	return err
}

// releaseLifted queues the telegrams deferred under declarations of st
// that are no longer in force, and returns how many: the marks of every
// declaration made but those in force, one range of timers for each gap
// between these (not one scan per declaration ever made).
func (s *Server) releaseLifted(st *minimizeState) (int, error) {
	in := make([]uint64, 0, len(st.In)+1)
	for _, m := range st.In {
		in = append(in, m.Number)
	}
	slices.Sort(in)
	released, from := 0, uint64(1)
	for _, n := range append(in, st.Next) {
		if from < n {
			k, err := s.board.UndeferBetween(deferMark(from), deferMark(n-1))
			released += k
			if err != nil {
				return released, err
			}
		}
		from = n + 1
	}
	return released, nil
}

// minimized returns the declaration that applies to a filing of
// precedence p from agency from, if any.
func (s *Server) minimized(from telegram.Address, p telegram.Precedence, now time.Time) (filing.Minimize, bool) {
	st := s.minimize.Load() // set before the switch serves (loadMinimize)
	if len(st.In) == 0 {
		return filing.Minimize{}, false
	}
	a, _ := s.directory().Agency(from)
	return filing.Minimized(st.In, a, p, now)
}

// minimizedRequest refuses, before any body is read, a request whose
// filings a refusing MINIMIZE applies to, every one (the refusal of the
// first; the others are of the same agency, and at least as low).
func (s *Server) minimizedRequest(from telegram.Address, fs []wire.Filing) error {
	now := s.clock.Now()
	var first filing.Minimize
	for i, f := range fs {
		m, ok := s.minimized(from, f.Precedence, now)
		if !ok || m.Defer {
			return nil
		}
		if i == 0 {
			first = m
		}
	}
	s.stats.minimized.WithLabelValues("refused").Add(float64(len(fs)))
	return first.Refusal(fs[0].Precedence)
}

// changeMinimize applies change to a copy of the declarations (under
// minimizeMu), stores the result with the audit entry change returns, and
// makes it the one in force.
func (s *Server) changeMinimize(change func(st *minimizeState) (store.AuditEntry, error)) error {
	s.minimizeMu.Lock()
	defer s.minimizeMu.Unlock()
	old := s.minimize.Load()
	st := &minimizeState{Next: old.Next, In: slices.Clone(old.In)}
	e, err := change(st)
	if err != nil {
		return err
	}
	if err := s.store.PutSetting(minimizeSetting, st, e); err != nil {
		return err
	}
	s.minimize.Store(st)
	return nil
}

// lift ends the declarations numbered in ns (all of them with all) for
// why ("lifted by X", "ended"), and queues what they deferred.
func (s *Server) lift(actor string, ns []uint64, all bool, why string) ([]uint64, int, error) {
	var lifted []uint64
	err := s.changeMinimize(func(st *minimizeState) (store.AuditEntry, error) {
		var keep []filing.Minimize
		var what []string
		for _, m := range st.In {
			if all || slices.Contains(ns, m.Number) {
				lifted = append(lifted, m.Number)
				what = append(what, fmt.Sprintf("MINIMIZE %d %s", m.Number, why))
			} else {
				keep = append(keep, m)
			}
		}
		for _, n := range ns {
			if !slices.Contains(lifted, n) {
				return store.AuditEntry{}, fault.Errorf("minimize", fault.NotExist, "no MINIMIZE %d is in force", n)
			}
		}
		if len(lifted) == 0 {
			return store.AuditEntry{}, fault.Errorf("minimize", fault.NotExist, "no MINIMIZE is in force")
		}
		st.In = keep
		return store.AuditEntry{Actor: actor, Event: audit.Minimize, Reason: fmt.Sprint(what)}, nil
	})
	if err != nil {
		return nil, 0, err
	}
	for _, n := range lifted {
		s.log.Warn("MINIMIZE "+why, zap.Uint64("number", n))
	}
	released, err := s.releaseLifted(s.minimize.Load())
	return lifted, released, err
}

// minimizeTimers, at every timer tick, lifts the declarations whose end
// has come, and queues what is still deferred under one no longer in
// force: a filing checked against a declaration just before it was
// lifted may commit after the lifting queued the others.
func (s *Server) minimizeTimers(now time.Time) {
	st := s.minimize.Load()
	var ended []uint64
	for _, m := range st.In {
		if !m.InForce(now) {
			ended = append(ended, m.Number)
		}
	}
	if len(ended) > 0 {
		if _, _, err := s.lift("switch", ended, false, "ended"); err != nil {
			s.log.Error("cannot end a MINIMIZE", zap.Error(err))
		}
		return
	}
	if n, err := s.releaseLifted(st); err != nil {
		s.log.Error("cannot queue telegrams deferred under a lifted MINIMIZE", zap.Error(err))
	} else if n > 0 {
		s.log.Info("telegrams deferred under a lifted MINIMIZE queued", zap.Int("telegrams", n))
	}
}

// handleMinimize declares, lifts or lists MINIMIZE declarations.
func (sess *session) handleMinimize(str *quic.Stream, payload []byte) {
	var req wire.MinimizeRequest
	if err := wire.Decode(wire.TMinimize, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	s := sess.s
	var reply wire.Minimizes
	changes := req.Declare != nil || len(req.Lift) > 0 || req.LiftAll
	switch {
	case changes && sess.id.Role != certs.Operator:
		sess.deny(str, fault.Errorf("minimize", fault.Permission, "%s certificates can list MINIMIZE declarations, not declare or lift them; only operators can", sess.id.Role))
		return
	case changes && sess.id.Scoped() && (req.Declare == nil || len(req.Declare.Agencies) == 0):
		sess.deny(str, fault.Errorf("minimize", fault.Permission, "this operator's certificate is limited to %s: it may declare a MINIMIZE for agencies there (--agency), not for a level or the whole switch, nor lift one", scopeList(sess.id)))
		return
	case req.Declare != nil && sess.id.Scoped() && scopeAgencies(sess.id, "minimize", req.Declare.Agencies...) != nil:
		sess.deny(str, scopeAgencies(sess.id, "minimize", req.Declare.Agencies...))
		return
	case req.Declare != nil && (len(req.Lift) > 0 || req.LiftAll):
		sess.replyError(str, fault.Errorf("minimize", fault.Invalid, "declare or lift, not both at once"))
		return
	case req.Declare != nil:
		now := s.clock.Now()
		m := *req.Declare
		if err := filing.CheckMinimize(m, s.directory(), now); err != nil {
			sess.replyError(str, err)
			return
		}
		err := s.changeMinimize(func(st *minimizeState) (store.AuditEntry, error) {
			if len(st.In) >= filing.MaxMinimizes {
				return store.AuditEntry{}, fault.Errorf("minimize", fault.TooLarge, "%d MINIMIZE declarations are in force, the most there may be; lift one first", len(st.In))
			}
			m.Number, m.By, m.At = st.Next, sess.id.String(), now.UTC()
			st.Next++
			st.In = append(st.In, m)
			return store.AuditEntry{Actor: m.By, Event: audit.Minimize, Reason: "declared " + m.String()}, nil
		})
		if err != nil {
			sess.replyError(str, err)
			return
		}
		sess.log.Warn("MINIMIZE declared", zap.String("declaration", m.String()))
		reply.Declared = m.Number
	case changes:
		lifted, released, err := s.lift(sess.id.String(), req.Lift, req.LiftAll, "lifted by "+sess.id.String())
		reply.Lifted, reply.Released = lifted, released
		if err != nil {
			sess.replyError(str, err)
			return
		}
	}
	for _, m := range s.minimize.Load().In {
		if sess.id.Role == certs.Operator {
			reply.InForce = append(reply.InForce, m)
		} else if a, _ := s.directory().Agency(sess.id.Agency); m.Covers(a) {
			m.By = "" // which operator is not the terminal's business
			reply.InForce = append(reply.InForce, m)
		}
	}
	if reply.InForce == nil {
		reply.InForce = []filing.Minimize{}
	}
	wire.WriteFrame(str, wire.TMinimized, reply)
}
