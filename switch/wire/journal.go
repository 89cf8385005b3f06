package wire

import (
	"fmt"
	"time"

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

// JournalQuery lists the telegrams an agency sent or was sent, newest
// filing first, from custody and the journal (and those purged, by what
// the audit log recorded of them), found through the audit log's index.
type JournalQuery struct {
	Agency telegram.Address `cbor:"1,keyasint,omitempty"` // a terminal's own (empty: its own; for others: every agency's filings)
	Since  time.Time        `cbor:"2,keyasint,omitzero"`
	Until  time.Time        `cbor:"3,keyasint,omitzero"`
	Before uint64           `cbor:"4,keyasint,omitempty"` // page: filings with a smaller audit index (JournalPage.Resume)
	Limit  int              `cbor:"5,keyasint,omitempty"` // rows (default 50)
}

// Validate checks the fields.
func (q *JournalQuery) Validate() error {
	switch {
	case q.Limit < 0:
		return fmt.Errorf("limit %d: give a positive number, or none", q.Limit)
	case len(q.Agency) > 64:
		return fmt.Errorf("agency too long")
	case !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since):
		return fmt.Errorf("until %s is before since %s", q.Until, q.Since)
	}
	return nil
}

// JournalRow is one telegram: its header fields (never the subject or
// the body) and where it is: in_custody (some addressee still waits),
// settled (kept in the journal), or purged (only the audit log's record
// of it remains: no addressees, no size).
type JournalRow struct {
	ID             telegram.ID             `cbor:"1,keyasint" json:"id"`
	FiledAt        time.Time               `cbor:"2,keyasint" json:"filed_at"`
	From           telegram.Address        `cbor:"3,keyasint" json:"from"`
	To             []telegram.Address      `cbor:"4,keyasint" json:"to"`
	Precedence     telegram.Precedence     `cbor:"5,keyasint" json:"precedence"`
	Classification telegram.Classification `cbor:"6,keyasint" json:"classification"`
	BodyLen        int64                   `cbor:"7,keyasint" json:"body_len"`
	State          string                  `cbor:"8,keyasint" json:"state"`
}

// JournalPage answers JournalQuery. Resume, when not 0, is the Before of
// the next page. Withheld counts telegrams above the operator's clearance
// left out of the page.
type JournalPage struct {
	Rows     []JournalRow `cbor:"1,keyasint"`
	Resume   uint64       `cbor:"2,keyasint,omitempty"`
	Withheld int          `cbor:"3,keyasint,omitempty"`
}
