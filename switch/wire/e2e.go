package wire

import (
	"fmt"
	"unicode/utf8"

	"github.com/dienbao/dienbao/switch/telegram"
)

// MaxKeyAgencies bounds the agencies of one AgencyKeysRequest.
const MaxKeyAgencies = 1024

// AgencyKeysRequest asks for the published keys of agencies (package
// envelope): every key certificate the directory holds for them, old
// ones included (to check old signatures), and every revocation.
type AgencyKeysRequest struct {
	Agencies []telegram.Address `cbor:"1,keyasint"`
}

// AgencyKeys answers an AgencyKeysRequest: raw CA-signed objects, which
// the terminal checks under its own copy of the CA. Missing names the
// requested agencies that have no published key.
type AgencyKeys struct {
	Certs       [][]byte           `cbor:"1,keyasint"`
	Revocations [][]byte           `cbor:"2,keyasint"`
	Missing     []telegram.Address `cbor:"3,keyasint,omitempty"`
}

// Reject is sent by a terminal, instead of an Ack, for a delivery that
// failed its end-to-end verification: the telegram is not delivered, and
// its sender is told NOT_DELIVERED with Reason (envelope.ReasonSignature
// or ReasonUnreadable). Detail says what failed, never any content.
type Reject struct {
	Tag    uint64 `cbor:"1,keyasint"`
	Reason string `cbor:"2,keyasint"`
	Detail string `cbor:"3,keyasint,omitempty"`
}

// Validate bounds the request.
func (r *AgencyKeysRequest) Validate() error {
	if len(r.Agencies) == 0 || len(r.Agencies) > MaxKeyAgencies {
		return fmt.Errorf("ask for the keys of 1 to %d agencies, not %d", MaxKeyAgencies, len(r.Agencies))
	}
	return nil
}

// Validate checks the reason and bounds the detail.
func (r *Reject) Validate() error {
	if r.Reason != "signature" && r.Reason != "unreadable" {
		return fmt.Errorf("rejection reason %q: give signature or unreadable", r.Reason)
	}
	if len(r.Detail) > MaxReason*2 || !utf8.ValidString(r.Detail) {
		return fmt.Errorf("the rejection detail must be valid UTF-8, at most %d bytes", MaxReason*2)
	}
	return nil
}
