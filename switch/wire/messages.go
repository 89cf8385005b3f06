package wire

import (
	"errors"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// MaxBatch is the most filings one File frame may carry.
const MaxBatch = 1024

// Error is sent instead of a reply when a request fails.
type Error struct {
	Kind fault.Kind `cbor:"1,keyasint"`
	Msg  string     `cbor:"2,keyasint"`
	// RetryAfterMs: a transient refusal (Unavailable) the client should
	// retry after this many milliseconds, backing off if refused again.
	RetryAfterMs uint32 `cbor:"3,keyasint,omitempty"`
}

// Fault turns a wire error back into a *fault.Error.
func (e Error) Fault() error {
	k := e.Kind
	if k == fault.Other {
		k = fault.Internal
	}
	return &fault.Error{Op: "switch", Kind: k, Msg: e.Msg, RetryAfter: time.Duration(e.RetryAfterMs) * time.Millisecond}
}

// ErrorOf makes the wire form of err. Internal detail (the cause chain)
// stays on the switch; the client sees the kind and the message.
func ErrorOf(err error) Error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return Error{Kind: fe.Kind, Msg: fe.Msg, RetryAfterMs: uint32(min(fe.RetryAfter.Milliseconds(), 1<<31))}
	}
	return Error{Kind: fault.Internal, Msg: "internal error"}
}

// Filing is one telegram offered for filing. The sender is not here: it is
// the certificate.
type Filing struct {
	To             []telegram.Address      `cbor:"1,keyasint"`
	Info           []telegram.Address      `cbor:"2,keyasint,omitempty"`
	Precedence     telegram.Precedence     `cbor:"3,keyasint"`
	Classification telegram.Classification `cbor:"4,keyasint"`
	Subject        string                  `cbor:"5,keyasint,omitempty"`
	Ref            string                  `cbor:"6,keyasint,omitempty"`
	BodyLen        int64                   `cbor:"7,keyasint"`
	// ExpiresAt, if set, is the latest delivery time.
	ExpiresAt time.Time `cbor:"8,keyasint,omitzero"`
	// DeliverAt, if set, defers delivery until that time.
	DeliverAt time.Time `cbor:"9,keyasint,omitzero"`
}

// FileRequest carries a batch of filings; their bodies follow the frame
// in order, each exactly BodyLen bytes.
type FileRequest struct {
	Filings []Filing `cbor:"1,keyasint"`
}

// FileResult answers one filing: an ID, or an error. Duplicate is set
// when the sender reference matched an earlier filing, whose ID is returned.
type FileResult struct {
	ID        telegram.ID `cbor:"1,keyasint,omitempty"`
	Duplicate bool        `cbor:"2,keyasint,omitempty"`
	Err       *Error      `cbor:"3,keyasint,omitempty"`
	// Minimize: accepted but deferred under this MINIMIZE declaration,
	// delivered once it is lifted or ends.
	Minimize uint64 `cbor:"4,keyasint,omitempty"`
}

// FileReply answers a FileRequest, one result per filing, in order.
type FileReply struct {
	Results []FileResult `cbor:"1,keyasint"`
}

// Subscribe asks the switch to push this terminal's telegrams and/or
// delivery reports.
type Subscribe struct {
	Inbox    bool `cbor:"1,keyasint,omitempty"`
	Receipts bool `cbor:"2,keyasint,omitempty"`
}

// Subscribed confirms a subscription.
type Subscribed struct {
	Agency telegram.Address `cbor:"1,keyasint"`
}

// Drained says nothing is waiting for, or in flight to, this session now.
type Drained struct {
	At time.Time `cbor:"1,keyasint"`
}

// Deliver announces a telegram; the body follows, Header.BodyLen bytes.
type Deliver struct {
	Tag    uint64          `cbor:"1,keyasint"` // acknowledge with this
	Header telegram.Header `cbor:"2,keyasint"`
	// PossibleDuplicate is set when this telegram was sent to this agency
	// before without an acknowledgement reaching the switch.
	PossibleDuplicate bool `cbor:"3,keyasint,omitempty"`
}

// ReceiptFrame carries one delivery report.
type ReceiptFrame struct {
	Tag     uint64           `cbor:"1,keyasint"`
	Receipt telegram.Receipt `cbor:"2,keyasint"`
}

// Ack acknowledges a Deliver or ReceiptFrame after durable storage, and
// with More the further ones stored since, in the order stored (a terminal
// acknowledges what arrived together in one frame). All must have come on
// the stream the Ack is sent on.
type Ack struct {
	Tag  uint64   `cbor:"1,keyasint"`
	More []uint64 `cbor:"2,keyasint,omitempty"`
}

// MaxAcksPerFrame bounds an Ack's tags (Tag and More together).
const MaxAcksPerFrame = 256

// RotateKeys asks the switch to make a new data-encryption key current and
// re-seal older records with it in the background. Operators only.
type RotateKeys struct{}

// Keys describes the switch's data-encryption keys.
type Keys struct {
	Current uint32   `cbor:"1,keyasint"`
	Keys    []uint32 `cbor:"2,keyasint"` // every key still held, oldest first
}
