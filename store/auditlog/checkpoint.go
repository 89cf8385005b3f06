package auditlog

import (
	"encoding/binary"
	"errors"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Checkpoint is a checkpoint as the switch signed it.
type Checkpoint struct {
	Size uint64
	Note []byte // the signed note text
}

// Stored returns the checkpoint of the given size, if one is stored.
func Stored(tx Txn, size uint64) (Checkpoint, bool, error) {
	v, err := tx.Get(checkpointKey(size))
	if errors.Is(err, ErrNotFound) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fault.E("store.checkpoint", fault.Integrity, "the latest checkpoint is unreadable", err)
	}
	return Checkpoint{Size: size, Note: v}, true, nil
}

// Latest returns the latest stored checkpoint (ok false if none).
func Latest(tx Txn) (cp Checkpoint, ok bool, err error) {
	var size uint64
	err = tx.Keys([]byte{pCheckpoint}, checkpointKey(^uint64(0)), true, func(k []byte) (bool, error) {
		size, ok = binary.BigEndian.Uint64(k[1:]), true
		return false, nil
	})
	if err != nil || !ok {
		return cp, false, err
	}
	return Stored(tx, size)
}

// Sign signs a checkpoint of the log at size (its current size) and
// stores it in tx, with every partial group of the tree (the proofs
// against it need every node complete at that size). Commit-loop only.
func (l *Log) Sign(tx Txn, size uint64) (Checkpoint, error) {
	if err := l.flushTree(tx); err != nil {
		return Checkpoint{}, err
	}
	signed, err := audit.Sign(l.signer, size, l.tree.root())
	if err != nil {
		return Checkpoint{}, fault.E("store.checkpoint", fault.Internal, "cannot sign a checkpoint", err)
	}
	if err := tx.Set(checkpointKey(size), signed); err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Size: size, Note: signed}, nil
}

// Checkpoints calls fn with every stored checkpoint of size greater than
// after (all of them when after is 0), smallest first, until fn fails.
func Checkpoints(tx Txn, after uint64, fn func(Checkpoint) error) error {
	start := checkpointKey(0)
	if after > 0 {
		start = checkpointKey(after + 1)
	}
	return tx.Values([]byte{pCheckpoint}, start, false, func(k, v []byte, openErr error) (bool, error) {
		size := binary.BigEndian.Uint64(k[1:])
		if openErr != nil {
			return false, fault.E("store.checkpoint", fault.Integrity, "checkpoint of size "+itoa(size)+" fails its integrity check", openErr)
		}
		return true, fn(Checkpoint{Size: size, Note: v})
	})
}

// EntriesOf lists the indices of telegram id's entries, oldest first.
func (l *Log) EntriesOf(tx Txn, id telegram.ID) ([]uint64, error) {
	return l.telegramIndices(tx, id)
}

// Proof builds the bundle entries (leaf and inclusion proof) of the given
// entries against the tree of size.
func Proof(tx Txn, indices []uint64, size uint64) ([]audit.BundleEntry, error) {
	var out []audit.BundleEntry
	for _, i := range indices {
		_, leaf, err := At(tx, i)
		if err != nil {
			return nil, err
		}
		path, err := inclusion(tx, i, size)
		if err != nil {
			return nil, err
		}
		out = append(out, audit.BundleEntry{Index: i, Leaf: leaf, Proof: path})
	}
	return out, nil
}

// Consistency proves that the tree of size1 is a prefix of the tree of
// size2 (both no larger than the log).
func Consistency(tx Txn, size1, size2 uint64) ([][]byte, error) { return consistency(tx, size1, size2) }
