package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/google/renameio/v2"
	"go.uber.org/zap"
)

// A copy of the latest checkpoint outside the store. Damage to Badger's
// write-ahead log or value log can make it open with the end of its
// history missing, and say nothing: the telegrams, their queue entries and
// the audit entries of the last commits are simply gone, and so are the
// checkpoints that covered them, so the log verifies as if it were whole.
// The store therefore keeps a copy of each new checkpoint it signs in a
// file that does not share the store's files (Options.CheckpointCopy,
// beside the keyring), and at open refuses a log shorter than that copy
// says: ErrShortened, until started with Options.AcceptLoss, which goes on
// with what is left and records the loss in the audit log.

// ErrShortened says the audit log has fewer entries than a checkpoint
// signed before covered: the store lost its latest commits.
var ErrShortened = errors.New("the audit log is shorter than its last checkpoint")

// checkShortened compares the log's size with the checkpoint copy.
func (s *Store) checkShortened() error {
	path := s.opts.CheckpointCopy
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fault.E("store.open", fault.Internal, "cannot read the checkpoint copy "+path, err)
	}
	cp, err := audit.OpenCheckpoint(b, s.VerifierKey())
	if err != nil {
		return fault.E("store.open", fault.Integrity, "the checkpoint copy "+path+" is not a checkpoint of this log", err)
	}
	s.copied = cp.Size
	if cp.Size <= s.st.aseq {
		return nil
	}
	lost := cp.Size - s.st.aseq
	msg := fmt.Sprintf("the audit log holds %d entries, but a checkpoint of %d entries was signed before (its copy: %s): "+
		"the last %d entries, and the telegrams and deliveries they recorded, are gone from the store "+
		"(a damaged write-ahead log or value log)", s.st.aseq, cp.Size, path, lost)
	if !s.opts.AcceptLoss {
		return fault.E("store.open", fault.Integrity, msg+"; restore the store from a backup, or start with --accept-loss to go on with what is left", ErrShortened)
	}
	s.log.Error("audit log shortened; going on with what is left, as asked", zap.Uint64("entries", s.st.aseq), zap.Uint64("checkpoint", cp.Size))
	s.shortened = msg + "; the switch was started with --accept-loss"
	return nil
}

// copyCheckpoint writes the latest checkpoint's copy, if it is newer than
// the one on file. It returns after the copy is on disk.
func (s *Store) copyCheckpoint(cp SignedCheckpoint) error {
	s.copyMu.Lock()
	defer s.copyMu.Unlock()
	if s.opts.CheckpointCopy == "" || cp.Size <= s.copied {
		return nil
	}
	if err := renameio.WriteFile(s.opts.CheckpointCopy, cp.Note, 0o600); err != nil {
		return fault.E("store.checkpoint", fault.Internal, "cannot write the checkpoint copy", err)
	}
	s.copied = cp.Size
	return nil
}
