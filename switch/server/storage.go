package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Storage pressure. The switch watches the free space of the filesystem
// that holds its store, at every timer tick:
//
//   - above LowWatermark, everything is filed;
//   - between LowWatermark and CriticalWatermark, filings are refused
//     by precedence, ROUTINE first: the band is cut in three, and the
//     lower the free space, the more precedences are refused (ROUTINE,
//     then PRIORITY, then IMMEDIATE); FLASH is still filed;
//   - below CriticalWatermark, nothing is filed.
//
// Delivery goes on at every level (an acknowledgement frees a body's
// space once it is reclaimed), a thorough reclaim starts when pressure
// begins, and each change of level is logged, audited once (event
// storage) and shown in the metrics. A refused filing gets "switch
// storage full", kind Unavailable (retry later), and is not audited one
// by one: on a full disk the audit log must not be what fills it.
//
// Badger writes through memory-mapped files, which on a full filesystem
// kill the process with SIGBUS rather than return an error. The switch
// keeps a reserve file of Reserve bytes, allocated for real, beside the
// store, and deletes it when free space falls below the critical
// watermark (at a tick, and before the store is opened, so that a switch
// stopped on a disk that something else filled starts), so that Badger
// has real room to keep delivering, acknowledging and auditing. While the
// reserve is released nothing is filed, whatever the free space: that
// room is Badger's. It is allocated again once free space is at least the
// critical watermark plus the reserve.

// reserveFile is the reserve's name, beside the store folder.
const reserveFile = "dienbao.reserve"

// pressureLevel is how many precedences are refused: 0 none, 1 ROUTINE,
// 2 and PRIORITY, 3 and IMMEDIATE, 4 everything.
type pressureLevel int32

// refuses reports whether a filing of precedence p is refused at level l
// (an invalid precedence is left to the filing checks).
func (l pressureLevel) refuses(p telegram.Precedence) bool {
	return l > 0 && p.Valid() && p.Rank() >= 4-int(l)
}

func (l pressureLevel) String() string {
	switch l {
	case 0:
		return "every filing accepted"
	case 4:
		return "every filing refused"
	}
	return fmt.Sprintf("%s and below refused", telegram.PrecedenceOfRank(4-int(l)))
}

// storage is the server's view of its disk. Free space is measured at
// every File request (one statfs; a burst of large bodies can fill a disk
// between two timer ticks) and at every tick.
type storage struct {
	level    atomic.Int32
	free     atomic.Int64
	refused  atomic.Int64 // filings refused for lack of space
	reclaims atomic.Int32 // 1 while a reclaim runs
	released atomic.Bool  // the reserve was given to the store and is not back
	// Timer loop only: the level last logged and audited, and the time of
	// the last scheduled reclaim.
	told pressureLevel
	last time.Time
}

// measure reads the free space and sets the pressure level from it.
func (s *Server) measure() (int64, pressureLevel, error) {
	free, err := s.freeBytes()
	if err != nil {
		return 0, pressureLevel(s.disk.level.Load()), err
	}
	lvl := s.levelFor(free)
	s.disk.free.Store(free)
	s.disk.level.Store(int32(lvl))
	return free, lvl, nil
}

// freeBytes is the space available to the switch on the store's filesystem.
func (s *Server) freeBytes() (int64, error) {
	var st unix.Statfs_t
	dir := s.cfg.DataDir
	for {
		err := unix.Statfs(dir, &st)
		if err == nil {
			return int64(st.Bavail) * int64(st.Bsize), nil
		}
		if !errors.Is(err, unix.ENOENT) || filepath.Dir(dir) == dir {
			return 0, err
		}
		dir = filepath.Dir(dir) // not created yet: its parent's filesystem
	}
}

func (s *Server) levelFor(free int64) pressureLevel {
	low, crit := s.cfg.LowWatermark, s.cfg.CriticalWatermark
	switch {
	case s.disk.released.Load():
		return 4
	case free >= low:
		return 0
	case free < crit:
		return 4
	}
	return pressureLevel(1 + 3*(low-free)/(low-crit+1))
}

// reservePath is where the reserve lives: beside the store, on its
// filesystem.
func (s *Server) reservePath() string { return filepath.Join(filepath.Dir(s.cfg.DataDir), reserveFile) }

// ReleaseReserve runs before the store is opened, so that a switch that
// stopped on a full disk starts: it deletes the reserve beside cfg's data
// folder if free space is below the critical watermark, and reports
// whether it did (pass that on as Config.ReserveReleased).
func ReleaseReserve(cfg Config) bool {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.defaults()
	s := &Server{cfg: cfg, log: cfg.Logger}
	free, err := s.freeBytes()
	return err == nil && s.releaseReserve(free)
}

// releaseReserve deletes the reserve if free space is below the critical
// watermark, and reports whether it did.
func (s *Server) releaseReserve(free int64) bool {
	if free >= s.cfg.CriticalWatermark {
		return false
	}
	err := os.Remove(s.reservePath())
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		s.log.Error("cannot release the storage reserve", zap.Error(err))
		return false
	}
	s.disk.released.Store(true)
	s.log.Warn("storage nearly full: reserve released for the store", zap.Int64("free_bytes", free),
		zap.Int64("reserve_bytes", s.cfg.Reserve))
	return true
}

// keepReserve allocates the reserve when it is missing and there is room
// for it above the critical watermark, and reports whether it did.
func (s *Server) keepReserve(free int64) bool {
	if s.cfg.Reserve <= 0 || free < s.cfg.CriticalWatermark+s.cfg.Reserve {
		return false
	}
	p := s.reservePath()
	if fi, err := os.Stat(p); err == nil && fi.Size() >= s.cfg.Reserve {
		s.disk.released.Store(false)
		return false
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	if err == nil {
		err = unix.Fallocate(int(f.Fd()), 0, 0, s.cfg.Reserve)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		s.log.Error("cannot allocate the storage reserve", zap.Error(err))
		os.Remove(p)
		return false
	}
	if s.disk.released.Swap(false) {
		s.log.Info("storage reserve allocated again", zap.Int64("free_bytes", free), zap.Int64("reserve_bytes", s.cfg.Reserve))
	}
	return true
}

// watchStorage runs at every timer tick: it measures free space, releases
// or restores the reserve, sets the pressure level, and starts reclaiming
// when pressure begins or a scheduled reclaim is due.
func (s *Server) watchStorage(now time.Time) {
	free, lvl, err := s.measure()
	if err != nil {
		s.log.Error("cannot read the free space of the store's filesystem", zap.Error(err))
		return
	}
	if s.releaseReserve(free) || s.keepReserve(free) {
		if free, lvl, err = s.measure(); err != nil {
			return
		}
	}
	old := s.disk.told
	s.disk.told = lvl
	if lvl != old {
		s.log.Warn("storage pressure changed", zap.Stringer("level", lvl), zap.Int64("free_bytes", free),
			zap.Int64("low_watermark", s.cfg.LowWatermark), zap.Int64("critical_watermark", s.cfg.CriticalWatermark))
		if err := s.store.Record(store.AuditEntry{Actor: s.cfg.Name, Event: audit.Storage,
			Reason: fmt.Sprintf("%s (%d bytes free)", lvl, free)}); err != nil {
			s.log.Error("cannot audit a storage pressure change", zap.Error(err))
		}
	}
	due := now.Sub(s.disk.last) >= s.cfg.ReclaimInterval
	if lvl > old || due {
		s.disk.last = now
		s.reclaim(lvl > 0)
	}
}

// reclaim frees settled bodies' space in the background, one run at a
// time; under pressure it purges the journal first and is thorough, as it
// is when the value log is large.
func (s *Server) reclaim(pressed bool) {
	if !s.disk.reclaims.CompareAndSwap(0, 1) {
		return
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		s.disk.reclaims.Store(0)
		return
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		defer s.disk.reclaims.Store(0)
		thorough := pressed
		if pressed {
			s.purgeJournal()
		}
		if use, err := s.store.DiskUsage(); err == nil && use["vlog"] > store.ThoroughAbove {
			thorough = true
		}
		if _, err := s.store.Reclaim(thorough); err != nil {
			s.log.Error("reclaiming the store's space failed", zap.Error(err))
		}
	}()
}

// purgeJournal empties the journal of settled telegrams, oldest first,
// when the disk is short of space: telegrams in custody come first, a
// copy kept for retrieval second. Each purge is audited with the reason.
func (s *Server) purgeJournal() {
	total := 0
	for {
		n, err := s.store.PurgeEarly(256, "the disk is short of space")
		if err != nil {
			s.log.Error("cannot purge the journal", zap.Error(err))
			break
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total > 0 {
		s.log.Warn("journal purged early: the disk is short of space", zap.Int("telegrams", total))
	}
}

// storageRefusesAll returns the error for a batch whose every filing is
// refused for lack of space (checked before any body is read), or nil.
func (s *Server) storageRefusesAll(fs []wire.Filing) error {
	_, lvl, err := s.measure()
	if err != nil {
		s.log.Error("cannot read the free space of the store's filesystem", zap.Error(err))
	}
	for _, f := range fs {
		if !lvl.refuses(f.Precedence) {
			return nil
		}
	}
	s.disk.refused.Add(int64(len(fs)))
	return fault.Errorf("file", fault.Unavailable, "switch storage full: %s; nothing was filed, retry later", lvl)
}

// storageRefuses returns the error for a filing of precedence p refused for
// lack of space, or nil.
func (s *Server) storageRefuses(p telegram.Precedence) error {
	lvl := pressureLevel(s.disk.level.Load())
	if !lvl.refuses(p) {
		return nil
	}
	s.disk.refused.Add(1)
	return fault.Errorf("file", fault.Unavailable, "switch storage full: %s filings are refused until space is freed (%s); retry later", p, lvl)
}
