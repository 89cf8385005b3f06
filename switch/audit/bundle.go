package audit

import (
	"errors"
	"fmt"

	"github.com/dienbao/dienbao/switch/telegram"
)

// Bundle is a self-contained proof that a telegram's audit entries are in
// the log: anyone holding the switch's published verifier key can check it
// offline. Byte fields are base64 in JSON.
type Bundle struct {
	ID          telegram.ID   `json:"id"`
	Checkpoint  string        `json:"checkpoint"`   // the signed note text
	VerifierKey string        `json:"verifier_key"` // for golang.org/x/mod/sumdb/note.NewVerifier
	Entries     []BundleEntry `json:"entries"`
}

// BundleEntry is one audit entry with its inclusion proof against the
// bundle's checkpoint.
type BundleEntry struct {
	Index uint64   `json:"index"`
	Leaf  []byte   `json:"leaf"`  // the exact bytes hashed as the leaf
	Proof [][]byte `json:"proof"` // the inclusion proof, leaf to root
	// Archive names the archive file that holds the entry, once it has
	// been moved out of the switch's store (the leaf above is still the
	// entry's, read back from the file).
	Archive string `json:"archive,omitempty"`
}

// Check verifies b: the checkpoint's signature under b.VerifierKey, and
// each entry's inclusion at its index in the checkpoint's tree. Each leaf
// must decode, carry its own index and b.ID. A caller who knows the
// switch's key from elsewhere must compare it with b.VerifierKey (or pass
// it as key, which then must match). It returns the checkpoint and the
// entries.
func (b Bundle) Check(key string) (Checkpoint, []Entry, error) {
	if key != "" && key != b.VerifierKey {
		return Checkpoint{}, nil, errors.New("the bundle is signed for a different verifier key than the one given")
	}
	cp, err := OpenCheckpoint([]byte(b.Checkpoint), b.VerifierKey)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if len(b.Entries) == 0 {
		return cp, nil, errors.New("the bundle holds no entries")
	}
	var out []Entry
	for _, be := range b.Entries {
		if be.Index >= cp.Size {
			return cp, nil, fmt.Errorf("entry %d is beyond the checkpoint's %d entries", be.Index, cp.Size)
		}
		e, err := ParseLeaf(be.Leaf)
		if err != nil {
			return cp, nil, fmt.Errorf("entry %d: %w", be.Index, err)
		}
		if e.Index != be.Index {
			return cp, nil, fmt.Errorf("entry %d: the leaf says index %d", be.Index, e.Index)
		}
		if e.ID != b.ID {
			return cp, nil, fmt.Errorf("entry %d: the leaf is about telegram %s, not %s", be.Index, e.ID, b.ID)
		}
		if err := VerifyInclusion(be.Index, cp.Size, be.Leaf, be.Proof, cp.Hash); err != nil {
			return cp, nil, fmt.Errorf("entry %d is not in the signed tree: %w", be.Index, err)
		}
		out = append(out, e)
	}
	return cp, out, nil
}
