// Package auditlog keeps the switch's audit log inside the store: the
// leaves (one canonical JSON entry each, package switch/audit's format),
// their indexes by telegram and by agency, the Merkle tree over them, and
// the signed checkpoints, with the reads auditors need (entries, queries,
// inclusion and consistency proofs).
//
// It owns its part of the storage layout (keys a, I, Y, n and c) but not
// the storage: it reads and writes through Txn, a small interface the
// store implements over one Badger transaction, sealing and opening values
// on the way. Appends ride the store's commits, so an entry is durable in
// the same transaction as the change it records. The log's size and
// checkpoint bookkeeping are the store's counters; the tree is the
// commit loop's, owned by Log.
package auditlog

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"golang.org/x/mod/sumdb/note"
)

// Txn is what the log needs of one storage transaction: a commit's (all
// methods) or a read snapshot's (Get and the scans). Values are sealed by
// Set and opened by Get and Values; a value that fails to open is an
// error (Get) or given with its key (Values).
type Txn interface {
	// Get returns the value at key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Set writes a sealed value at key.
	Set(key, value []byte) error
	// Keys calls fn with the keys under prefix from seek on (backwards
	// from seek when reverse), until fn returns false or an error.
	Keys(prefix, seek []byte, reverse bool, fn func(key []byte) (bool, error)) error
	// Values calls fn with the keys under prefix from seek on (backwards
	// from seek when reverse) and their values (or why a value failed to
	// open), in order, until fn returns false or an error.
	Values(prefix, seek []byte, reverse bool, fn func(key, value []byte, openErr error) (bool, error)) error
}

// ErrNotFound is Txn.Get's answer for an absent key.
var ErrNotFound = errors.New("not found")

// Key prefixes of the log's records.
const (
	pLeaf       = 'a' // a<index:8> → audit leaf
	pByID       = 'I' // I<telegram tag:16><batch tag:8> → indices of a telegram's entries (index.go)
	pByAgency   = 'Y' // Y<agency tag:16><first index:8> → indices of entries naming an agency
	pNode       = 'n' // n<level:1><group:8> → audit tree hashes
	pCheckpoint = 'c' // c<size:8> → signed checkpoint
)

// LeafKey is the key of the leaf at index (for tests and tools that
// damage or inspect the stored log).
func LeafKey(index uint64) []byte { return binary.BigEndian.AppendUint64([]byte{pLeaf}, index) }

// Tags are the store's opaque tags for what the log indexes by, so that
// no key holds an agency address or a telegram ID (whose first bytes are
// its filing time).
type Tags struct {
	Agency   func(telegram.Address) []byte
	Telegram func(telegram.ID) []byte
	// Batch is 8 bytes naming one index record of a telegram: the one
	// whose first entry is at index first (index.go).
	Batch func(id telegram.ID, first uint64) []byte
}

func (t Tags) idPrefix(id telegram.ID) []byte { return append([]byte{pByID}, t.Telegram(id)...) }

func (t Tags) agencyPrefix(a telegram.Address) []byte {
	return append([]byte{pByAgency}, t.Agency(a)...)
}

func checkpointKey(size uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{pCheckpoint}, size)
}

// Log is an open audit log.
type Log struct {
	// tags are the store's opaque tags for index keys.
	tags Tags
	// tree is the Merkle tree as of the last commit, owned by the commit
	// loop; stale says a failed commit left it ahead of the store.
	tree   *tree
	stale  bool
	batch  batch // index entries of the current commit
	signer note.Signer
	vkey   string
}

// Append writes e (its Index and At set by the caller: the next index, the
// commit's time) as the next entry in tx: the leaf and the tree nodes it
// completes; its index entries are written by Flush, once per commit.
// Commit-loop only.
func (l *Log) Append(tx Txn, e audit.Entry) error {
	leaf, err := audit.Leaf(e)
	if err != nil {
		return fault.E("store.audit", fault.Internal, "encode an audit entry", err)
	}
	if err := tx.Set(LeafKey(e.Index), leaf); err != nil {
		return err
	}
	l.batch.add(e.ID, e.From, e.To, e.Index)
	return l.appendLeaf(tx, audit.LeafHash(leaf))
}

// Leaves calls fn with up to limit stored leaves from index from on, in
// index order, as stored (fn must not keep leaf). A leaf that fails its
// integrity check ends the walk with an Integrity error naming its index.
func Leaves(tx Txn, from uint64, limit int, fn func(index uint64, leaf []byte) error) error {
	n := 0
	if limit <= 0 {
		return nil
	}
	return tx.Values([]byte{pLeaf}, LeafKey(from), false, func(k, v []byte, openErr error) (bool, error) {
		index := binary.BigEndian.Uint64(k[1:])
		if openErr != nil {
			return false, fault.E("store.audit", fault.Integrity, "audit entry "+itoa(index)+" fails its integrity check", openErr)
		}
		if err := fn(index, v); err != nil {
			return false, err
		}
		n++
		return n < limit, nil
	})
}

// At reads one audit entry and its leaf.
func At(tx Txn, index uint64) (audit.Entry, []byte, error) {
	v, err := tx.Get(LeafKey(index))
	if err != nil {
		return audit.Entry{}, nil, fault.E("store.audit", fault.Integrity, "audit entry "+itoa(index)+" is missing or fails its integrity check", err)
	}
	e, err := audit.ParseLeaf(v)
	if err != nil {
		return audit.Entry{}, nil, fault.E("store.audit", fault.Integrity, "audit entry "+itoa(index)+" is malformed", err)
	}
	return e, v, nil
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
