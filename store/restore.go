package store

import (
	"fmt"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"go.uber.org/zap"
)

// A restored store. A backup holds the store as it stood at one commit;
// the switch it was taken from went on after it, delivering telegrams the
// backup still holds as waiting, accepting others it does not hold at all,
// and writing audit entries from the backup's log size on. The restored
// switch cannot know that history, and says so instead of rewriting it:
//
//   - its audit log's next entry (event "restored", at the backup's log
//     size) records the restore, when the backup was taken, and that the
//     entries the original wrote from that index on are not in this log;
//     checkpoints signed before the backup stay consistent with the
//     restored log, later ones are not, and tg audit checkpoint --since
//     names the restore when it meets one;
//   - every telegram queued at the backup (queue sequence below
//     RestoredBelow) goes out flagged possible duplicate: it may have been
//     delivered after the backup.

// restoredKey holds RestoredBelow.
var restoredKey = metaKey("restored")

// RestoredBelow is the queue sequence below which every entry may have
// been delivered by the switch before its store was restored from a backup
// (zero if it never was): the first sequence after the latest restore.
func (s *Store) RestoredBelow() uint64 { return s.restoredBelow }

// recordRestore, at the first open after a restore (Options.Restored),
// sets the restored bound and records the restore, in one commit.
func (s *Store) recordRestore() error {
	b := s.opts.Restored
	if b == nil {
		return nil
	}
	below := s.st.qseq + 1
	reason := fmt.Sprintf("restored from a backup taken at %s (audit log of %d entries, latest checkpoint of size %d, queue sequence %d): "+
		"what the switch did after the backup is not in this store; audit entries from index %d on are this switch's since the restore, "+
		"not those the original wrote; every telegram queued at the backup goes out flagged possible duplicate",
		b.TakenAt.UTC().Format(time.RFC3339), b.AuditSize, b.Checkpoint, b.QueueSeq, s.st.aseq)
	s.log.Warn("store restored from a backup", zap.Time("taken_at", b.TakenAt), zap.Uint64("audit_size", b.AuditSize),
		zap.Uint64("queue_seq", b.QueueSeq))
	err := s.submit(&op{apply: func(c *commitCtx) error {
		if err := c.set(restoredKey, putU64(below)); err != nil {
			return err
		}
		return c.appendAudit(AuditEntry{Actor: "switchd restore", Event: audit.Restored, Reason: reason})
	}})
	if err == nil {
		s.restoredBelow = below
	}
	return err
}
