package server

import (
	"context"
	"time"

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
			s.flushRefusals(now)
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
	if cp.Size != s.checkpointSize.Load() || s.checkpointAt.Load() == 0 {
		s.checkpointSize.Store(cp.Size)
		s.checkpointAt.Store(time.Now().Unix())
	}
	s.log.Debug("audit checkpoint", zap.Uint64("size", cp.Size))
}

// runTimers handles every custody deadline due now, on the switch's
// clock; none while the clock is untrusted (a wrong clock would withdraw
// telegrams and tell their senders so, for good).
func (s *Server) runTimers() {
	if ok, _ := s.clock.Trusted(); !ok {
		return
	}
	s.board.RunTimers(s.clock.Now(), s.cfg.SpeedTargets)
	s.minimizeTimers(s.clock.Now())
}
