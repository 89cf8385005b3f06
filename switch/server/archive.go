package server

import (
	"context"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// Audit archiving (store/archive.go): hourly, entries older than
// Config.ArchiveAfter leave the store for archive files; an auditor can
// ask for it at any age (tg audit archive --older-than). Either way each
// file is audited (archived), naming who asked.

// archiveEvery is how often the switch archives by itself.
const archiveEvery = time.Hour

// archiver archives by itself, hourly, while ctx lasts.
func (s *Server) archiver(ctx context.Context) {
	if s.cfg.ArchiveAfter <= 0 {
		return
	}
	t := time.NewTicker(archiveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ok, _ := s.clock.Trusted(); !ok {
				continue // a wrong clock would archive the wrong entries
			}
			if _, err := s.archive(s.cfg.ArchiveAfter, "switch"); err != nil {
				s.log.Error("cannot archive the audit log", zap.Error(err))
			}
		}
	}
}

// archive moves entries older than age to archive files, as actor.
func (s *Server) archive(age time.Duration, actor string) (wire.AuditArchived, error) {
	res, err := s.store.Archive(s.clock.Now().Add(-age), actor)
	if len(res.Files) > 0 {
		s.log.Info("audit log archived", zap.Strings("files", res.Files), zap.Uint64("entries", res.Entries), zap.Uint64("below", res.Below))
	}
	return wire.AuditArchived{Files: res.Files, Entries: res.Entries, Below: res.Below, Dir: s.cfg.ArchiveDir}, err
}

func (sess *session) handleAuditArchive(str *quic.Stream, payload []byte) {
	var req wire.AuditArchiveRequest
	if err := wire.Decode(wire.TAuditArchive, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	age := sess.s.cfg.ArchiveAfter
	if req.OlderThan != nil {
		age = *req.OlderThan
	}
	switch {
	case age < 0:
		sess.replyError(str, fault.Errorf("audit_archive", fault.Invalid, "an age cannot be negative"))
		return
	case age == 0 && req.OlderThan == nil:
		sess.replyError(str, fault.Errorf("audit_archive", fault.Invalid,
			`this switch does not archive by itself ([audit] archive_after = "0s"): give an age (tg audit archive --older-than 2160h)`))
		return
	}
	res, err := sess.s.archive(age, sess.id.String())
	if err != nil {
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TAuditArchived, res)
}
