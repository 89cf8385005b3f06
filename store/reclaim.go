package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"go.uber.org/zap"
)

// Reclaiming disk. Bodies over 4 KiB live in Badger's value log, which
// Badger never shrinks by itself: a delivered body's space comes back only
// when value-log GC rewrites the file it is in, and GC picks files by the
// discard statistics that compaction gathers. So:
//
//   - value-log files are small (ValueLogFileSize), so that a file whose
//     bodies were delivered can be rewritten and deleted whole (the file
//     being written is never collected);
//   - Reclaim runs GC until it finds nothing worth rewriting (half a file
//     discardable); the switch calls it on a schedule and under disk
//     pressure;
//   - a thorough Reclaim first flushes the memtables and compacts the tree
//     to one level, so that every delete is counted. That costs a pause of
//     writes while the memtables flush, and a rewrite of the tree (keys and
//     small values), so the switch asks for it only when the value log is
//     large (ThoroughAbove) or the disk is short.

// ValueLogFileSize is the size of one value-log file.
const ValueLogFileSize = 32 << 20

// ThoroughAbove is the value-log size on disk above which the switch's
// scheduled reclaim is thorough.
const ThoroughAbove = 256 << 20

// flushKey is a key whose prefix Reclaim drops to make Badger flush its
// memtables (Badger has no other way to ask for it).
var flushKey = metaKey("flush")

// Reclaim frees the space of delivered bodies: it runs value-log GC until
// nothing is worth rewriting, after flushing and compacting everything
// first if thorough. It returns how many value-log files it rewrote.
func (s *Store) Reclaim(thorough bool) (int, error) {
	const op = "store.reclaim"
	if thorough {
		if err := s.flush(); err != nil {
			return 0, fault.E(op, fault.Internal, "cannot flush the memtables", err)
		}
		if err := s.db.Flatten(2); err != nil {
			return 0, fault.E(op, fault.Internal, "cannot compact the tree", err)
		}
	}
	n := 0
	for ; n < 1024; n++ {
		err := s.db.RunValueLogGC(0.5)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			break
		}
		if err != nil {
			return n, fault.E(op, fault.Internal, "value-log GC failed", err)
		}
	}
	if n > 0 {
		s.log.Info("value log reclaimed", zap.Int("files_rewritten", n), zap.Bool("thorough", thorough))
	}
	return n, nil
}

// flush makes Badger write its memtables to tables. Badger refuses every
// write while it does (ErrBlockedWrites), so the store's own writes wait
// for it on s.writes instead of failing.
func (s *Store) flush() error {
	s.writes.Lock()
	defer s.writes.Unlock()
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(flushKey, nil) }); err != nil {
		return err
	}
	return s.db.DropPrefix(flushKey)
}

// DiskUsage is the space the store's files really take on disk (allocated
// blocks, so sparse files count for what they hold), by part: "lsm" (the
// tables), "vlog" (the value log), "wal" (the memtables' write-ahead
// logs) and "other" (manifest, key registry, locks).
func (s *Store) DiskUsage() (map[string]int64, error) {
	use := map[string]int64{"lsm": 0, "vlog": 0, "wal": 0, "other": 0}
	err := filepath.WalkDir(s.opts.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by compaction or GC meanwhile
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		part := "other"
		switch {
		case strings.HasSuffix(p, ".sst"):
			part = "lsm"
		case strings.HasSuffix(p, ".vlog"):
			part = "vlog"
		case strings.HasSuffix(p, ".mem"):
			part = "wal"
		}
		use[part] += st.Blocks * 512
		return nil
	})
	return use, err
}
