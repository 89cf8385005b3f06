package store

import (
	"encoding/binary"
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"golang.org/x/mod/sumdb/note"
)

// SignedCheckpoint is a checkpoint as the switch signed it.
type SignedCheckpoint struct {
	Size uint64
	Note []byte // the signed note text
}

func checkpointKey(size uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{pCheckpoint}, size)
}

// openAuditLog loads the tree and the checkpoint key at Open. A store
// whose audit log was written before the log became verifiable (no tree)
// is refused rather than silently given a tree that nobody ever signed.
func (s *Store) openAuditLog(txn *badger.Txn) (skey, vkey string, err error) {
	sk, err := s.get(txn, metaKey("notekey"))
	if errors.Is(err, badger.ErrKeyNotFound) {
		if s.st.aseq > 0 {
			return "", "", fault.E("store.open", fault.Integrity,
				"this data folder's audit log was written by an older dienbao without a Merkle tree; archive the folder and start a new one")
		}
		return "", "", nil
	}
	if err != nil {
		return "", "", fault.E("store.open", fault.Integrity, "the audit log's signing key is unreadable", err)
	}
	vk, err := s.get(txn, metaKey("notevkey"))
	if err != nil {
		return "", "", fault.E("store.open", fault.Integrity, "the audit log's verifier key is unreadable", err)
	}
	if s.tree, s.altered, err = s.loadTree(txn, s.st.aseq); err != nil {
		return "", "", err
	}
	if s.st.aseq > 0 {
		last, _, err := s.auditAt(txn, s.st.aseq-1)
		if err != nil {
			return "", "", err
		}
		s.st.at = last.At.UnixNano()
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pCheckpoint}, Reverse: true})
	defer it.Close()
	if it.Seek(checkpointKey(^uint64(0))); it.Valid() {
		s.st.cpSize, s.st.hasCP = binary.BigEndian.Uint64(it.Item().Key()[1:]), true
	}
	return string(sk), string(vk), nil
}

// newAuditKey makes the audit log's signing key on a new store.
func (s *Store) newAuditKey(origin string) (skey, vkey string, err error) {
	skey, vkey, err = audit.NewKey(origin)
	if err != nil {
		return "", "", fault.E("store.open", fault.Invalid, err.Error())
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(metaKey("notekey"), s.sealValue(metaKey("notekey"), []byte(skey))); err != nil {
			return err
		}
		return txn.Set(metaKey("notevkey"), s.sealValue(metaKey("notevkey"), []byte(vkey)))
	})
	if err != nil {
		return "", "", fault.E("store.open", fault.Internal, "cannot store the audit log's signing key", err)
	}
	s.tree = &tree{rng: audit.Ranges.NewEmptyRange(0), last: map[uint][]byte{}}
	return skey, vkey, nil
}

func (s *Store) useAuditKey(skey, vkey string) error {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return fault.E("store.open", fault.Integrity, "the audit log's signing key is damaged", err)
	}
	s.signer, s.vkey = signer, vkey
	return nil
}

// VerifierKey is the key that checks the switch's checkpoints, in the form
// golang.org/x/mod/sumdb/note.NewVerifier accepts. Publish it.
func (s *Store) VerifierKey() string { return s.vkey }

// Checkpoint returns a signed checkpoint of the whole log as it stands:
// the latest one if nothing was appended since, else a new one, signed and
// stored before it is returned.
func (s *Store) Checkpoint() (SignedCheckpoint, error) {
	var cp SignedCheckpoint
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		size := c.st.aseq
		if c.st.hasCP && c.st.cpSize == size {
			v, err := c.s.get(c.txn, checkpointKey(size))
			if err == nil {
				cp = SignedCheckpoint{Size: size, Note: v}
				return nil
			}
			if !errors.Is(err, badger.ErrKeyNotFound) {
				return fault.E("store.checkpoint", fault.Integrity, "the latest checkpoint is unreadable", err)
			}
		}
		if err := c.flushTree(); err != nil {
			return err
		}
		signed, err := audit.Sign(c.s.signer, size, c.s.tree.root())
		if err != nil {
			return fault.E("store.checkpoint", fault.Internal, "cannot sign a checkpoint", err)
		}
		if err := c.set(checkpointKey(size), signed); err != nil {
			return err
		}
		c.st.cpSize, c.st.hasCP = size, true
		cp = SignedCheckpoint{Size: size, Note: signed}
		return nil
	}})
	if err == nil {
		err = s.copyCheckpoint(cp)
	}
	return cp, err
}

// Checkpoints calls fn with every stored checkpoint of size greater than
// after (all of them when after is 0), smallest first, until fn fails.
func (s *Store) Checkpoints(after uint64, fn func(SignedCheckpoint) error) error {
	return s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pCheckpoint}})
		defer it.Close()
		start := checkpointKey(0)
		if after > 0 {
			start = checkpointKey(after + 1)
		}
		for it.Seek(start); it.Valid(); it.Next() {
			size := binary.BigEndian.Uint64(it.Item().Key()[1:])
			v, err := s.value(it.Item())
			if err != nil {
				return fault.E("store.checkpoint", fault.Integrity, "checkpoint of size "+itoa(size)+" fails its integrity check", err)
			}
			if err := fn(SignedCheckpoint{Size: size, Note: v}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Proof builds the proof bundle for a telegram's audit entries against a
// checkpoint that covers them all (signed now if needed).
func (s *Store) Proof(id telegram.ID) (audit.Bundle, error) {
	b := audit.Bundle{ID: id, VerifierKey: s.vkey}
	var indices []uint64
	err := s.view(func(txn *badger.Txn) error {
		var err error
		indices, err = s.auditIndex(txn, idKey(pAuditID, id), 0, ^uint64(0), false, 1<<20)
		return err
	})
	if err != nil {
		return b, err
	}
	if len(indices) == 0 {
		return b, fault.Errorf("audit.proof", fault.NotExist, "no audit entry for telegram %s", id)
	}
	cp, err := s.Checkpoint()
	if err != nil {
		return b, err
	}
	b.Checkpoint = string(cp.Note)
	err = s.view(func(txn *badger.Txn) error {
		for _, i := range indices {
			_, leaf, err := s.auditAt(txn, i)
			if err != nil {
				return err
			}
			path, err := s.inclusion(txn, i, cp.Size)
			if err != nil {
				return err
			}
			b.Entries = append(b.Entries, audit.BundleEntry{Index: i, Leaf: leaf, Proof: path})
		}
		return nil
	})
	return b, err
}

// ConsistencyProof proves that the tree of size1 is a prefix of the tree
// of size2 (both no larger than the log).
func (s *Store) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(txn *badger.Txn) error {
		n, err := s.getU64(txn, metaKey("aseq"))
		if err != nil {
			return err
		}
		if size2 > n {
			return fault.Errorf("audit.consistency", fault.Invalid, "the log holds %d entries, not %d", n, size2)
		}
		out, err = s.consistency(txn, size1, size2)
		return err
	})
	return out, err
}
