package telegram

import (
	"fmt"
	"slices"
	"time"
)

// Header is everything about a telegram except its body. The switch stores
// it sealed; it is delivered with the body and shown to operators (minus the
// subject, which only addressees see).
type Header struct {
	ID             ID             `cbor:"1,keyasint" json:"id"`
	From           Address        `cbor:"2,keyasint" json:"from"`
	To             []Address      `cbor:"3,keyasint" json:"to"`
	Info           []Address      `cbor:"4,keyasint,omitempty" json:"info"`
	Precedence     Precedence     `cbor:"5,keyasint" json:"precedence"`
	Classification Classification `cbor:"6,keyasint" json:"classification"`
	Subject        string         `cbor:"7,keyasint,omitempty" json:"subject"`
	FiledAt        time.Time      `cbor:"8,keyasint" json:"filed_at"`
	Ref            string         `cbor:"9,keyasint,omitempty" json:"ref,omitempty"`
	BodyLen        int64          `cbor:"10,keyasint" json:"body_len"`
	// ExpiresAt, if set, is the latest delivery time: an addressee that
	// does not have the telegram by then never gets it, and the sender is
	// told NOT_DELIVERED, reason expired.
	ExpiresAt time.Time `cbor:"11,keyasint,omitzero" json:"expires_at,omitzero"`
	// OverdueAt is when the telegram passes its precedence's
	// speed-of-service target. The switch's business, not the terminal's.
	OverdueAt time.Time `cbor:"12,keyasint,omitzero" json:"-"`
	// DeliverAt, if set, defers delivery: the switch holds the telegram
	// (custody taken, ACCEPTED as always) and queues it at this time.
	DeliverAt time.Time `cbor:"13,keyasint,omitzero" json:"deliver_at,omitzero"`
	// Trace lists the switches a relayed telegram passed before this one,
	// the filing switch first (empty for a telegram filed here).
	Trace []Hop `cbor:"14,keyasint,omitempty" json:"trace,omitempty"`
	// Sealed: the body is an end-to-end envelope (package envelope),
	// signed by the sender and sealed for the addressee agencies; the
	// subject is inside it. Set by the filing switch, which checked that
	// the envelope's signed header matches this header.
	Sealed bool `cbor:"15,keyasint,omitempty" json:"sealed,omitempty"`
	// Moved lists the addressees whose copies an operator re-addressed
	// (tg move-queue, a merger of agencies): each To is an addressee too.
	// Set by the switch; the sender's signed header (a sealed telegram's)
	// keeps the addressees as filed.
	Moved []Move `cbor:"16,keyasint,omitempty" json:"moved,omitempty"`
}

// Move is one re-addressed copy: the copy for From went to To.
type Move struct {
	From Address   `cbor:"1,keyasint" json:"from"`
	To   Address   `cbor:"2,keyasint" json:"to"`
	At   time.Time `cbor:"3,keyasint" json:"at"`
}

// Hop is one switch a telegram passed: its name in the network and when
// it took custody.
type Hop struct {
	Switch string    `cbor:"1,keyasint" json:"switch"`
	At     time.Time `cbor:"2,keyasint" json:"at"`
}

// Passed lists the names of the switches in the trace, in order.
func (h *Header) Passed() []string {
	out := make([]string, len(h.Trace))
	for i, hop := range h.Trace {
		out[i] = hop.Switch
	}
	return out
}

// Expired reports whether h is past its latest delivery time at now.
func (h *Header) Expired(now time.Time) bool {
	return !h.ExpiresAt.IsZero() && !now.Before(h.ExpiresAt)
}

// Addressees lists the action addressees, the info addressees, then
// those copies were moved to.
func (h *Header) Addressees() []Address {
	out := make([]Address, 0, len(h.To)+len(h.Info)+len(h.Moved))
	out = append(out, h.To...)
	out = append(out, h.Info...)
	for _, m := range h.Moved {
		if !slices.Contains(out, m.To) {
			out = append(out, m.To)
		}
	}
	return out
}

// Status is the outcome a receipt reports.
type Status uint8

// Receipt statuses.
const (
	Delivered    Status = 1
	NotDelivered Status = 2
	// Moved: an operator re-addressed the copy to a successor agency
	// (Receipt.MovedTo), whose own report follows.
	Moved Status = 3
)

func (s Status) String() string {
	switch s {
	case Delivered:
		return "DELIVERED"
	case NotDelivered:
		return "NOT_DELIVERED"
	case Moved:
		return "MOVED"
	}
	return "INVALID"
}

// MarshalText makes JSON carry the name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the name back (a stored report).
func (s *Status) UnmarshalText(b []byte) error {
	for _, c := range []Status{Delivered, NotDelivered, Moved} {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("unknown report status %q", b)
}

// Receipt is a delivery or non-delivery report about one telegram and one
// addressee, sent back to the sender's agency.
type Receipt struct {
	ID        ID      `cbor:"1,keyasint" json:"id"`
	Addressee Address `cbor:"2,keyasint" json:"addressee"`
	Status    Status  `cbor:"3,keyasint" json:"status"`
	// Reason is empty for DELIVERED; for NOT_DELIVERED one of expired,
	// cancelled, refused, parked.
	Reason string    `cbor:"4,keyasint,omitempty" json:"reason"`
	At     time.Time `cbor:"5,keyasint" json:"at"`
	// Terminal names the addressee terminal that acknowledged.
	Terminal string `cbor:"6,keyasint,omitempty" json:"terminal,omitempty"`
	// MovedTo (MOVED): the address the copy now goes to.
	MovedTo Address `cbor:"7,keyasint,omitempty" json:"moved_to,omitempty"`
}
