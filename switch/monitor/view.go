package monitor

import (
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// The console's view types. Their JSON names are the console's (and match
// tg queues' and tg sessions' fields, so an operator reads one vocabulary);
// they are the monitor's own, so that the protocol can change without
// changing the page.

// QueueRow is one agency and precedence.
type QueueRow struct {
	Agency           telegram.Address    `json:"agency"`
	Tier             string              `json:"tier"`
	Precedence       telegram.Precedence `json:"precedence"`
	Waiting          int64               `json:"waiting"`
	InFlight         int64               `json:"in_flight"`
	Parked           int64               `json:"parked"`
	Held             int64               `json:"held"`
	Deferred         int64               `json:"deferred"`
	Overdue          int64               `json:"overdue"`
	OldestAgeSeconds float64             `json:"oldest_age_seconds"`
	AgencyHeld       bool                `json:"agency_held"`
	Terminals        int                 `json:"terminals"`
	Unlisted         bool                `json:"unlisted,omitempty"`
}

// OverdueRow is one telegram waiting past its speed-of-service target.
type OverdueRow struct {
	ID         telegram.ID         `json:"id"`
	Agency     telegram.Address    `json:"agency"`
	Precedence telegram.Precedence `json:"precedence"`
	AgeSeconds float64             `json:"age_seconds"`
}

// Session is one connected session.
type Session struct {
	Agency      telegram.Address `json:"agency"`
	Terminal    string           `json:"terminal"`
	Role        string           `json:"role"`
	Since       time.Time        `json:"since"`
	Remote      string           `json:"remote"`
	InFlight    int              `json:"in_flight"`
	Inbox       bool             `json:"inbox"`
	KeyExchange string           `json:"key_exchange"`
}

// Totals are counters since the switch started, for rates.
type Totals struct {
	At        time.Time `json:"at"`
	Filed     [5]int64  `json:"filed"`     // by precedence (index 1..4)
	Delivered [5]int64  `json:"delivered"` // by precedence
	// LatencyNanos sums the delivery latencies, by precedence.
	LatencyNanos [5]int64 `json:"-"`
}
