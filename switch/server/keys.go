package server

import (
	"fmt"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// handleRotate makes a new data-encryption key current (at once: every
// record written from now on is sealed with it) and starts re-sealing
// older records in the background. Operators only; audited.
func (sess *session) handleRotate(str *quic.Stream, payload []byte) {
	var req wire.RotateKeys
	if err := wire.Decode(wire.TRotateKeys, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	ring := sess.s.cfg.Keyring
	if ring == nil {
		sess.replyError(str, fault.E("keys", fault.Invalid, "this switch runs without encryption at rest"))
		return
	}
	id, err := ring.Rotate()
	if err != nil {
		sess.log.Error("key rotation failed", zap.Error(err))
		sess.replyError(str, err)
		return
	}
	if err := sess.s.store.Record(store.AuditEntry{Actor: sess.id.String(), Event: store.AuditKeyRotation,
		Reason: fmt.Sprintf("data key %d is current; re-sealing older records", id)}); err != nil {
		sess.log.Error("cannot audit the key rotation", zap.Error(err))
	}
	sess.log.Info("data key rotated", zap.Uint32("current", id))
	sess.s.startReseal()
	wire.WriteFrame(str, wire.TKeys, wire.Keys{Current: id, Keys: ring.IDs()})
}

// startReseal runs one background re-seal unless one is running (which
// picks up a newer rotation by itself).
func (s *Server) startReseal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resealing || s.draining || s.cfg.Keyring == nil {
		return
	}
	s.resealing = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		stats, err := s.store.Reseal(s.bgCtx)
		s.mu.Lock()
		s.resealing = false
		s.mu.Unlock()
		if err != nil {
			if s.bgCtx.Err() == nil {
				s.log.Error("re-sealing stopped; it resumes at the next start or rotation", zap.Error(err))
			}
			return
		}
		s.log.Info("re-sealing done", zap.Int("records", stats.Resealed), zap.Int("passes", stats.Passes),
			zap.Any("retired_keys", stats.Retired), zap.Int("damaged", stats.Damaged))
	}()
}
