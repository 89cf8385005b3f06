package wire

import (
	"fmt"

	"github.com/dienbao/dienbao/switch/telegram"
)

// RetrieveRequest asks for a copy of a telegram from the switch's custody
// or its journal (settled telegrams are kept for a retention period).
type RetrieveRequest struct {
	ID telegram.ID `cbor:"1,keyasint"`
}

// Retrieved answers RetrieveRequest: the header, then Header.BodyLen
// bytes of body on the stream. It is a copy, not a delivery: there is
// nothing to acknowledge.
type Retrieved struct {
	Header telegram.Header `cbor:"1,keyasint"`
}

// ResendRequest asks the switch to send a delivered telegram again, to
// one addressee (To) or to every addressee it was delivered to.
type ResendRequest struct {
	ID     telegram.ID      `cbor:"1,keyasint"`
	To     telegram.Address `cbor:"2,keyasint,omitempty"`
	Reason string           `cbor:"3,keyasint,omitempty"`
}

// Validate checks the fields' sizes.
func (r *ResendRequest) Validate() error {
	if len(r.To) > 64 || len(r.Reason) > MaxReason {
		return fmt.Errorf("addressee or reason too long")
	}
	return nil
}

// Resent answers ResendRequest.
type Resent struct {
	Resent  []telegram.Address `cbor:"1,keyasint" json:"resent"`
	Skipped []telegram.Address `cbor:"2,keyasint,omitempty" json:"skipped"`
}
