package audit

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// HashSize is the size of every hash in the tree.
const HashSize = 32

// Hasher is the tree's hash: RFC 6962 with SHA-256.
var Hasher = rfc6962.DefaultHasher

// Ranges builds compact ranges with Hasher.
var Ranges = &compact.RangeFactory{Hash: Hasher.HashChildren}

// LeafHash is the tree hash of a leaf: SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) []byte { return Hasher.HashLeaf(leaf) }

// VerifyInclusion checks that leaf is at index in the tree of the given
// size and root.
func VerifyInclusion(index, size uint64, leaf []byte, path [][]byte, root []byte) error {
	return proof.VerifyInclusion(Hasher, index, size, LeafHash(leaf), path, root)
}

// VerifyConsistency checks that the tree of size1 and root1 is a prefix of
// the tree of size2 and root2.
func VerifyConsistency(size1, size2 uint64, path [][]byte, root1, root2 []byte) error {
	return proof.VerifyConsistency(Hasher, size1, size2, path, root1, root2)
}

// Verifier recomputes the tree over a log read in index order and checks it
// against checkpoints. Give it every checkpoint (any order) with Expect,
// then every leaf with Add, then call Finish.
type Verifier struct {
	rng     *compact.Range
	want    map[uint64][]byte // checkpoint size → root
	checked []uint64          // sizes found to match, ascending
	failed  error
	// base is the tree at the last checkpoint that matched, pending the
	// leaf hashes added since: enough to compute the root of any size in
	// between, which Locate needs.
	base    *compact.Range
	pending [][]byte
}

// NewVerifier starts a verification from the empty tree.
func NewVerifier() *Verifier {
	return &Verifier{rng: Ranges.NewEmptyRange(0), base: Ranges.NewEmptyRange(0), want: map[uint64][]byte{}}
}

// Expect registers a checkpoint that the tree must match at its size.
func (v *Verifier) Expect(cp Checkpoint) {
	v.want[cp.Size] = cp.Hash
}

// Size is the number of leaves added.
func (v *Verifier) Size() uint64 { return v.rng.End() }

// Checked lists the checkpoint sizes verified so far.
func (v *Verifier) Checked() []uint64 { return v.checked }

// Add appends the leaf stored at index. It fails at the first leaf that is
// missing, out of order or malformed, and when the tree after it does not
// match a checkpoint of that size; the error names the entry. After a
// failure every call returns the same error.
func (v *Verifier) Add(index uint64, leaf []byte) error {
	if v.failed != nil {
		return v.failed
	}
	if n := v.rng.End(); index != n {
		return v.fail(&Mismatch{Index: n, Why: fmt.Sprintf("entry %d is missing (the next stored entry is %d)", n, index)})
	}
	e, err := ParseLeaf(leaf)
	if err != nil {
		return v.fail(&Mismatch{Index: index, Why: err.Error()})
	}
	if e.Index != index {
		return v.fail(&Mismatch{Index: index, Why: fmt.Sprintf("entry %d is stored at index %d", e.Index, index)})
	}
	h := LeafHash(leaf)
	if err := v.rng.Append(h, nil); err != nil {
		return v.fail(err)
	}
	v.pending = append(v.pending, h)
	return v.check()
}

// check compares the current root with a checkpoint of the current size.
func (v *Verifier) check() error {
	size := v.rng.End()
	want, ok := v.want[size]
	if !ok {
		return nil
	}
	root, err := v.rng.GetRootHash(nil)
	if err != nil {
		return v.fail(err)
	}
	if !bytes.Equal(root, want) {
		from := uint64(0)
		if n := len(v.checked); n > 0 {
			from = v.checked[n-1]
		}
		return v.fail(&Mismatch{Index: from, Last: size - 1, Checkpoint: size,
			Why: fmt.Sprintf("the tree over entries 0..%d does not match the signed checkpoint of size %d", size-1, size)})
	}
	v.checked = append(v.checked, size)
	v.base, v.pending = clone(v.rng), v.pending[:0]
	return nil
}

func clone(r *compact.Range) *compact.Range {
	c, _ := Ranges.NewRange(r.Begin(), r.End(), append([][]byte(nil), r.Hashes()...))
	return c
}

// prefixRoot is the root of the tree over the first size leaves, for a
// size between the last matching checkpoint and the current size.
func (v *Verifier) prefixRoot(size uint64) ([]byte, error) {
	r := clone(v.base)
	for _, h := range v.pending[:size-v.base.End()] {
		if err := r.Append(h, nil); err != nil {
			return nil, err
		}
	}
	if size == 0 {
		return Hasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

// Locate narrows a checkpoint mismatch down to one entry. prove must
// return the log's consistency proof from size1 to size2 (the switch's
// stored tree; it need not be trusted). The entries before the one returned
// are proven to be those the signed checkpoint commits to: the tree over
// them, recomputed from the leaves, is consistent with the signed root.
// The entry returned is the first for which that fails. If even the last
// matching checkpoint is not consistent with the failing one, the switch
// signed two different logs, and Locate says so.
func (v *Verifier) Locate(prove func(size1, size2 uint64) ([][]byte, error)) (*Mismatch, error) {
	var m *Mismatch
	if !errors.As(v.failed, &m) || m.Checkpoint == 0 {
		return m, errors.New("nothing to locate: no checkpoint mismatch")
	}
	size, want := m.Checkpoint, v.want[m.Checkpoint]
	pass := func(k uint64) (bool, error) {
		if k == 0 {
			return true, nil
		}
		root, err := v.prefixRoot(k)
		if err != nil {
			return false, err
		}
		p, err := prove(k, size)
		if err != nil {
			return false, err
		}
		return proof.VerifyConsistency(Hasher, k, size, p, root, want) == nil, nil
	}
	lo, hi := v.base.End(), size // pass(lo) is expected; pass(hi) failed
	ok, err := pass(lo)
	if err != nil {
		return m, err
	}
	if !ok {
		return &Mismatch{Index: lo, Last: size - 1, Checkpoint: size, Why: fmt.Sprintf(
			"the signed checkpoints of sizes %d and %d are not consistent: the switch signed two different logs", lo, size)}, nil
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := pass(mid)
		if err != nil {
			return m, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return &Mismatch{Index: lo, Checkpoint: size, Why: fmt.Sprintf(
		"entry %d is not the entry the signed checkpoint of size %d commits to (entries before it are)", lo, size)}, nil
}

// Finish checks that every checkpoint was reached.
func (v *Verifier) Finish() error {
	if v.failed != nil {
		return v.failed
	}
	if v.rng.End() == 0 {
		if _, ok := v.want[0]; ok {
			if err := v.check(); err != nil {
				return err
			}
		}
	}
	for size := range v.want {
		if size > v.rng.End() {
			return v.fail(&Mismatch{Index: v.rng.End(), Checkpoint: size,
				Why: fmt.Sprintf("a signed checkpoint covers %d entries but the log holds %d", size, v.rng.End())})
		}
	}
	return nil
}

func (v *Verifier) fail(err error) error {
	v.failed = err
	return err
}

// Mismatch says where the log stops matching. Index is the first entry
// known to be wrong; when only a checkpoint disagrees, the fault lies in
// entries Index..Last and Checkpoint names the size of the checkpoint.
type Mismatch struct {
	Index      uint64
	Last       uint64
	Checkpoint uint64
	Why        string
}

func (m *Mismatch) Error() string { return m.Why }
