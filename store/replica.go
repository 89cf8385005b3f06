package store

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"go.uber.org/zap"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/ristretto/v2/z"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/fault"
)

// Replication (a replicated switch: switch/group). With Options.Replicate
// set, a commit is not committed to Badger by the commit loop: its writes
// are recorded as it is applied (wtxn), encoded as one entry with every
// sealed value opened (values travel in clear inside the group's mutually
// authenticated QUIC connections and each node's Raft log, which is itself
// sealed), and handed to Replicate, which returns once a quorum of the
// group holds the entry durably and this node has applied it (ApplyEntry).
// Every node applies the same entries in the same order, each sealing the
// values with its own keyring, so every node holds the same records; keys
// are the same everywhere because the index key that makes their tags is
// the group's (groupIndexKey, a replicated record).
//
// Entry encoding (hand-made: it is the storage layout's, version 1):
//
//	version (1 byte, 1) | count (uvarint) | count × write
//	write: kind (1 byte: 1 set to be sealed, 2 set as is, 3 delete) |
//	       key length (uvarint) | key | [value length (uvarint) | value]

const (
	entryVersion = 1
	wSeal        = 1
	wPlain       = 2
	wDelete      = 3
)

// appliedKey holds the index of the last group entry applied to this
// node's records; it is the node's own (never in an entry).
var appliedKey = metaKey("group-applied")

// groupIndexKey holds the group's index key: the one whose tags make the
// storage keys on every node (replicated, sealed by each node).
var groupIndexKey = metaKey("group-index")

// localKeys are a node's own records: never replicated, never in a
// snapshot.
var localKeys = map[string]bool{string(cleanKey): true, string(suspectKey): true, string(flushKey): true}

// wtxn is a commit's transaction; when w is set, it also records every
// write, in order, for replication.
type wtxn struct {
	*badger.Txn
	w *writes
}

type write struct {
	kind byte
	key  []byte
	val  []byte
}

type writes struct{ list []write }

// Set writes key in the transaction (v is already sealed, or empty).
func (t wtxn) Set(key, v []byte) error {
	if err := t.Txn.Set(key, v); err != nil {
		return err
	}
	if t.w != nil {
		t.w.list = append(t.w.list, write{kind: wSeal, key: key, val: v})
	}
	return nil
}

// Delete removes key in the transaction.
func (t wtxn) Delete(key []byte) error {
	if err := t.Txn.Delete(key); err != nil {
		return err
	}
	if t.w != nil {
		t.w.list = append(t.w.list, write{kind: wDelete, key: key})
	}
	return nil
}

// encode makes the group entry of w: sealed values opened with ring.
func (w *writes) encode(ring *crypto.Keyring) ([]byte, error) {
	n := 1 + binary.MaxVarintLen64
	for _, x := range w.list {
		n += 1 + 2*binary.MaxVarintLen64 + len(x.key) + len(x.val)
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(len(w.list)))
	for _, x := range w.list {
		kind, v := x.kind, x.val
		if kind == wSeal && (ring == nil || len(v) == 0) {
			kind = wPlain // an empty marker, or a store without a keyring
		}
		if kind == wSeal {
			var err error
			if v, err = ring.Open(nil, x.key, v); err != nil {
				return nil, err
			}
		}
		b = append(b, kind)
		b = binary.AppendUvarint(b, uint64(len(x.key)))
		b = append(b, x.key...)
		if kind != wDelete {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return b, nil
}

// decodeEntry calls fn for each write of a group entry.
func decodeEntry(b []byte, fn func(kind byte, key, val []byte) error) error {
	bad := func(what string) error {
		return fault.Errorf("store.replica", fault.Integrity, "a group entry is malformed: %s", what)
	}
	if len(b) == 0 || b[0] != entryVersion {
		return bad("unknown version")
	}
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return bad("count")
	}
	b = b[n:]
	field := func() ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, false
		}
		f := b[n : n+int(l)]
		b = b[n+int(l):]
		return f, true
	}
	for range count {
		if len(b) == 0 {
			return bad("short")
		}
		kind := b[0]
		b = b[1:]
		key, ok := field()
		if !ok {
			return bad("key")
		}
		var val []byte
		switch kind {
		case wSeal, wPlain:
			if val, ok = field(); !ok {
				return bad("value")
			}
		case wDelete:
		default:
			return bad("kind")
		}
		if err := fn(kind, key, val); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return nil
}

// Replica applies a group's entries and snapshots to one node's records,
// sealing with that node's keyring. The group (switch/group) holds one per
// node, beside the Store the node opens while it leads.
type Replica struct {
	dir  string
	db   *badger.DB
	ring *crypto.Keyring
}

// OpenReplica opens (creating if absent) a node's Badger folder, checked
// and mended as Open does, for a group node. The Store the node opens
// while it leads shares the handle (Options.DB). A snapshot's loading cut
// off by a crash is dropped here: the records are those from before it.
func OpenReplica(dir string, ring *crypto.Keyring) (*Replica, error) {
	if err := settleSnapshot(dir); err != nil {
		return nil, err
	}
	r := &Replica{dir: dir, ring: ring}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Replica) open() error {
	if _, err := checkFiles(Options{Dir: r.dir, Keyring: r.ring}); err != nil {
		return err
	}
	// Entries are applied without an fsync each: the node's Raft log,
	// fsynced before the entry was acknowledged, holds it until it is
	// compacted, and the log is compacted only past an index the records
	// hold on disk (Sync). After a crash, Raft gives the node again the
	// entries past the applied index its records kept.
	db, err := badger.Open(BadgerOptions(r.dir).WithSyncWrites(false))
	if err != nil {
		return fault.E("store.open", fault.Internal, "cannot open the store in "+r.dir, err)
	}
	// A group's records are of this format from the start (each node
	// writes the version for itself; a snapshot carries it too).
	k := metaKey("format")
	err = db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(k); !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.Set(k, r.seal(k, putU64(FormatVersion)))
	})
	if err != nil {
		db.Close()
		return fault.E("store.open", fault.Internal, "cannot record the store's format version", err)
	}
	r.db = db
	return nil
}

// A snapshot is loaded into a folder beside the records (dir.snapshot),
// marked complete once flushed, and then put in their place by renames;
// settleSnapshot finishes or drops what a crash cut off.
func settleSnapshot(dir string) error {
	incoming, old := dir+".snapshot", dir+".old"
	if _, err := os.Stat(filepath.Join(incoming, snapshotComplete)); err == nil {
		if _, err := os.Stat(dir); err == nil {
			if err := os.Rename(dir, old); err != nil {
				return err
			}
		}
		if err := os.Rename(incoming, dir); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(incoming); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

const snapshotComplete = "SNAPSHOT-COMPLETE"

// CollectGarbage rewrites the value-log files that are mostly garbage
// (a follower's; a leader's store does its own, Store.Reclaim).
func (r *Replica) CollectGarbage() {
	for r.db.RunValueLogGC(0.5) == nil {
	}
}

// Sync makes every entry applied so far durable (before Raft's log is
// compacted past it).
func (r *Replica) Sync() error { return r.db.Sync() }

// Keyring is the node's keyring.
func (r *Replica) Keyring() *crypto.Keyring { return r.ring }

// DB is the node's Badger handle.
func (r *Replica) DB() *badger.DB { return r.db }

// Close closes the node's Badger folder.
func (r *Replica) Close() error { return r.db.Close() }

func (r *Replica) seal(key, v []byte) []byte {
	if r.ring == nil {
		return v
	}
	return r.ring.Seal(nil, key, v)
}

// Applied is the index of the last entry applied (0: none).
func (r *Replica) Applied() (uint64, error) {
	var i uint64
	err := r.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(appliedKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err == nil && r.ring != nil {
			v, err = r.ring.Open(nil, appliedKey, v)
		}
		if err == nil && len(v) != 8 {
			err = errors.New("bad length")
		}
		if err == nil {
			i = u64(v)
		}
		return err
	})
	return i, err
}

// ApplyEntry applies group entry data, at index, in one commit. An empty
// data (Raft's own entries) records the index only. While the leader's
// store has Badger's writes blocked (Reclaim flushing its memtables), it
// waits.
func (r *Replica) ApplyEntry(index uint64, data []byte) error {
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := r.applyEntry(index, data)
		if !errors.Is(err, badger.ErrBlockedWrites) {
			return err
		}
		time.Sleep(wait)
	}
}

func (r *Replica) applyEntry(index uint64, data []byte) error {
	txn := r.db.NewTransaction(true)
	defer txn.Discard()
	if len(data) > 0 {
		err := decodeEntry(data, func(kind byte, key, val []byte) error {
			switch kind {
			case wSeal:
				return txn.Set(key, r.seal(key, val))
			case wPlain:
				return txn.Set(key, val)
			default:
				return txn.Delete(key)
			}
		})
		if err != nil {
			return err
		}
	}
	if err := txn.Set(appliedKey, r.seal(appliedKey, putU64(index))); err != nil {
		return err
	}
	return txn.Commit()
}

// snapshotMagic starts a snapshot stream.
const snapshotMagic = "dienbao-snapshot/1\n"

// WriteSnapshot writes every record but the node's own, values opened, as
// of one moment (Badger's Stream at one read timestamp), and returns the
// index of the last entry applied at that moment.
func (r *Replica) WriteSnapshot(w io.Writer) (uint64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return 0, err
	}
	var applied uint64
	st := r.db.NewStream()
	st.LogPrefix = "dienbao.snapshot"
	st.Send = func(buf *z.Buffer) error {
		list, err := badger.BufferToKVList(buf)
		if err != nil {
			return err
		}
		for _, kv := range list.Kv {
			if err := r.writeKV(bw, kv, &applied); err != nil {
				return err
			}
		}
		return nil
	}
	if err := st.Orchestrate(context.Background()); err != nil {
		return 0, err
	}
	// The end: a zero-length key.
	if _, err := bw.Write([]byte{0, 0}); err != nil {
		return 0, err
	}
	return applied, bw.Flush()
}

func (r *Replica) writeKV(w *bufio.Writer, kv *pb.KV, applied *uint64) error {
	key, v := kv.Key, kv.Value
	if localKeys[string(key)] {
		return nil
	}
	kind := byte(wPlain)
	if r.ring != nil && len(v) > 0 {
		var err error
		if v, err = r.ring.Open(nil, key, v); err != nil {
			return fault.E("store.snapshot", fault.Integrity, fmt.Sprintf("a record (prefix %q) does not open", key[:1]), err)
		}
		kind = wSeal
	}
	if string(key) == string(appliedKey) {
		*applied = u64(v)
	}
	var hdr [1 + 2*binary.MaxVarintLen64]byte
	hdr[0] = kind
	n := 1 + binary.PutUvarint(hdr[1:], uint64(len(key)))
	n += binary.PutUvarint(hdr[n:], uint64(len(v)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	if _, err := w.Write(key); err != nil {
		return err
	}
	_, err := w.Write(v)
	return err
}

// LoadSnapshot replaces every record with those of a snapshot stream and
// returns the index of the last entry applied in it. The records are
// loaded beside the current ones and put in their place only once
// complete: a crash meanwhile leaves the node as it was. It must not run
// while a Store is open on the node.
func (r *Replica) LoadSnapshot(rd io.Reader) (uint64, error) {
	br := bufio.NewReaderSize(rd, 1<<20)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return 0, fault.Errorf("store.snapshot", fault.Invalid, "not a snapshot stream")
	}
	incoming := r.dir + ".snapshot"
	if err := os.RemoveAll(incoming); err != nil {
		return 0, err
	}
	db, err := badger.Open(BadgerOptions(incoming))
	if err != nil {
		return 0, err
	}
	applied, err := r.load(db, br)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = writeSynced(filepath.Join(incoming, snapshotComplete), nil)
	}
	if err != nil {
		os.RemoveAll(incoming)
		return 0, err
	}
	if err := r.db.Close(); err != nil {
		return 0, err
	}
	if err := settleSnapshot(r.dir); err != nil {
		return 0, err
	}
	return applied, r.open()
}

func (r *Replica) load(db *badger.DB, br *bufio.Reader) (uint64, error) {
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	var applied uint64
	for {
		kind, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		kl, err := binary.ReadUvarint(br)
		if err != nil {
			return 0, err
		}
		if kind == 0 && kl == 0 {
			break
		}
		vl, err := binary.ReadUvarint(br)
		if err != nil {
			return 0, err
		}
		if kl > 1<<16 || vl > 64<<20 || (kind != wSeal && kind != wPlain) {
			return 0, fault.Errorf("store.snapshot", fault.Invalid, "a snapshot record is malformed")
		}
		buf := make([]byte, kl+vl)
		if _, err := io.ReadFull(br, buf); err != nil {
			return 0, err
		}
		key, v := buf[:kl], buf[kl:]
		if string(key) == string(appliedKey) && len(v) == 8 {
			applied = u64(v)
		}
		if kind == wSeal {
			v = r.seal(key, v)
		}
		if err := wb.Set(key, v); err != nil {
			return 0, err
		}
	}
	return applied, wb.Flush()
}

// ErrFenced is the answer of a node's store after a group entry failed:
// it commits nothing more until it is opened again.
var ErrFenced = fault.E("store.commit", fault.Unavailable,
	"this node is no longer sure to lead its group; nothing was accepted: retry (the client finds the leader)")

// replicate hands the commit's writes to the group. On failure the store
// is fenced: the entry may still be committed by the group later, so this
// node's counters and tree may be behind its records.
func (s *Store) replicate(w *writes) error {
	entry, err := w.encode(s.ring)
	if err == nil {
		err = s.opts.Replicate(entry)
	}
	if err != nil {
		s.fenced = true
		s.log.Warn("group entry not replicated; this node commits nothing more until it leads again", zap.Error(err))
	}
	return err
}

// joinGroup reads the group's index key, making it on the group's first
// start (one entry), and builds the keyspace on it.
func (s *Store) joinGroup() error {
	var key []byte
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := s.get(txn, groupIndexKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		key = v
		return err
	})
	if err != nil {
		return fault.E("store.open", fault.Integrity, "cannot read the group's index key", err)
	}
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		w := &writes{list: []write{{kind: wSeal, key: groupIndexKey, val: s.sealValue(groupIndexKey, key)}}}
		entry, err := w.encode(s.ring)
		if err == nil {
			err = s.opts.Replicate(entry)
		}
		if err != nil {
			return fault.E("store.open", fault.Unavailable, "cannot record the group's index key", err)
		}
	}
	s.ks = newKeyspace(key)
	return nil
}
