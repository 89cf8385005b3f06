package auditlog

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"golang.org/x/mod/sumdb/note"
)

// Keys of the log's signing key pair, among the store's meta records.
const (
	SigningKeyName  = "notekey"
	VerifierKeyName = "notevkey"
)

// Opened is what Open found besides the log.
type Opened struct {
	// LastAt is the time of the last entry (zero for an empty log).
	LastAt time.Time
	// Checkpoint is the size of the latest checkpoint; HasCheckpoint
	// says whether there is one.
	Checkpoint    uint64
	HasCheckpoint bool
	// Altered lists the entries whose leaf no longer hashes to what the
	// tree stored for it.
	Altered []uint64
}

// Open loads the log of size entries from tx: its signing key (read by
// metaKey from the store's meta records), its tree, its last entry's time
// and its latest checkpoint. A log with entries but no signing key was
// written before the log became verifiable (no tree): it is refused
// rather than silently given a tree that nobody ever signed. A log with
// neither is new: the caller makes a key (NewKey) and calls Start.
func Open(tx Txn, size uint64, metaKey func(string) []byte, tags Tags) (*Log, Opened, error) {
	var o Opened
	sk, err := tx.Get(metaKey(SigningKeyName))
	if errors.Is(err, ErrNotFound) {
		if size > 0 {
			return nil, o, fault.E("store.open", fault.Integrity,
				"this data folder's audit log was written by an older dienbao without a Merkle tree; archive the folder and start a new one")
		}
		return nil, o, nil
	}
	if err != nil {
		return nil, o, fault.E("store.open", fault.Integrity, "the audit log's signing key is unreadable", err)
	}
	vk, err := tx.Get(metaKey(VerifierKeyName))
	if err != nil {
		return nil, o, fault.E("store.open", fault.Integrity, "the audit log's verifier key is unreadable", err)
	}
	l := &Log{tags: tags}
	if err := l.useKey(string(sk), string(vk)); err != nil {
		return nil, o, err
	}
	if l.tree, o.Altered, err = loadTree(tx, size); err != nil {
		return nil, o, err
	}
	if size > 0 {
		last, _, err := At(tx, size-1)
		if err != nil {
			return nil, o, err
		}
		o.LastAt = last.At
	}
	err = tx.Keys([]byte{pCheckpoint}, checkpointKey(^uint64(0)), true, func(k []byte) (bool, error) {
		o.Checkpoint, o.HasCheckpoint = binary.BigEndian.Uint64(k[1:]), true
		return false, nil
	})
	return l, o, err
}

// NewKey makes the signing key pair of a new log named origin and writes
// it (sealed) in tx, and returns the new, empty log.
func NewKey(tx Txn, origin string, metaKey func(string) []byte, tags Tags) (*Log, error) {
	skey, vkey, err := audit.NewKey(origin)
	if err != nil {
		return nil, fault.E("store.open", fault.Invalid, err.Error())
	}
	if err := tx.Set(metaKey(SigningKeyName), []byte(skey)); err != nil {
		return nil, fault.E("store.open", fault.Internal, "cannot store the audit log's signing key", err)
	}
	if err := tx.Set(metaKey(VerifierKeyName), []byte(vkey)); err != nil {
		return nil, fault.E("store.open", fault.Internal, "cannot store the audit log's signing key", err)
	}
	l := &Log{tags: tags, tree: &tree{rng: audit.Ranges.NewEmptyRange(0), last: map[uint][]byte{}}}
	return l, l.useKey(skey, vkey)
}

func (l *Log) useKey(skey, vkey string) error {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return fault.E("store.open", fault.Integrity, "the audit log's signing key is damaged", err)
	}
	l.signer, l.vkey = signer, vkey
	return nil
}

// VerifierKey is the key that checks the log's checkpoints.
func (l *Log) VerifierKey() string { return l.vkey }

// Stale marks the tree as ahead of the store (a commit that appended
// failed): Reload before the next append.
func (l *Log) Stale() { l.stale = true; l.batch.reset() }

// Reload rebuilds the tree of size entries from tx if it is stale.
func (l *Log) Reload(tx Txn, size uint64) error {
	if !l.stale {
		return nil
	}
	t, _, err := loadTree(tx, size)
	if err == nil {
		l.tree, l.stale = t, false
	}
	return err
}

// IsStale reports whether the tree must be reloaded before the next append.
func (l *Log) IsStale() bool { return l.stale }
