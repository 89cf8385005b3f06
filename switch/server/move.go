package server

import (
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// tg move-queue: an operator re-addresses an agency's waiting telegrams to
// another (a merger of provinces or districts). The switchboard moves them
// in commits of a few hundred; each copy is audited (moved, then queued
// for the new address) and its sender told MOVED.

func (sess *session) handleMoveQueue(str *quic.Stream, payload []byte) {
	var req wire.MoveQueue
	if err := wire.Decode(wire.TMoveQueue, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	if err := scopeAgencies(sess.id, "move-queue", req.From, req.To); err != nil {
		sess.deny(str, err)
		return
	}
	out, err := sess.s.moveQueue(req, sess.id.String(), sess.id.Clearance)
	if err != nil {
		if !fault.Is(fault.NotExist, err) && !fault.Is(fault.Invalid, err) {
			sess.log.Error("cannot move a queue", zap.Error(err))
		}
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TMovedQueue, out)
}

func (s *Server) moveQueue(req wire.MoveQueue, actor string, clearance telegram.Classification) (wire.MovedQueue, error) {
	const op = "move-queue"
	out := wire.MovedQueue{From: req.From, To: req.To}
	if err := s.directory().Addressable(req.To); err != nil {
		return out, fault.Errorf(op, fault.NotExist, "cannot move to %s: %v", req.To, err)
	}
	if !s.directory().Has(req.From) {
		if st, err := s.store.QueueStats(req.From); err != nil {
			return out, err
		} else if len(st.Queues) == 0 {
			return out, fault.Errorf(op, fault.NotExist, "unknown agency %s: not in the agency directory, and nothing waits for it", req.From)
		}
	}
	n, err := s.board.MoveQueue(req.From, req.To, actor, clearance)
	out.Moved = n
	if err != nil {
		return out, err
	}
	left, err := s.store.QueueStats(req.From)
	if err != nil {
		return out, err
	}
	for _, q := range left.Queues {
		out.Waiting += q.Waiting
		out.Parked += q.Parked
		out.Held += q.Held
		out.Deferred += q.Deferred
	}
	return out, nil
}
