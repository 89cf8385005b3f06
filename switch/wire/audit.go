package wire

import (
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
)

// AuditQuery asks for audit entries. Zero fields do not filter. The index
// range is [From, To); To 0 means no upper bound.
type AuditQuery struct {
	ID             telegram.ID             `cbor:"1,keyasint,omitempty"`
	Agency         telegram.Address        `cbor:"2,keyasint,omitempty"`
	Event          string                  `cbor:"3,keyasint,omitempty"`
	Precedence     telegram.Precedence     `cbor:"4,keyasint,omitempty"`
	Classification telegram.Classification `cbor:"5,keyasint,omitempty"`
	Since          time.Time               `cbor:"6,keyasint,omitzero"`
	Until          time.Time               `cbor:"7,keyasint,omitzero"`
	From           uint64                  `cbor:"8,keyasint,omitempty"`
	To             uint64                  `cbor:"9,keyasint,omitempty"`
	Newest         bool                    `cbor:"10,keyasint,omitempty"`
	Limit          int                     `cbor:"11,keyasint,omitempty"`
}

// AuditEntries answers an AuditQuery. Redacted is set when the caller's
// role sees telegram entries without their metadata (operators).
// More says the query has further results: ask again from past the last
// entry (a page also ends early to fit in a frame).
type AuditEntries struct {
	Entries  []audit.Entry `cbor:"1,keyasint"`
	Redacted bool          `cbor:"2,keyasint,omitempty"`
	More     bool          `cbor:"3,keyasint,omitempty"`
	// Resume, when set, is where the query stopped for its scan budget:
	// ask again with From (oldest first) or To (newest first) set to it.
	Resume uint64 `cbor:"4,keyasint,omitempty"`
}

// AuditExport asks for the stored leaves from index From on (auditors).
type AuditExport struct {
	From uint64 `cbor:"1,keyasint,omitempty"`
}

// AuditLeaf is one stored leaf.
type AuditLeaf struct {
	Index uint64 `cbor:"1,keyasint"`
	Leaf  []byte `cbor:"2,keyasint"`
}

// AuditLeaves is one page of the log; an empty page means the end.
type AuditLeaves struct {
	Leaves []AuditLeaf `cbor:"1,keyasint"`
}

// AuditCheckpointRequest asks for the latest signed checkpoint (signing a
// new one if the log has grown), or with All for the stored checkpoints of
// size greater than After, smallest first, one page at a time.
type AuditCheckpointRequest struct {
	All   bool   `cbor:"1,keyasint,omitempty"`
	After uint64 `cbor:"2,keyasint,omitempty"`
}

// AuditCheckpoints carries signed checkpoints and the key that checks them.
type AuditCheckpoints struct {
	VerifierKey string   `cbor:"1,keyasint"`
	Notes       [][]byte `cbor:"2,keyasint"`
	// Cosigned: the latest checkpoint each witness (a peer switch) cosigned.
	Cosigned []Cosignature `cbor:"3,keyasint,omitempty"`
	// WitnessKey is this switch's own witness verifier key (in a network),
	// with which it cosigns its peers' checkpoints.
	WitnessKey string `cbor:"4,keyasint,omitempty"`
}

// AuditProofRequest asks for the proof bundle of a telegram's entries.
type AuditProofRequest struct {
	ID telegram.ID `cbor:"1,keyasint"`
}

// AuditBundle carries a proof bundle.
type AuditBundle struct {
	Bundle audit.Bundle `cbor:"1,keyasint"`
}

// AuditConsistencyRequest asks for the proof that the log's tree of size
// Size1 is a prefix of its tree of size Size2 (RFC 6962 consistency proof).
type AuditConsistencyRequest struct {
	Size1 uint64 `cbor:"1,keyasint"`
	Size2 uint64 `cbor:"2,keyasint"`
}

// AuditProofHashes carries a proof: hashes, as RFC 6962 orders them.
type AuditProofHashes struct {
	Hashes [][]byte `cbor:"1,keyasint"`
}
