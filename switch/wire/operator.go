package wire

import (
	"github.com/dienbao/dienbao/switch/filing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// QueuesRequest asks for the queue figures (operators). With Overdue set,
// the reply also lists up to that many overdue telegrams, oldest first.
type QueuesRequest struct {
	Overdue int `cbor:"1,keyasint,omitempty"`
	// Ages asks for each row's age histogram (QueueRow.Ages).
	Ages bool `cbor:"2,keyasint,omitempty"`
}

// AgeBuckets are the upper bounds of the age histogram's buckets, as
// Postfix's qshape shows a queue: 0-1m, 1-5m, 5-10m, 10-30m, 30m-1h,
// 1-3h, 3-6h, and a last bucket for more than 6h.
var AgeBuckets = []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour}

// AgeBucket is the index in a QueueRow's Ages of a telegram of age age.
func AgeBucket(age time.Duration) int {
	for i, b := range AgeBuckets {
		if age < b {
			return i
		}
	}
	return len(AgeBuckets)
}

// QueueRow is one agency and precedence. JSON names are tg queues' fields.
type QueueRow struct {
	Agency           telegram.Address    `cbor:"1,keyasint" json:"agency"`
	Tier             string              `cbor:"2,keyasint" json:"tier"` // centre, province, district, commune
	Precedence       telegram.Precedence `cbor:"3,keyasint" json:"precedence"`
	Waiting          int64               `cbor:"4,keyasint" json:"waiting"`
	InFlight         int64               `cbor:"5,keyasint" json:"in_flight"`
	Parked           int64               `cbor:"6,keyasint" json:"parked"`
	Held             int64               `cbor:"7,keyasint" json:"held"`
	Overdue          int64               `cbor:"8,keyasint" json:"overdue"`
	OldestAgeSeconds float64             `cbor:"9,keyasint" json:"oldest_age_seconds"`
	AgencyHeld       bool                `cbor:"10,keyasint,omitempty" json:"agency_held"`
	Connected        int                 `cbor:"11,keyasint,omitempty" json:"terminals"`
	Deferred         int64               `cbor:"12,keyasint,omitempty" json:"deferred"` // filed for delivery at a later time
	// Ages counts the telegrams waiting in the queue (in flight
	// included; held, parked and deferred ones not) by age since filing,
	// one count per AgeBuckets bucket and one for older; only when asked.
	Ages []int64 `cbor:"13,keyasint,omitempty" json:"ages,omitempty"`
	// Unlisted: the agency is no longer in the directory but has custody
	// (list it again, moved_to or drain, to deliver or move it).
	Unlisted bool `cbor:"14,keyasint,omitempty" json:"unlisted"`
	// MovedTo and Drain: the directory says the agency is closing.
	MovedTo telegram.Address `cbor:"15,keyasint,omitempty" json:"moved_to,omitempty"`
	Drain   bool             `cbor:"16,keyasint,omitempty" json:"drain,omitempty"`
}

// OverdueRow is one telegram waiting past its speed-of-service target.
type OverdueRow struct {
	ID         telegram.ID         `cbor:"1,keyasint" json:"id"`
	Agency     telegram.Address    `cbor:"2,keyasint" json:"agency"`
	Precedence telegram.Precedence `cbor:"3,keyasint" json:"precedence"`
	AgeSeconds float64             `cbor:"4,keyasint" json:"age_seconds"`
}

// Totals are counters since the switch started, for rates.
type Totals struct {
	At        time.Time `cbor:"1,keyasint" json:"at"`
	Filed     [5]int64  `cbor:"2,keyasint" json:"filed"`     // by precedence (index 1..4)
	Delivered [5]int64  `cbor:"3,keyasint" json:"delivered"` // by precedence
}

// Queues answers QueuesRequest: one row per agency of the directory and
// precedence with anything in it (or a terminal connected).
type Queues struct {
	Rows    []QueueRow   `cbor:"1,keyasint"`
	Overdue []OverdueRow `cbor:"2,keyasint,omitempty"`
	Totals  Totals       `cbor:"3,keyasint"`
	// Minimize lists the MINIMIZE declarations in force.
	Minimize []filing.Minimize `cbor:"4,keyasint,omitempty"`
	// Admission says what admission control limits ("" when nothing).
	Admission string `cbor:"5,keyasint,omitempty"`
	// AgesTruncated: the age histograms stopped after a million entries.
	AgesTruncated bool `cbor:"6,keyasint,omitempty"`
	// Notices: the open incident notices the operator may see.
	Notices []Notice `cbor:"7,keyasint,omitempty"`
}

// SessionsRequest asks for the connected sessions (operators).
type SessionsRequest struct{}

// SessionInfo is one connected session.
type SessionInfo struct {
	Agency   telegram.Address `cbor:"1,keyasint,omitempty" json:"agency"`
	Terminal string           `cbor:"2,keyasint" json:"terminal"`
	Role     string           `cbor:"3,keyasint" json:"role"`
	Since    time.Time        `cbor:"4,keyasint" json:"since"`
	Remote   string           `cbor:"5,keyasint" json:"remote"`
	InFlight int              `cbor:"6,keyasint" json:"in_flight"`
	Inbox    bool             `cbor:"7,keyasint,omitempty" json:"inbox"`
	// KeyExchange is the TLS key exchange group (X25519MLKEM768).
	KeyExchange string `cbor:"8,keyasint,omitempty" json:"key_exchange"`
}

// Sessions answers SessionsRequest.
type Sessions struct {
	Sessions []SessionInfo `cbor:"1,keyasint"`
}

// ShowRequest asks for one telegram's header and delivery states.
type ShowRequest struct {
	ID telegram.ID `cbor:"1,keyasint"`
}

// AddresseeState is one addressee's delivery state, for operators.
type AddresseeState struct {
	Addressee telegram.Address `cbor:"1,keyasint" json:"addressee"`
	State     string           `cbor:"2,keyasint" json:"state"` // waiting, in_flight, held, deferred, delivered, not_delivered, parked, relayed, moved
	Reason    string           `cbor:"3,keyasint,omitempty" json:"reason,omitempty"`
	At        time.Time        `cbor:"4,keyasint,omitzero" json:"at,omitzero"`
	Terminal  string           `cbor:"5,keyasint,omitempty" json:"terminal,omitempty"`
	Attempts  int              `cbor:"6,keyasint,omitempty" json:"attempts"`
	Overdue   bool             `cbor:"7,keyasint,omitempty" json:"overdue"`
	Via       string           `cbor:"8,keyasint,omitempty" json:"via,omitempty"`      // relayed: the next switch, which has custody
	MovedTo   telegram.Address `cbor:"9,keyasint,omitempty" json:"moved_to,omitempty"` // moved: re-addressed there by an operator (tg move-queue)
}

// Show answers ShowRequest. The header comes without its subject: an
// operator never reads a subject or a body.
type Show struct {
	Header     telegram.Header  `cbor:"1,keyasint"`
	Addressees []AddresseeState `cbor:"2,keyasint"`
}

// Operator actions.
const (
	ActHold          = "hold"
	ActRelease       = "release"
	ActCancel        = "cancel"
	ActRequeue       = "requeue"
	ActHoldAgency    = "hold_agency"
	ActReleaseAgency = "release_agency"
)

// Operate asks for one operator action on a telegram (ID) or, for the
// agency actions, on an agency.
type Operate struct {
	Action string           `cbor:"1,keyasint"`
	ID     telegram.ID      `cbor:"2,keyasint,omitempty"`
	Agency telegram.Address `cbor:"3,keyasint,omitempty"`
	Reason string           `cbor:"4,keyasint,omitempty"`
}

// Operated says what an action changed.
type Operated struct {
	Done    []telegram.Address `cbor:"1,keyasint"` // addressees (or the agency) acted on
	Skipped []telegram.Address `cbor:"2,keyasint,omitempty"`
}

// ClockRequest asks for the switch's clock (operators); with Confirm, the
// operator vouches for the wall clock and the switch trusts it again.
type ClockRequest struct {
	Confirm bool `cbor:"1,keyasint,omitempty"`
}

// Clock is the switch's clock. JSON names are tg clock's fields.
type Clock struct {
	Trusted bool      `cbor:"1,keyasint" json:"trusted"`
	Reason  string    `cbor:"2,keyasint,omitempty" json:"reason,omitempty"` // why not trusted
	Now     time.Time `cbor:"3,keyasint" json:"now"`                        // the switch's time
	Wall    time.Time `cbor:"4,keyasint" json:"wall"`                       // the machine's wall clock
}
