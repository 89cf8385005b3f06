package group

import (
	"encoding/binary"
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dienbao/dienbao/crypto"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// logStore keeps a node's Raft log durably: its hard state, its latest
// snapshot's metadata and its entries, in a Badger folder of its own
// (data/group/raft), every value sealed with the node's keyring (an entry
// carries a commit's records in clear: store/replica.go). Raft reads the
// log from a raft.MemoryStorage, loaded from here at start and kept short
// by compaction.
type logStore struct {
	db   *badger.DB
	ring *crypto.Keyring
	mem  *raft.MemoryStorage
}

var (
	hardKey = []byte("h")
	snapKey = []byte("s")
)

func entryKey(i uint64) []byte { return binary.BigEndian.AppendUint64([]byte("e"), i) }

func openLog(dir string, ring *crypto.Keyring) (*logStore, error) {
	o := badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).
		WithMemTableSize(8 << 20).WithNumMemtables(2).WithCompression(options.None).
		WithBlockCacheSize(4 << 20).WithIndexCacheSize(4 << 20).WithValueLogFileSize(64 << 20).
		WithNumVersionsToKeep(1).WithDetectConflicts(false)
	db, err := badger.Open(o)
	if err != nil {
		return nil, err
	}
	l := &logStore{db: db, ring: ring, mem: raft.NewMemoryStorage()}
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

func (l *logStore) seal(k, v []byte) []byte {
	if l.ring == nil {
		return v
	}
	return l.ring.Seal(nil, k, v)
}

func (l *logStore) open(item *badger.Item) ([]byte, error) {
	v, err := item.ValueCopy(nil)
	if err != nil || l.ring == nil {
		return v, err
	}
	return l.ring.Open(nil, item.Key(), v)
}

// load fills the memory storage from disk.
func (l *logStore) load() error {
	return l.db.View(func(txn *badger.Txn) error {
		if item, err := txn.Get(snapKey); err == nil {
			v, err := l.open(item)
			if err != nil {
				return err
			}
			var s pb.Snapshot
			if err := proto.Unmarshal(v, &s); err != nil {
				return err
			}
			if err := l.mem.ApplySnapshot(&s); err != nil {
				return err
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if item, err := txn.Get(hardKey); err == nil {
			v, err := l.open(item)
			if err != nil {
				return err
			}
			var hs pb.HardState
			if err := proto.Unmarshal(v, &hs); err != nil {
				return err
			}
			if err := l.mem.SetHardState(&hs); err != nil {
				return err
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		first, _ := l.mem.FirstIndex()
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("e"), PrefetchValues: true})
		defer it.Close()
		var ents []*pb.Entry
		for it.Seek(entryKey(first)); it.Valid(); it.Next() {
			v, err := l.open(it.Item())
			if err != nil {
				return err
			}
			e := &pb.Entry{}
			if err := proto.Unmarshal(v, e); err != nil {
				return err
			}
			ents = append(ents, e)
		}
		if len(ents) > 0 {
			return l.mem.Append(ents)
		}
		return nil
	})
}

// hasState says whether the node ever ran (a Raft log or hard state).
func (l *logStore) hasState() bool {
	hs, _, _ := l.mem.InitialState()
	last, _ := l.mem.LastIndex()
	return !raft.IsEmptyHardState(hs) || last > 0
}

// save persists what a Ready asks for, in one commit (one fsync), before
// its messages are sent; then the memory storage.
func (l *logStore) save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	txn := l.db.NewTransaction(true)
	defer txn.Discard()
	if snap != nil && !raft.IsEmptySnap(snap) {
		b, err := proto.Marshal(snap)
		if err != nil {
			return err
		}
		if err := txn.Set(snapKey, l.seal(snapKey, b)); err != nil {
			return err
		}
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		b, err := proto.Marshal(hs)
		if err != nil {
			return err
		}
		if err := txn.Set(hardKey, l.seal(hardKey, b)); err != nil {
			return err
		}
	}
	for _, e := range ents {
		b, err := proto.Marshal(e)
		if err != nil {
			return err
		}
		k := entryKey(e.GetIndex())
		if err := txn.Set(k, l.seal(k, b)); err != nil {
			return err
		}
	}
	if len(ents) > 0 {
		// Entries past the new last one were overwritten by a new leader.
		last, _ := l.mem.LastIndex()
		for i := ents[len(ents)-1].GetIndex() + 1; i <= last; i++ {
			if err := txn.Delete(entryKey(i)); err != nil {
				return err
			}
		}
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	if snap != nil && !raft.IsEmptySnap(snap) {
		if err := l.mem.ApplySnapshot(snap); err != nil {
			return err
		}
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		if err := l.mem.SetHardState(hs); err != nil {
			return err
		}
	}
	return l.mem.Append(ents)
}

// compact records a snapshot at index (metadata only: the records are the
// store's, streamed when a follower needs them) and drops the entries
// before keep.
func (l *logStore) compact(index, keep uint64, cs *pb.ConfState) error {
	snap, err := l.mem.CreateSnapshot(index, cs, nil)
	if err != nil {
		return err
	}
	first, _ := l.mem.FirstIndex()
	if keep > first {
		if err := l.mem.Compact(keep - 1); err != nil {
			return err
		}
	}
	b, err := proto.Marshal(snap)
	if err != nil {
		return err
	}
	wb := l.db.NewWriteBatch()
	defer wb.Cancel()
	if err := wb.Set(snapKey, l.seal(snapKey, b)); err != nil {
		return err
	}
	for i := first; i+1 < keep; i++ {
		if err := wb.Delete(entryKey(i)); err != nil {
			return err
		}
	}
	return wb.Flush()
}

func (l *logStore) close() error { return l.db.Close() }
