package server

import (
	"context"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// timers checks expiry and speed-of-service deadlines on the switch's own
// clock, for every telegram, whether or not its addressees ever connect.
func (s *Server) timers(ctx context.Context) {
	t := time.NewTicker(s.cfg.TimerInterval)
	defer t.Stop()
	cp := time.NewTicker(s.cfg.CheckpointInterval)
	defer cp.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.watchClock()
			s.runTimers()
			s.watchStorage(now)
			s.watchCRL()
			s.watchDirectory()
		case <-cp.C:
			s.checkpoint()
		}
	}
}

// checkpoint signs the audit log's checkpoint if the log has grown.
func (s *Server) checkpoint() {
	cp, err := s.store.Checkpoint()
	if err != nil {
		s.log.Error("cannot sign an audit checkpoint", zap.Error(err))
		return
	}
	s.log.Debug("audit checkpoint", zap.Uint64("size", cp.Size))
}

// runTimers handles every deadline due now, on the switch's clock; none
// while the clock is untrusted (a wrong clock would withdraw telegrams and
// tell their senders so, for good).
func (s *Server) runTimers() {
	if ok, _ := s.clock.Trusted(); !ok {
		return
	}
	now := s.clock.Now()
	s.forDue(store.DueDeferral, now, func(id telegram.ID) bool {
		queued, err := s.store.Undefer(id)
		if err != nil {
			s.log.Error("cannot queue a deferred telegram", zap.Stringer("id", id), zap.Error(err))
			return false
		}
		for _, a := range queued {
			s.log.Info("deferred telegram queued", zap.Stringer("id", id), zap.Stringer("addressee", a))
		}
		return true
	})
	s.forDue(store.DueExpiry, now, func(id telegram.ID) bool { s.ex.expire(id); return true })
	s.forDue(store.DueOverdue, now, func(id telegram.ID) bool {
		late, err := s.store.MarkOverdue(id)
		if err != nil {
			s.log.Error("cannot mark a telegram overdue", zap.Stringer("id", id), zap.Error(err))
			return false
		}
		for _, o := range late {
			s.log.Warn("telegram overdue", zap.Stringer("id", id), zap.Stringer("addressee", o.Agency),
				zap.Stringer("precedence", o.Prec), zap.Duration("age", o.Age),
				zap.Duration("target", s.cfg.SpeedTargets[o.Prec]))
		}
		return true
	})
}

// forDue calls fn for each telegram whose deadline of kind is due at now,
// in pages, until none is left or fn returns false.
func (s *Server) forDue(kind byte, now time.Time, fn func(telegram.ID) bool) {
	const page = 256
	var cursor []byte
	for {
		ids, next, err := s.store.Due(kind, now, cursor, page)
		if err != nil {
			s.log.Error("cannot read deadlines", zap.Error(err))
			return
		}
		for _, id := range ids {
			if !fn(id) {
				return
			}
		}
		if len(ids) < page {
			return
		}
		cursor = next
	}
}

// expire withdraws telegram id from every addressee that does not have it
// yet, except deliveries in flight: those are settled by their
// acknowledgement, or expire when they come back.
func (ex *exchange) expire(id telegram.ID) {
	ws, err := ex.store.Withdraw(id, store.ReasonExpired, "", ex.inFlight)
	if err != nil {
		ex.s.log.Error("cannot expire a telegram", zap.Stringer("id", id), zap.Error(err))
		return
	}
	ex.dropped(id, store.ReasonExpired, ws)
}

// dropped tells the schedulers that entries left the queues, and logs it.
func (ex *exchange) dropped(id telegram.ID, reason string, ws []store.Withdrawn) {
	for _, w := range ws {
		ex.mu.Lock()
		st := ex.agencies[w.Queue.Agency]
		ex.mu.Unlock()
		if st != nil {
			st.sched.Drop(w.Queue.Prec, w.Queue.Class, w.Seq)
		}
		ex.s.log.Info("telegram withdrawn", zap.Stringer("id", id), zap.Stringer("addressee", w.Queue.Agency),
			zap.Stringer("precedence", w.Queue.Prec), zap.String("reason", reason))
	}
}
