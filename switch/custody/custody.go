// Package custody decides the life of a telegram for one addressee after
// filing: when it may be handed out, what an acknowledgement, an expiry, a
// crash, an operator's hold, release, cancel or requeue, or a failed
// integrity check does to it, and what each of those owes the sender and
// the audit log.
//
// It is a pure core in the manner of etcd's raft Step: State and Event
// in, with the time passed in and the policy; new State and Effects out.
// No storage, no network, no goroutines, no clock of its own. The store
// applies the effects in the commit that reads the state (moving the
// queue entry, writing the delivery state, queueing the report, appending
// the audit entries); the delivery path asks Offer before it writes a
// hand-out. Everything a transition depends on is in its arguments, so
// every rule is one table row in custody_test.go.
package custody

import (
	"fmt"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Phase is where one addressee's copy of a telegram is.
type Phase uint8

// Phases. Deferred, Queued, Held and Quarantined are pending: the
// addressee still waits for the telegram. Parked is reported NOT_DELIVERED but kept for an
// operator to requeue. Delivered and NotDelivered are settled for good.
const (
	Queued       Phase = iota + 1 // in its queue, waiting for a terminal (or in flight to one)
	Held                          // taken out of its queue by an operator until released
	Quarantined                   // a record failed its integrity check; waits for an operator
	Parked                        // out of attempts; reported not delivered, kept for an operator
	Delivered                     // a terminal of the addressee acknowledged it
	NotDelivered                  // withdrawn for good: expired, cancelled
	Deferred                      // filed for delivery at a later time; queued when it comes (Due)
	Relayed                       // handed to the next switch, which committed it: custody passed on (settled here)
	Moved                         // re-addressed by an operator to a successor agency, whose copy took its place (settled)
)

var phaseNames = [...]string{"", "queued", "held", "quarantined", "parked", "delivered", "not delivered", "deferred", "relayed", "moved"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) && p > 0 {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Pending reports whether the addressee still waits for the telegram.
func (p Phase) Pending() bool { return p == Queued || p == Held || p == Quarantined || p == Deferred }

// Place is where a phase keeps the addressee's entry: the queue the
// scheduler hands out from, the held list, the parked list (parked and
// quarantined), the deferred list, or nowhere (settled).
type Place uint8

// Places.
const (
	Nowhere Place = iota
	InQueue
	InHeldList
	InParkedList
	InDeferredList
)

// Place of a phase.
func (p Phase) Place() Place {
	switch p {
	case Queued:
		return InQueue
	case Held:
		return InHeldList
	case Quarantined, Parked:
		return InParkedList
	case Deferred:
		return InDeferredList
	}
	return Nowhere
}

// State is one addressee's custody of one telegram.
type State struct {
	Phase Phase
	// Reason says why it was not delivered: audit.Expired, audit.Parked,
	// or an operator's words for a cancel.
	Reason string
	// Attempts counts hand-outs to a terminal of the addressee; Cut those
	// of them a crash of the switch may have cut (they do not lead to
	// parking).
	Attempts, Cut int
	// Overdue: passed its speed-of-service target while pending.
	Overdue bool
}

// Failed is how many attempts failed at the addressee's end, as far as the
// switch can tell: what decides parking.
func (s State) Failed() int { return s.Attempts - s.Cut }

// Kind is what happens to an addressee's copy.
type Kind uint8

// Event kinds.
const (
	Attempt    Kind = iota + 1 // handed to a terminal (counted)
	Ack                        // a terminal acknowledged it
	Expire                     // its latest delivery time passed
	Park                       // out of attempts (Offer said so)
	Cancel                     // an operator withdrew it
	Hold                       // an operator took it out of its queue
	Release                    // an operator put a held one back
	Requeue                    // an operator put a parked or quarantined one back
	Quarantine                 // a record of it failed its integrity check
	Overdue                    // its speed-of-service target passed
	Due                        // the delivery time of a deferred telegram came
	Resend                     // the sender or an operator sent a delivered one again (from the journal)
	HandOver                   // the next switch acknowledged taking custody (Actor: that switch)
	Reported                   // the delivery report came back from further on (Status, Reason; Actor: the delivering terminal)
	Reject                     // a terminal refused it: it failed end-to-end verification (Status-less; Reason: signature or unreadable, Detail)
	Move                       // an operator re-addressed it to a successor agency (To); the store queues the successor's copy
)

var kindNames = [...]string{"", "attempt", "ack", "expire", "park", "cancel", "hold", "release", "requeue", "quarantine", "overdue", "due", "resend", "hand over", "reported", "reject", "move"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is one thing that happens to an addressee's copy.
type Event struct {
	Kind Kind
	// Actor: the terminal (Attempt, Ack) or operator (Cancel, Hold,
	// Release, Requeue) that acts; empty for the switch.
	Actor string
	// Reason: an operator's words (Cancel), what failed (Quarantine), how
	// long it has waited (Overdue), the next hop and the link's sequence
	// number (HandOver).
	Reason string
	// InFlight: a terminal holds the telegram unacknowledged at this
	// moment (seen by the delivery side). Expiry, cancel and hold leave
	// a delivery in flight alone: its acknowledgement settles it.
	InFlight bool
	// AfterCrash (Attempt): the telegram may have been in flight when the
	// switch last crashed, so the attempt before this one was cut.
	AfterCrash bool
	// Status (Reported): what the report from further on says, with
	// Reason for NOT_DELIVERED.
	Status telegram.Status
	// Detail (Reject): what failed, for the audit log; never content.
	Detail string
	// To (Move): the address the copy goes to now.
	To telegram.Address
}

// Policy is the switch's configuration that custody rules depend on.
type Policy struct {
	MaxAttempts int // failed hand-outs before a telegram is parked
}

// Report is a delivery report owed to the sender.
type Report struct {
	Status telegram.Status
	Reason string
}

// AuditEntry is an audit entry owed: its event, actor and reason.
type AuditEntry struct {
	Event, Actor, Reason string
}

// Effects is what a transition owes the world. The store applies them in
// the commit that read the state.
type Effects struct {
	// Applied is false when the event does not apply to the state (an
	// ack for a telegram no longer queued, a hold of one in flight): the
	// state is unchanged and nothing is owed.
	Applied bool
	// From and To: where the entry was and is now kept; an entry that
	// comes back to the queue keeps its sequence.
	From, To Place
	// Report to the sender, if any.
	Report *Report
	// Audit entries, in order.
	Audit []AuditEntry
	// At: when the addressee's copy was settled (delivered, not
	// delivered); zero if it was not.
	At time.Time
}

const switchActor = "switch"

// CheckDeliverAt is the rule for a deferred filing at now: a delivery
// time (zero: none) must not be before the filing time, and must be
// before the latest delivery time if there is one (or the telegram would
// expire undelivered, for certain).
func CheckDeliverAt(deliverAt, expiresAt, now time.Time) error {
	switch {
	case deliverAt.IsZero():
		return nil
	case deliverAt.Before(now):
		return fmt.Errorf("the delivery time %s is already past (the switch's time is %s)",
			deliverAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case !expiresAt.IsZero() && !deliverAt.Before(expiresAt):
		return fmt.Errorf("the delivery time %s is not before the latest delivery time %s: the telegram would expire undelivered",
			deliverAt.UTC().Format(time.RFC3339), expiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// Filed is the custody of a telegram just filed, for each addressee, and
// what the filing owes: queued at once, or deferred until deliverAt if
// that is later than now (the filing time). The effects' To is where the
// entry is kept; their audit entry is queued or deferred.
func Filed(deliverAt, now time.Time) (State, Effects) {
	if deliverAt.After(now) {
		return State{Phase: Deferred}, Effects{Applied: true, To: InDeferredList,
			Audit: []AuditEntry{{Event: audit.Deferred, Actor: switchActor, Reason: "until " + deliverAt.UTC().Format(time.RFC3339)}}}
	}
	return State{Phase: Queued}, Effects{Applied: true, To: InQueue, Audit: []AuditEntry{{Event: audit.Queued, Actor: switchActor}}}
}

// Step applies event e to state s at time now under policy p.
func Step(s State, e Event, now time.Time, p Policy) (State, Effects) {
	n := s
	var fx Effects
	actor := e.Actor
	if actor == "" {
		actor = switchActor
	}
	switch e.Kind {
	case Attempt:
		if s.Phase != Queued {
			return s, Effects{}
		}
		if e.AfterCrash && s.Attempts > s.Cut {
			n.Cut++
		}
		n.Attempts++
		fx.Audit = []AuditEntry{{Event: audit.Attempt, Actor: actor}}
	case Ack:
		if s.Phase != Queued {
			return s, Effects{}
		}
		n.Phase, n.Reason = Delivered, ""
		fx.Report = &Report{Status: telegram.Delivered}
		fx.Audit = []AuditEntry{{Event: audit.Delivered, Actor: actor}}
		fx.At = now
	case Reject:
		// The addressee's terminal could not verify or open it: never
		// delivered as valid, and the sender is told why.
		if s.Phase != Queued {
			return s, Effects{}
		}
		n.Phase, n.Reason = NotDelivered, e.Reason
		fx.Report = &Report{Status: telegram.NotDelivered, Reason: e.Reason}
		fx.Audit = []AuditEntry{{Event: audit.Rejected, Actor: actor, Reason: e.Reason + ": " + e.Detail}}
		fx.At = now
	case HandOver:
		// The next switch reports delivery (or not) to the sender in
		// time: nothing is owed to the sender here.
		if s.Phase != Queued {
			return s, Effects{}
		}
		n.Phase, n.Reason = Relayed, ""
		fx.Audit = []AuditEntry{{Event: audit.Relayed, Actor: actor, Reason: e.Reason}}
		fx.At = now
	case Reported:
		// A relayed copy's outcome, known here once the report passes on
		// its way to the sender: recorded, nothing more owed (the report
		// itself is queued for the sender, and audited, as it passes).
		if s.Phase != Relayed || (e.Status != telegram.Delivered && e.Status != telegram.NotDelivered) {
			return s, Effects{}
		}
		n.Phase, n.Reason = Delivered, ""
		if e.Status == telegram.NotDelivered {
			n.Phase, n.Reason = NotDelivered, e.Reason
		}
		fx.At = now
	case Expire:
		if !s.Phase.Pending() || (s.Phase == Queued && e.InFlight) {
			return s, Effects{}
		}
		n.Phase, n.Reason = NotDelivered, audit.Expired
		fx.Report = &Report{Status: telegram.NotDelivered, Reason: audit.Expired}
		fx.Audit = []AuditEntry{{Event: audit.Expired, Actor: actor}}
		fx.At = now
	case Park:
		if s.Phase != Queued {
			return s, Effects{}
		}
		n.Phase, n.Reason = Parked, audit.Parked
		fx.Report = &Report{Status: telegram.NotDelivered, Reason: audit.Parked}
		fx.Audit = []AuditEntry{{Event: audit.Parked, Actor: actor}}
		fx.At = now
	case Cancel:
		if !(s.Phase.Pending() || s.Phase == Parked) || (s.Phase == Queued && e.InFlight) {
			return s, Effects{}
		}
		n.Phase, n.Reason = NotDelivered, e.Reason
		fx.Report = &Report{Status: telegram.NotDelivered, Reason: e.Reason}
		fx.Audit = []AuditEntry{{Event: audit.Cancelled, Actor: actor, Reason: e.Reason}}
		fx.At = now
	case Hold:
		if s.Phase != Queued || e.InFlight {
			return s, Effects{}
		}
		n.Phase = Held
		fx.Audit = []AuditEntry{{Event: audit.Operator, Actor: actor, Reason: "hold"}}
	case Release:
		if s.Phase != Held {
			return s, Effects{}
		}
		n.Phase = Queued
		fx.Audit = []AuditEntry{{Event: audit.Operator, Actor: actor, Reason: "release"}}
	case Requeue:
		if s.Phase != Parked && s.Phase != Quarantined {
			return s, Effects{}
		}
		n.Phase, n.Reason, n.Attempts, n.Cut = Queued, "", 0, 0 // its attempts count afresh
		fx.Audit = []AuditEntry{{Event: audit.Operator, Actor: actor, Reason: "requeue"}}
	case Quarantine:
		if s.Phase != Queued {
			return s, Effects{}
		}
		n.Phase = Quarantined
		fx.Audit = []AuditEntry{{Event: audit.Integrity, Actor: actor, Reason: e.Reason}}
	case Due:
		if s.Phase != Deferred {
			return s, Effects{}
		}
		n.Phase = Queued
		fx.Audit = []AuditEntry{{Event: audit.Queued, Actor: actor}}
	case Resend:
		if s.Phase != Delivered {
			return s, Effects{}
		}
		// One attempt on record (the delivery), so the copy goes out
		// flagged possible duplicate, and failures count afresh.
		n.Phase, n.Reason, n.Attempts, n.Cut, n.Overdue = Queued, "", 1, 0, false
		fx.Audit = []AuditEntry{{Event: audit.Resent, Actor: actor, Reason: e.Reason}}
	case Move:
		// Queued (not in flight), held or deferred: the successor's copy
		// takes the same place. Parked and quarantined ones wait for an
		// operator's requeue first; a delivery in flight for its outcome.
		if (s.Phase != Queued && s.Phase != Held && s.Phase != Deferred) || (s.Phase == Queued && e.InFlight) || e.To == "" {
			return s, Effects{}
		}
		n.Phase, n.Reason = Moved, ""
		fx.Report = &Report{Status: telegram.Moved}
		fx.Audit = []AuditEntry{{Event: audit.Moved, Actor: actor, Reason: "to " + string(e.To)}}
		fx.At = now
	case Overdue:
		if !s.Phase.Pending() || s.Overdue {
			return s, Effects{}
		}
		n.Overdue = true
		fx.Audit = []AuditEntry{{Event: audit.Overdue, Actor: actor, Reason: e.Reason}}
	default:
		return s, Effects{}
	}
	fx.Applied, fx.From, fx.To = true, s.Phase.Place(), n.Phase.Place()
	return n, fx
}

// Decision is what Offer says to do with a telegram about to be handed to
// a terminal.
type Decision uint8

// Decisions.
const (
	Deliver  Decision = iota + 1 // write it (PossibleDuplicate says how)
	Skip                         // not in its queue any more (settled, held, quarantined): release the slot
	Withdraw                     // expire it instead (Step Expire)
	ParkIt                       // park it instead (Step Park)
)

// Offer is the check before a hand-out: s is the addressee's state,
// expired whether the telegram's latest delivery time has passed (by a
// clock the switch trusts), afterCrash whether it may have been in
// flight at the last crash, handedOut whether it may have been handed out
// before without an attempt on record (this run, or one a crash cut
// short: the scheduler's Dup). possibleDuplicate says the delivery must
// carry the flag.
func Offer(s State, expired, afterCrash, handedOut bool, p Policy) (d Decision, possibleDuplicate bool) {
	switch {
	case s.Phase != Queued:
		return Skip, false
	case expired:
		return Withdraw, false
	}
	failed := s.Failed()
	if afterCrash && s.Attempts > s.Cut {
		failed-- // the attempt before this one was cut by the crash
	}
	if failed >= p.MaxAttempts {
		return ParkIt, false
	}
	return Deliver, handedOut || s.Attempts > 0
}

// Finished reports whether no addressee waits for the telegram any more,
// parked ones included (they may be requeued): it is settled, and kept
// only for the journal's retention.
func Finished(states []State) bool {
	for _, s := range states {
		if s.Phase.Pending() || s.Phase == Parked {
			return false
		}
	}
	return true
}
