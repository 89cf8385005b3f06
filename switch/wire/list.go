package wire

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// ListStates are the states a telegram in custody can be listed in
// (ListRequest.State), as tg show names them; overdue is waiting or in
// flight past its speed-of-service target.
var ListStates = []string{"waiting", "in_flight", "held", "parked", "deferred", "overdue"}

// ListRequest lists the telegrams in the switch's custody, one row per
// addressee copy, as Postfix's mailq lists a queue (operators). Every
// filter is optional; the zero request lists the oldest Limit copies.
type ListRequest struct {
	Agency     telegram.Address        `cbor:"1,keyasint,omitempty"` // the addressee
	Precedence telegram.Precedence     `cbor:"2,keyasint,omitempty"`
	Class      telegram.Classification `cbor:"3,keyasint,omitempty"` // exactly this classification (0: any up to the clearance)
	State      string                  `cbor:"5,keyasint,omitempty"` // one of ListStates
	OlderThan  time.Duration           `cbor:"6,keyasint,omitempty"` // filed at least this long ago
	From       telegram.Address        `cbor:"7,keyasint,omitempty"` // the sender
	Newest     bool                    `cbor:"8,keyasint,omitempty"` // newest filing first (default: oldest first)
	After      ListCursor              `cbor:"9,keyasint,omitzero"`  // page: copies after this one in the order asked (List.Next)
	Limit      int                     `cbor:"10,keyasint,omitempty"`
}

// ListCursor is one row's place in a listing: the telegram and the
// addressee (one telegram has a row per addressee).
type ListCursor struct {
	ID        telegram.ID      `cbor:"1,keyasint"`
	Addressee telegram.Address `cbor:"2,keyasint,omitempty"`
}

// IsZero says whether c is no cursor (the first page).
func (c ListCursor) IsZero() bool { return c.ID.IsZero() && c.Addressee == "" }

// String is the cursor as tg list prints and reads it: ID/ADDRESSEE.
func (c ListCursor) String() string { return c.ID.String() + "/" + string(c.Addressee) }

// MarshalText is String.
func (c ListCursor) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// ParseListCursor reads ID/ADDRESSEE (or a lone ID: from the telegram's
// first addressee).
func ParseListCursor(s string) (ListCursor, error) {
	id, addr, _ := strings.Cut(s, "/")
	var c ListCursor
	var err error
	if c.ID, err = telegram.ParseID(id); err != nil {
		return c, fmt.Errorf("cursor %q: %w", s, err)
	}
	if addr != "" {
		if c.Addressee, err = telegram.ParseAddress(addr); err != nil {
			return c, fmt.Errorf("cursor %q: %w", s, err)
		}
	}
	return c, nil
}

// MaxList is the most rows one List carries; DefaultList, when the
// request gives no Limit.
const (
	MaxList     = 10_000
	DefaultList = 100
)

// Validate checks the fields.
func (r *ListRequest) Validate() error {
	switch {
	case r.Limit < 0 || r.Limit > MaxList:
		return fmt.Errorf("limit %d: give 1 to %d", r.Limit, MaxList)
	case r.State != "" && !slices.Contains(ListStates, r.State):
		return fmt.Errorf("state %q: one of %v", r.State, ListStates)
	case r.OlderThan < 0:
		return fmt.Errorf("older than %s: give a positive duration", r.OlderThan)
	case len(r.Agency) > 64 || len(r.From) > 64:
		return fmt.Errorf("agency too long")
	case r.Precedence != 0 && !r.Precedence.Valid():
		return fmt.Errorf("unknown precedence %d", r.Precedence)
	case r.Class != 0 && !r.Class.Valid():
		return fmt.Errorf("unknown classification %d", r.Class)
	}
	return nil
}

// ListRow is one addressee's copy of a telegram in custody: header fields
// only, never the subject or the body. JSON names are tg list's fields.
type ListRow struct {
	ID             telegram.ID             `cbor:"1,keyasint" json:"id"`
	FiledAt        time.Time               `cbor:"2,keyasint" json:"filed_at"`
	AgeSeconds     float64                 `cbor:"3,keyasint" json:"age_seconds"`
	Addressee      telegram.Address        `cbor:"4,keyasint" json:"addressee"`
	From           telegram.Address        `cbor:"5,keyasint" json:"from"`
	Precedence     telegram.Precedence     `cbor:"6,keyasint" json:"precedence"`
	Classification telegram.Classification `cbor:"7,keyasint" json:"classification"`
	State          string                  `cbor:"8,keyasint" json:"state"` // waiting, in_flight, held, parked, deferred
	Overdue        bool                    `cbor:"9,keyasint,omitempty" json:"overdue"`
	AgencyHeld     bool                    `cbor:"10,keyasint,omitempty" json:"agency_held"` // every delivery to the addressee is held
	BodyLen        int64                   `cbor:"11,keyasint,omitempty" json:"body_len"`
	Sealed         bool                    `cbor:"12,keyasint,omitempty" json:"sealed"`
	Unlisted       bool                    `cbor:"13,keyasint,omitempty" json:"unlisted"` // the addressee is no longer in the directory
}

// List answers ListRequest.
type List struct {
	Rows []ListRow `cbor:"1,keyasint" json:"rows"`
	// Next, when set, is the cursor to pass as After for the next page.
	Next ListCursor `cbor:"2,keyasint,omitzero" json:"next,omitzero"`
	// Truncated: the switch stopped after reading MaxListScan copies;
	// narrow the filters.
	Truncated bool `cbor:"3,keyasint,omitempty" json:"truncated,omitempty"`
	// Withheld counts the copies that match every filter but are
	// classified above the operator's clearance: counted, never listed.
	Withheld int64 `cbor:"4,keyasint,omitempty" json:"withheld"`
}

// MaxListScan bounds the copies one ListRequest reads.
const MaxListScan = 1_000_000

// MoveQueue asks the switch to re-address every copy waiting for From to
// To (operators; a merger of agencies): IDs, precedence and order kept,
// each sender told MOVED with the new address.
type MoveQueue struct {
	From telegram.Address `cbor:"1,keyasint"`
	To   telegram.Address `cbor:"2,keyasint"`
}

// Validate checks the addresses.
func (m *MoveQueue) Validate() error {
	if _, err := telegram.ParseAddress(string(m.From)); err != nil {
		return err
	}
	if _, err := telegram.ParseAddress(string(m.To)); err != nil {
		return err
	}
	if m.From == m.To {
		return fmt.Errorf("move %s to itself", m.From)
	}
	return nil
}

// MovedQueue answers MoveQueue. JSON names are tg move-queue's fields.
type MovedQueue struct {
	From  telegram.Address `cbor:"1,keyasint" json:"from"`
	To    telegram.Address `cbor:"2,keyasint" json:"to"`
	Moved int              `cbor:"3,keyasint" json:"moved"`
	// What still waits for From: in flight (settled by its terminal's
	// answer, or back in the queue for a later move), parked or
	// quarantined (requeue first), above the operator's clearance.
	Waiting  int64 `cbor:"4,keyasint" json:"waiting"`
	Parked   int64 `cbor:"5,keyasint" json:"parked"`
	Held     int64 `cbor:"6,keyasint" json:"held"`
	Deferred int64 `cbor:"7,keyasint" json:"deferred"`
}
