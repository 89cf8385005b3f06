package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/store/auditlog"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Options configure a Store.
type Options struct {
	Dir    string      // the Badger folder
	Logger *zap.Logger // nil: no logging
	// MaxBatch bounds the operations grouped into one commit (default 1024).
	MaxBatch int
	// MaxFilings bounds the new work (filings and the like) in one commit
	// (default 256): a commit stays short, so acknowledgements, which go
	// first, are not held up behind a flood of filings.
	MaxFilings int
	// OnCommit, if set, is called by the commit loop after each successful
	// commit with what became durable. It must not block.
	OnCommit func([]Event)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Keyring seals every stored value and supplies Badger's encryption
	// key. Nil stores plaintext: only for tests and the side-by-side
	// benchmark; switchd always sets one.
	Keyring *crypto.Keyring
	// OnBatch, if set, is called by the commit loop with the number of
	// operations each commit wrote (its group-commit batch). It must not
	// block.
	OnBatch func(ops int)
	// Origin names the audit log in its checkpoints (a C2SP origin line:
	// no spaces, no '+'). It is fixed when the store is created, with the
	// log's Ed25519 signing key; later values are ignored. Default
	// "dienbao/switch".
	Origin string
	// CheckpointCopy is a file outside Dir where the latest checkpoint is
	// copied; AcceptLoss opens a log shorter than that copy (see
	// lastcheckpoint.go).
	CheckpointCopy string
	AcceptLoss     bool
	// Retention is how long a settled telegram is kept for retrieval and
	// resending (journal.go): 0 means DefaultRetention (30 days); a
	// negative value keeps no body once settled.
	Retention time.Duration

	// ArchiveDir is the folder of the audit log's archive files
	// (archive.go); empty: archiving is not available.
	ArchiveDir string
	// Restored, at the first open of a store switchd restore has just
	// written, is the backup's manifest: the store records the restore
	// in the audit log and flags every queued telegram possible duplicate
	// (RestoredBelow).
	Restored *BackupInfo

	// DB, if set, is the node's Badger handle, opened by OpenReplica and
	// shared with the group (switch/group); Close leaves it open unless
	// CloseDB.
	DB      *badger.DB
	CloseDB bool
	// Replicate, if set, makes the store one node of a replicated switch:
	// each commit is handed to it as a group entry (replica.go) instead of
	// being committed here, and it returns once a quorum holds the entry
	// and this node has applied it to DB, or with the error that kept it
	// from doing so. After an error the store commits nothing more
	// (ErrFenced): its view of the records may be behind the group's.
	Replicate func(entry []byte) error

	// onMigratePage, in tests, is called after each page of a format
	// migration with the records moved so far; an error stops the open
	// there, as a crash would.
	onMigratePage func(moved int) error
}

// Store is the durable state. Reads may run concurrently; all writes go
// through the commit loop.
type Store struct {
	// hooks are OnCommit and OnBatch, from Options or Observe.
	hooks atomic.Pointer[hooks]
	db    *badger.DB
	ring  *crypto.Keyring
	ks    keyspace
	opts  Options
	log   *zap.Logger
	ids   *telegram.IDGen
	nums  numbers // filing numbers remembered (number.go)
	// figures are the sub-queues' figures as last written (counts.go;
	// commit loop only).
	figures map[SubQueue]Counts
	arch    archives   // audit archive files (archive.go)
	scrub   scrubState // scrub.go
	ops     chan *op
	// urgent is the FLASH lane of the commit loop.
	urgent chan *op
	// lazy is the lane of work that rides the next commit (attempts,
	// routine acknowledgements).
	lazy chan *op
	st   state // owned by the commit loop
	// alog is the audit log (its tree is the commit loop's).
	alog *auditlog.Log
	// lostWrites says a commit failed in this run (owned by the commit
	// loop, read at Close): attempts may be lost as in a crash, so the
	// stop is not recorded as clean.
	lostWrites bool
	// fenced: a group entry failed (Options.Replicate); nothing more is
	// committed (commit loop only).
	fenced bool
	// suspectBelow: see SuspectBelow.
	suspectBelow uint64
	// restoredBelow: see RestoredBelow.
	restoredBelow uint64
	// openedAt is the last audit time when the store was opened.
	openedAt int64
	// copied is the size of the checkpoint copy on file; shortened says
	// why the store was opened short (AcceptLoss), to be audited.
	copyMu    sync.Mutex
	copied    uint64
	shortened string
	altered   []uint64       // audit entries found altered at Open
	remote    remotes        // agencies served by other switches (remote.go)
	listed    listedAgencies // agencies the directory has listed (agencies.go)
	// mu guards shut and the lanes' closing: submitters share it, so a
	// FLASH never waits for a routine submitter blocked on a full lane.
	mu   sync.RWMutex
	shut bool
	// views is held (shared) by every read transaction, and exclusively
	// while a data key is retired: a read that started before a re-seal
	// may still see records sealed under the old key in its snapshot.
	views       sync.RWMutex
	viewsClosed bool           // set by Close under views: view refuses
	streams     sync.WaitGroup // backups streaming from a snapshot: Close waits for them
	// writes is held (shared) by every write to Badger, and exclusively
	// while Reclaim makes Badger flush its memtables: Badger refuses
	// writes meanwhile (ErrBlockedWrites) rather than making them wait.
	writes sync.RWMutex
	done   chan struct{}
	// splits counts batches split because they exceeded Badger's
	// transaction limits.
	splits atomic.Int64
	// delaySum and delayN sum, since QueueDelay last read them, how long
	// the oldest filing (other than a FLASH) of each commit waited for the
	// commit loop to take it, in nanoseconds.
	delaySum, delayN atomic.Int64
}

// state is what the commit loop allocates from. It is copied per commit
// and kept only if the commit succeeds.
type state struct {
	qseq, rseq uint64
	filings    uint64 // telegrams numbered (number.go)
	aseq       uint64 // audit entries: the tree size
	at         int64  // the last audit time (Unix ns): entry times never go back
	cpSize     uint64 // size of the latest checkpoint, if hasCP
	hasCP      bool
}

// BadgerOptions are the Badger settings the store runs with.
//
// Durability depends on them: SyncWrites makes every commit fsync before
// it returns, and checksum verification refuses silently corrupted blocks
// and values when they are read (whole tables are checked by the store
// itself: tables.go).
//
// Memory is bounded by them, independent of the backlog (measured: 1,000,000
// queued telegrams, 163 MiB peak): three 16 MiB memtables, each with a
// memory-mapped write-ahead log of the same size (Badger's default is five
// of 64 MiB); two compactors (Badger's minimum); no compression (its block
// buffers alone took some 250 MiB at a million telegrams, and sealed values
// do not compress); tables of the same 2 MiB at every level, because each
// compaction holds up to eight table builders and the default doubles table
// size per level; 16 MiB each for the block cache (default 256 MiB) and for
// table indexes and bloom filters (default: all in memory, growing with the
// data). Ten level-0 tables wait for compaction (stall at twenty), into a
// 64 MiB base level: fewer, larger compactions write less per telegram
// (measured: 11 KB instead of 14 KB) and leave the disk to the WAL's
// fsyncs, which every ACCEPTED waits for. Badger's own encryption stays
// off: see the package doc.
func BadgerOptions(dir string) badger.Options {
	o := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithChecksumVerificationMode(options.OnBlockRead). // whole tables: tables.go, before Badger opens them, and Scrub
		WithVerifyValueChecksum(true).
		WithDetectConflicts(false). // one writer: the commit loop
		WithValueThreshold(4 << 10).
		WithNumVersionsToKeep(1).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		WithNumCompactors(2).
		WithCompression(options.None).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(16 << 20).
		WithNumLevelZeroTables(10).
		WithNumLevelZeroTablesStall(20).
		WithBaseLevelSize(64 << 20).
		WithValueLogFileSize(ValueLogFileSize).
		WithLogger(nil)
	o.TableSizeMultiplier = 1
	return o
}

// hooks are the commit loop's observers.
type hooks struct {
	onCommit func([]Event)
	onBatch  func(int)
}

// Observe sets the commit loop's observers, in place of Options.OnCommit
// and OnBatch (nil: none): for the one who opened the store to give its
// events to what was built on it. Neither may block.
func (s *Store) Observe(onCommit func([]Event), onBatch func(ops int)) {
	s.hooks.Store(&hooks{onCommit: onCommit, onBatch: onBatch})
}

// Open opens (creating if absent) the store in opts.Dir and starts its
// commit loop.
func Open(opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.MaxFilings <= 0 {
		opts.MaxFilings = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Origin == "" {
		opts.Origin = "dienbao/switch"
	}
	var damage []string
	db := opts.DB
	if db == nil {
		var err error
		if damage, err = checkFiles(opts); err != nil {
			return nil, err
		}
		if db, err = badger.Open(BadgerOptions(opts.Dir)); err != nil {
			return nil, fault.E("store.open", fault.Internal, "cannot open the store in "+opts.Dir, err)
		}
	}
	s := &Store{db: db, ring: opts.Keyring, ks: keyspaceOf(opts.Keyring), opts: opts, log: opts.Logger, ids: telegram.NewIDGen(),
		ops: make(chan *op, 4096), urgent: make(chan *op, 1024), lazy: make(chan *op, 4096), done: make(chan struct{})}
	s.Observe(opts.OnCommit, opts.OnBatch)
	closeDB := db.Close
	if opts.DB != nil {
		// The db is the group's: closing the store leaves it open.
		closeDB = func() error { return nil }
	}
	if opts.Replicate != nil {
		if err := s.joinGroup(); err != nil {
			return nil, err
		}
	}
	upg, err := s.upgrade()
	if err != nil {
		closeDB()
		return nil, err
	}
	if err := db.View(func(txn *badger.Txn) error {
		var err error
		if s.st.qseq, err = s.getU64(txn, metaKey("qseq")); err != nil {
			return err
		}
		if s.st.rseq, err = s.getU64(txn, metaKey("rseq")); err != nil {
			return err
		}
		if s.st.filings, err = s.getU64(txn, metaKey("filings")); err != nil {
			return err
		}
		if s.restoredBelow, err = s.getU64(txn, restoredKey); err != nil {
			return err
		}
		s.st.aseq, err = s.getU64(txn, metaKey("aseq"))
		return err
	}); err != nil {
		closeDB()
		return nil, fault.E("store.open", fault.Integrity, "cannot read the store's counters", err)
	}
	if err := s.loadArchives(); err != nil {
		closeDB()
		return nil, fault.E("store.open", fault.Integrity, "cannot read the audit archive's records", err)
	}
	if err := s.recoverStop(); err != nil {
		closeDB()
		return nil, err
	}
	err = s.openAudit()
	if err == nil {
		err = s.checkShortened()
	}
	if err != nil {
		closeDB()
		return nil, err
	}
	s.openedAt = s.st.at
	go s.loop()
	if s.shortened != "" {
		if err := s.Record(AuditEntry{Actor: "switch", Event: AuditIntegrity, Reason: s.shortened}); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.recordRestore(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.recordUpgrade(upg); err != nil {
		s.Close()
		return nil, err
	}
	for _, reason := range damage {
		if err := s.Record(AuditEntry{Actor: "switch", Event: AuditIntegrity, Reason: reason}); err != nil {
			s.Close()
			return nil, err
		}
	}
	for _, i := range s.altered {
		reason := fmt.Sprintf("audit entry %d no longer matches the tree signed at the last checkpoint", i)
		s.log.Error("audit log altered", zap.Uint64("index", i))
		if err := s.Record(AuditEntry{Actor: "switch", Event: AuditIntegrity, Reason: reason}); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// view runs fn in a read transaction, holding off key retirement.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	if err := s.holdViews(); err != nil {
		return err
	}
	defer s.views.RUnlock()
	return s.db.View(fn)
}

// holdViews takes views shared for a read, unless Close has begun (Badger
// panics on a read of a closed store): the caller releases it.
func (s *Store) holdViews() error {
	s.views.RLock()
	if s.viewsClosed {
		s.views.RUnlock()
		return fault.E("store", fault.Unavailable, "the store is closed")
	}
	return nil
}

// closeViews waits for the reads under way (a backup) to finish and
// refuses any later one (Badger panics on a read of a closed store).
func (s *Store) closeViews() {
	s.views.Lock()
	s.viewsClosed = true
	s.views.Unlock()
	s.streams.Wait()
}

// DB exposes the Badger handle for tests and maintenance tools.
func (s *Store) DB() *badger.DB { return s.db }

// Close stops accepting writes, finishes those already submitted, and
// closes Badger.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.shut = true
	close(s.ops)
	close(s.urgent)
	close(s.lazy)
	s.mu.Unlock()
	<-s.done
	s.closeViews()
	if s.opts.Replicate != nil {
		// A node of a group: the next leader treats what was in flight as
		// after a crash whatever happens here (joinGroup).
	} else if s.lostWrites {
		s.log.Warn("commits failed in this run; the next start will treat it as a crash")
	} else if err := s.markClean(); err != nil {
		s.log.Error("cannot record the clean stop; the next start will treat this as a crash", zap.Error(err))
	}
	if s.opts.DB != nil && !s.opts.CloseDB {
		return nil
	}
	return s.db.Close()
}

func (s *Store) getU64(txn *badger.Txn, key []byte) (uint64, error) {
	v, err := s.get(txn, key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	return u64(v), err
}

func keyspaceOf(r *crypto.Keyring) keyspace {
	if r == nil {
		return newKeyspace(nil)
	}
	return newKeyspace(r.IndexKey())
}

// sealValue seals v for storage under key.
func (s *Store) sealValue(key, v []byte) []byte {
	if s.ring == nil {
		return v
	}
	return s.ring.Seal(nil, key, v)
}

// value returns the opened value of item. A value that fails to open is
// an Integrity error.
func (s *Store) value(item *badger.Item) ([]byte, error) {
	v, err := item.ValueCopy(nil)
	if err != nil || s.ring == nil {
		return v, err
	}
	return s.ring.Open(nil, item.Key(), v)
}

// get returns the opened value at key (badger.ErrKeyNotFound if none).
func (s *Store) get(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return s.value(item)
}

// set seals v and writes it at key in the commit's transaction.
func (c *commitCtx) set(key, v []byte) error { return c.txn.Set(key, c.s.sealValue(key, v)) }

// checkFiles checks and mends the store's files before Badger opens them
// (empty logs left by a crash, damaged tables and logs), holding Badger's
// own lock on the folder meanwhile: a store another process has open is
// not touched, and it returns Badger's refusal. It returns what is to be
// recorded in the audit log.
func checkFiles(opts Options) ([]string, error) {
	dir, err := os.Open(opts.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a new store
	}
	if err != nil {
		return nil, fault.E("store.open", fault.Internal, "cannot read the store folder "+opts.Dir, err)
	}
	defer dir.Close() // releases the lock, for Badger to take
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fault.E("store.open", fault.Unavailable, "the store in "+opts.Dir+" is open in another process", err)
	}
	if err := removeEmptyLogs(opts.Dir, opts.Logger); err != nil {
		return nil, fault.E("store.open", fault.Internal, "cannot read the store folder "+opts.Dir, err)
	}
	if n, err := verifyTables(opts.Dir, BadgerOptions(opts.Dir)); err != nil {
		return nil, err
	} else if n > 0 && opts.Logger != nil {
		opts.Logger.Info("store tables checked at start", zap.Int("tables", n))
	}
	return checkLogs(opts.Dir, opts.AcceptLoss, opts.Logger, filedIDs(opts.Keyring))
}

// removeEmptyLogs deletes the empty write-ahead (.mem) and value-log
// (.vlog) files a crash can leave between creating such a file and sizing
// it. Badger v4.9.6 refuses to open a folder holding one ("Create a new
// file", dgraph-io/badger#2207, fix pending in #2331). An empty file holds
// no entry and no value any entry can point to, so nothing is lost.
func removeEmptyLogs(dir string, log *zap.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".mem") && !strings.HasSuffix(name, ".vlog") {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		log.Warn("removing an empty log file left by a crash", zap.String("file", name))
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}
