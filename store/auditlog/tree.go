package auditlog

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// groupSize is how many node hashes of one level share a stored record.
const groupSize = 64

// The audit log's Merkle tree is kept as the hashes of every perfect
// subtree, level by level, groupSize to a record (n<level:1><group:8>),
// so that an inclusion or consistency proof reads a few records, and a
// restart one or two records per level. The leaves are the truth: tg audit
// verify recomputes the tree from them.
//
// A group is written when it fills. The last, partial group of each level
// changes with every entry, so rewriting it at every commit would cost more
// than the leaves themselves; it is written only with each checkpoint, which
// is all the proofs need (they are always against a checkpoint's size, and
// every node they use was complete at that size). Open takes what the last
// checkpoint wrote and recomputes the rest (entries since, lost in a crash
// or a shutdown) from the full groups below and the last few leaves. The
// stored hashes win over the leaves: the tree only ever grows, so a leaf
// altered after it was signed cannot slip into the next checkpoint; Open
// reports it instead.
//
// tree is the commit loop's view: the compact range (the right border, for
// the root) and the partial group of each level.
type tree struct {
	rng  *compact.Range
	last map[uint][]byte // level → hashes of its partial group, concatenated
	size uint64          // while loading, before rng exists
}

func nodeKey(level uint, group uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{pNode, byte(level)}, group)
}

// loadTree rebuilds the tree of the given size from the stored groups and
// leaves. It also returns the entries of the last partial group whose leaf
// no longer hashes to what the tree stored for it.
func loadTree(tx Txn, size uint64) (*tree, []uint64, error) {
	t := &tree{last: map[uint][]byte{}, size: size}
	var altered []uint64
	for level := uint(0); level < 64 && size>>level > 0; level++ {
		n := size >> level // complete nodes at this level
		have := n % groupSize
		if have == 0 {
			continue // the last group is full and stored
		}
		first := n - have
		g := make([]byte, 0, groupSize*audit.HashSize)
		stored, err := tx.Get(nodeKey(level, first/groupSize))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, fault.E("store.tree", fault.Integrity, "the audit log's tree is unreadable", err)
		}
		k := min(uint64(len(stored))/audit.HashSize, have)
		g = append(g, stored[:k*audit.HashSize]...)
		if level == 0 {
			for i := first; i < first+k; i++ {
				_, leaf, err := At(tx, i)
				if err != nil || !bytes.Equal(audit.LeafHash(leaf), g[(i-first)*audit.HashSize:][:audit.HashSize]) {
					altered = append(altered, i)
				}
			}
		}
		for i := first + k; i < n; i++ {
			var h []byte
			if level == 0 {
				_, leaf, err := At(tx, i)
				if err != nil {
					return nil, nil, err
				}
				h = audit.LeafHash(leaf)
			} else {
				kids, err := nodeHashes(tx, []compact.NodeID{compact.NewNodeID(level-1, 2*i), compact.NewNodeID(level-1, 2*i+1)}, t)
				if err != nil {
					return nil, nil, err
				}
				h = audit.Hasher.HashChildren(kids[0], kids[1])
			}
			g = append(g, h...)
		}
		t.last[level] = g
	}
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := nodeHashes(tx, ids, t)
	if err != nil {
		return nil, nil, err
	}
	t.rng, err = audit.Ranges.NewRange(0, size, hashes)
	if err != nil {
		return nil, nil, fault.E("store.tree", fault.Integrity, "the audit log's tree does not fit its size", err)
	}
	return t, altered, nil
}

// nodeHashes reads the hashes of the given perfect-subtree nodes, from the
// partial groups in t (if not nil) or from the store.
func nodeHashes(tx Txn, ids []compact.NodeID, t *tree) ([][]byte, error) {
	out := make([][]byte, len(ids))
	groups := map[[2]uint64][]byte{}
	for i, id := range ids {
		g := id.Index / groupSize
		v, ok := groups[[2]uint64{uint64(id.Level), g}]
		if !ok {
			var err error
			if t != nil && id.Index >= t.partialStart(id.Level) {
				v, err = t.last[id.Level], nil
			} else {
				v, err = tx.Get(nodeKey(id.Level, g))
			}
			if err != nil {
				return nil, fault.E("store.tree", fault.Integrity, "an audit tree node is missing or unreadable", err)
			}
			groups[[2]uint64{uint64(id.Level), g}] = v
		}
		off := (id.Index % groupSize) * audit.HashSize
		if uint64(len(v)) < off+audit.HashSize {
			return nil, fault.Errorf("store.tree", fault.Integrity, "audit tree node %d at level %d is missing", id.Index, id.Level)
		}
		out[i] = v[off : off+audit.HashSize]
	}
	return out, nil
}

// partialStart is the index of the first node of level's partial group
// (groups before it are full and stored). Only valid while the tree is
// being loaded or owned by the commit loop.
func (t *tree) partialStart(level uint) uint64 {
	size := t.size
	if t.rng != nil {
		size = t.rng.End()
	}
	n := size >> level
	return n - n%groupSize
}

// appendLeaf adds a leaf hash to the tree, writing each group that fills.
func (l *Log) appendLeaf(tx Txn, hash []byte) error {
	t := l.tree
	var err error
	visit := func(id compact.NodeID, h []byte) {
		g := append(t.last[id.Level], h...)
		if len(g) < groupSize*audit.HashSize {
			t.last[id.Level] = g
			return
		}
		if e := tx.Set(nodeKey(id.Level, id.Index/groupSize), g); e != nil && err == nil {
			err = e
		}
		t.last[id.Level] = g[:0]
	}
	if e := t.rng.Append(hash, visit); e != nil {
		return e
	}
	return err
}

// flushTree writes every partial group, so that the stored tree holds
// every node complete at the current size (done with each checkpoint).
func (l *Log) flushTree(tx Txn) error {
	t := l.tree
	for level, g := range t.last {
		if len(g) == 0 {
			continue
		}
		n := t.rng.End() >> level
		if err := tx.Set(nodeKey(level, n/groupSize), g); err != nil {
			return err
		}
	}
	return nil
}

// root is the current root hash.
func (t *tree) root() []byte {
	if t.rng.End() == 0 {
		return audit.Hasher.EmptyRoot()
	}
	r, _ := t.rng.GetRootHash(nil)
	return r
}

// inclusion returns the inclusion proof of index in the tree of size,
// read from tx.
func inclusion(tx Txn, index, size uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fault.E("store.proof", fault.Invalid, err.Error())
	}
	return rehash(tx, nodes)
}

// consistency returns the consistency proof between two tree sizes.
func consistency(tx Txn, size1, size2 uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fault.E("store.proof", fault.Invalid, err.Error())
	}
	return rehash(tx, nodes)
}

func rehash(tx Txn, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := nodeHashes(tx, nodes.IDs, nil)
	if err != nil {
		return nil, err
	}
	for i, h := range hashes { // Rehash works in place: do not touch the records
		hashes[i] = append([]byte(nil), h...)
	}
	return nodes.Rehash(hashes, audit.Hasher.HashChildren)
}
