package custody

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// A step of a scenario: an offer before a hand-out (offer set), or an
// event at minute t; want is the result as describe prints it.
type step struct {
	offer *offer
	file  *filing
	ev    Event
	t     int
	want  string
}

// filing files the telegram at minute t, to be delivered at minute
// deliverAt (0: at once), expiring at minute expiresAt (0: never); want
// is the refusal, or the state it starts in.
type filing struct{ deliverAt, expiresAt int }

// offer is a hand-out check: expired, afterCrash, handedOut.
type offer struct{ expired, afterCrash, handedOut bool }

func ev(k Kind, actor string) Event { return Event{Kind: k, Actor: actor} }

var (
	policy = Policy{MaxAttempts: 3}
	t0     = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
)

var placeNames = [...]string{"nowhere", "queue", "held", "parked", "deferred"}

// describe prints a state and the effects of reaching it in one line:
// "phase [reason] [attempts=N] [cut=N] [overdue] | from→to [report=…] [audit=event(actor:reason)…] [at=+Nm]",
// or "phase … | -" when the event did not apply.
func describe(s State, fx Effects) string {
	var b strings.Builder
	b.WriteString(s.Phase.String())
	if s.Reason != "" {
		fmt.Fprintf(&b, " %q", s.Reason)
	}
	if s.Attempts > 0 {
		fmt.Fprintf(&b, " attempts=%d", s.Attempts)
	}
	if s.Cut > 0 {
		fmt.Fprintf(&b, " cut=%d", s.Cut)
	}
	if s.Overdue {
		b.WriteString(" overdue")
	}
	if !fx.Applied {
		b.WriteString(" | -")
		return b.String()
	}
	fmt.Fprintf(&b, " | %s→%s", placeNames[fx.From], placeNames[fx.To])
	if fx.Report != nil {
		fmt.Fprintf(&b, " report=%s", fx.Report.Status)
		if fx.Report.Reason != "" {
			fmt.Fprintf(&b, "(%s)", fx.Report.Reason)
		}
	}
	for _, a := range fx.Audit {
		fmt.Fprintf(&b, " audit=%s(%s", a.Event, a.Actor)
		if a.Reason != "" {
			fmt.Fprintf(&b, ":%s", a.Reason)
		}
		b.WriteString(")")
	}
	if !fx.At.IsZero() {
		fmt.Fprintf(&b, " at=+%dm", int(fx.At.Sub(t0)/time.Minute))
	}
	return b.String()
}

func decision(d Decision, dup bool) string {
	s := [...]string{"", "deliver", "skip", "withdraw", "park"}[d]
	if dup {
		s += " flagged"
	}
	return s
}

// The custody rules, one scenario per row: each starts from a telegram
// just queued for one addressee, and runs its steps in order.
func TestScenarios(t *testing.T) {
	for _, sc := range []struct {
		name  string
		start State
		steps []step
	}{
		{name: "delivered and acknowledged", steps: []step{
			{offer: &offer{}, want: "deliver"},
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: ev(Ack, "t1"), t: 1, want: `delivered attempts=1 | queue→nowhere report=DELIVERED audit=delivered(t1) at=+1m`},
			{ev: ev(Ack, "t2"), t: 2, want: "delivered attempts=1 | -"}, // a second ack changes nothing
			{offer: &offer{}, want: "skip"},
		}},
		{name: "handed to the next switch: custody passed on, nothing owed to the sender here", steps: []step{
			{offer: &offer{}, want: "deliver"},
			{ev: ev(Attempt, "HN-SW"), want: "queued attempts=1 | queue→queue audit=attempt(HN-SW)"},
			{ev: Event{Kind: HandOver, Actor: "HN-SW", Reason: "to HN-SW, link sequence 7"}, t: 1, want: `relayed attempts=1 | queue→nowhere audit=relayed(HN-SW:to HN-SW, link sequence 7) at=+1m`},
			{ev: ev(HandOver, "TW-SW"), t: 2, want: "relayed attempts=1 | -"}, // once only
			{ev: ev(Ack, "t1"), t: 2, want: "relayed attempts=1 | -"},
			{ev: ev(Expire, ""), t: 90, want: "relayed attempts=1 | -"}, // the next switch expires it
			{ev: Event{Kind: Cancel, Actor: "op", Reason: "x"}, want: "relayed attempts=1 | -"},
			{ev: ev(Resend, "op"), want: "relayed attempts=1 | -"},
			{offer: &offer{}, want: "skip"},
		}},
		{name: "a relayed copy learns its outcome from the report passing back: recorded, nothing more owed", start: State{Phase: Relayed}, steps: []step{
			{ev: Event{Kind: Reported, Actor: "NA.UBND/t1", Status: telegram.Delivered}, t: 3, want: "delivered | nowhere→nowhere at=+3m"},
			{ev: Event{Kind: Reported, Actor: "NA.UBND/t1", Status: telegram.Delivered}, t: 4, want: "delivered | -"}, // once only
		}},
		{name: "a relayed copy reported not delivered", start: State{Phase: Relayed}, steps: []step{
			{ev: Event{Kind: Reported, Status: telegram.NotDelivered, Reason: "expired"}, t: 3, want: `not delivered "expired" | nowhere→nowhere at=+3m`},
		}},
		{name: "a report for a copy still here changes nothing", steps: []step{
			{ev: Event{Kind: Reported, Status: telegram.Delivered}, want: "queued | -"},
		}},
		{name: "a held copy is not handed over", start: State{Phase: Held}, steps: []step{
			{ev: ev(HandOver, "HN-SW"), want: "held | -"},
		}},
		{name: "ack timeout: redelivered flagged possible duplicate", steps: []step{
			{offer: &offer{}, want: "deliver"},
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			// no ack: the slot comes back to the scheduler, marked handed out
			{offer: &offer{handedOut: true}, t: 2, want: "deliver flagged"},
			{ev: ev(Attempt, "t2"), t: 2, want: "queued attempts=2 | queue→queue audit=attempt(t2)"},
			{ev: ev(Ack, "t2"), t: 3, want: "delivered attempts=2 | queue→nowhere report=DELIVERED audit=delivered(t2) at=+3m"},
		}},
		{name: "resent from the journal after delivery: flagged, delivered again", steps: []step{
			{ev: ev(Resend, "op"), want: "queued | -"}, // only a delivered copy is sent again
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: ev(Attempt, "t1"), want: "queued attempts=2 | queue→queue audit=attempt(t1)"},
			{ev: ev(Ack, "t1"), t: 1, want: `delivered attempts=2 | queue→nowhere report=DELIVERED audit=delivered(t1) at=+1m`},
			{ev: Event{Kind: Resend, Actor: "HN.UBND/t", Reason: "lost"}, t: 5, want: `queued attempts=1 | nowhere→queue audit=resent(HN.UBND/t:lost)`},
			{offer: &offer{}, want: "deliver flagged"},
			{ev: ev(Ack, "t2"), t: 6, want: `delivered attempts=1 | queue→nowhere report=DELIVERED audit=delivered(t2) at=+6m`},
		}},
		{name: "an expired or cancelled copy is not resent", start: State{Phase: NotDelivered, Reason: "expired"}, steps: []step{
			{ev: ev(Resend, "op"), want: `not delivered "expired" | -`},
		}},
		{name: "a restart learns attempts from the state: flagged", start: State{Phase: Queued, Attempts: 1}, steps: []step{
			{offer: &offer{}, want: "deliver flagged"},
		}},
		{name: "parked after max attempts, then requeued afresh", steps: []step{
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: ev(Attempt, "t1"), want: "queued attempts=2 | queue→queue audit=attempt(t1)"},
			{offer: &offer{handedOut: true}, want: "deliver flagged"},
			{ev: ev(Attempt, "t1"), want: "queued attempts=3 | queue→queue audit=attempt(t1)"},
			{offer: &offer{handedOut: true}, want: "park"},
			{ev: ev(Park, ""), t: 5, want: `parked "parked" attempts=3 | queue→parked report=NOT_DELIVERED(parked) audit=parked(switch) at=+5m`},
			{ev: ev(Ack, "t1"), want: `parked "parked" attempts=3 | -`},
			{offer: &offer{}, want: "skip"},
			{ev: ev(Requeue, "op"), t: 6, want: "queued | parked→queue audit=operator(op:requeue)"},
			{offer: &offer{}, want: "deliver"},
		}},
		{name: "attempts cut by crashes do not park", steps: []step{
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: Event{Kind: Attempt, Actor: "t1", AfterCrash: true}, want: "queued attempts=2 cut=1 | queue→queue audit=attempt(t1)"},
			{ev: Event{Kind: Attempt, Actor: "t1", AfterCrash: true}, want: "queued attempts=3 cut=2 | queue→queue audit=attempt(t1)"},
			// one failed so far, and this hand-out cuts the third: deliver
			{offer: &offer{afterCrash: true, handedOut: true}, want: "deliver flagged"},
			{ev: ev(Attempt, "t1"), want: "queued attempts=4 cut=2 | queue→queue audit=attempt(t1)"},
			{ev: ev(Attempt, "t1"), want: "queued attempts=5 cut=2 | queue→queue audit=attempt(t1)"},
			{offer: &offer{handedOut: true}, want: "park"},
		}},
		{name: "a first attempt after a crash cuts nothing", steps: []step{
			{ev: Event{Kind: Attempt, Actor: "t1", AfterCrash: true}, want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
		}},
		{name: "expired while pending", steps: []step{
			{offer: &offer{expired: true}, t: 90, want: "withdraw"},
			{ev: ev(Expire, ""), t: 90, want: `not delivered "expired" | queue→nowhere report=NOT_DELIVERED(expired) audit=expired(switch) at=+90m`},
			{ev: ev(Release, "op"), want: `not delivered "expired" | -`},
		}},
		{name: "expired while held", start: State{Phase: Held}, steps: []step{
			{ev: ev(Expire, ""), t: 90, want: `not delivered "expired" | held→nowhere report=NOT_DELIVERED(expired) audit=expired(switch) at=+90m`},
		}},
		{name: "expiry leaves a delivery in flight to its ack", steps: []step{
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: Event{Kind: Expire, InFlight: true}, t: 90, want: "queued attempts=1 | -"},
			{ev: ev(Ack, "t1"), t: 91, want: "delivered attempts=1 | queue→nowhere report=DELIVERED audit=delivered(t1) at=+91m"},
		}},
		{name: "expiry of one in flight that is never acknowledged: the next offer withdraws it", steps: []step{
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: Event{Kind: Expire, InFlight: true}, t: 90, want: "queued attempts=1 | -"},
			{offer: &offer{expired: true, handedOut: true}, t: 92, want: "withdraw"},
			{ev: ev(Expire, ""), t: 92, want: `not delivered "expired" attempts=1 | queue→nowhere report=NOT_DELIVERED(expired) audit=expired(switch) at=+92m`},
		}},
		{name: "hold and release keep attempts", steps: []step{
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: ev(Hold, "op"), want: "held attempts=1 | queue→held audit=operator(op:hold)"},
			{ev: ev(Hold, "op"), want: "held attempts=1 | -"},
			{ev: ev(Ack, "t1"), want: "held attempts=1 | -"},
			{ev: ev(Attempt, "t1"), want: "held attempts=1 | -"},
			{ev: ev(Release, "op"), want: "queued attempts=1 | held→queue audit=operator(op:release)"},
			{offer: &offer{}, want: "deliver flagged"},
		}},
		{name: "a hold racing a buffered hand-out: the hand-out is skipped", steps: []step{
			// the scheduler buffered the telegram for a session, then
			// an operator held it, then the session's writer offers it
			{ev: ev(Hold, "op"), want: "held | queue→held audit=operator(op:hold)"},
			{offer: &offer{}, want: "skip"},
		}},
		{name: "a hold leaves a delivery in flight alone", steps: []step{
			{ev: Event{Kind: Hold, Actor: "op", InFlight: true}, want: "queued | -"},
		}},
		{name: "cancel while queued", steps: []step{
			{ev: Event{Kind: Cancel, Actor: "op", Reason: "sent in error"}, t: 3, want: `not delivered "sent in error" | queue→nowhere report=NOT_DELIVERED(sent in error) audit=cancelled(op:sent in error) at=+3m`},
		}},
		{name: "cancel while held, parked or quarantined", start: State{Phase: Held}, steps: []step{
			{ev: Event{Kind: Cancel, Actor: "op", Reason: "x"}, want: `not delivered "x" | held→nowhere report=NOT_DELIVERED(x) audit=cancelled(op:x) at=+0m`},
		}},
		{name: "cancel a parked one", start: State{Phase: Parked, Reason: "parked", Attempts: 3}, steps: []step{
			{ev: Event{Kind: Cancel, Actor: "op", Reason: "x"}, want: `not delivered "x" attempts=3 | parked→nowhere report=NOT_DELIVERED(x) audit=cancelled(op:x) at=+0m`},
		}},
		{name: "a terminal refuses a telegram that fails end-to-end verification", steps: []step{
			{ev: ev(Attempt, "t1"), want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: Event{Kind: Reject, Actor: "t1", Reason: "signature", Detail: "altered"}, t: 2, want: `not delivered "signature" attempts=1 | queue→nowhere report=NOT_DELIVERED(signature) audit=rejected(t1:signature: altered) at=+2m`},
			{ev: ev(Ack, "t1"), want: `not delivered "signature" attempts=1 | -`},
			{ev: Event{Kind: Reject, Actor: "t1", Reason: "unreadable"}, want: `not delivered "signature" attempts=1 | -`},
		}},
		{name: "a rejection of a copy not in its queue changes nothing", start: State{Phase: Held}, steps: []step{
			{ev: Event{Kind: Reject, Actor: "t1", Reason: "signature"}, want: "held | -"},
		}},
		{name: "moved to a successor agency (a merger): settled here, the sender told where", steps: []step{
			{ev: Event{Kind: Move, Actor: "op", To: "NA.UBND", InFlight: true}, want: "queued | -"}, // in flight: its outcome first
			{ev: Event{Kind: Move, Actor: "op"}, want: "queued | -"},                                // nowhere to go
			{ev: Event{Kind: Move, Actor: "op", To: "NA.UBND"}, t: 3, want: "moved | queue→nowhere report=MOVED audit=moved(op:to NA.UBND) at=+3m"},
			{offer: &offer{}, want: "skip"},
			{ev: ev(Ack, "t1"), want: "moved | -"},
			{ev: Event{Kind: Move, Actor: "op", To: "HN.UBND"}, want: "moved | -"}, // once
			{ev: ev(Expire, ""), t: 90, want: "moved | -"},                         // the successor's copy expires
		}},
		{name: "held and deferred copies move; parked ones wait for a requeue", start: State{Phase: Held}, steps: []step{
			{ev: Event{Kind: Move, Actor: "op", To: "NA.UBND"}, want: "moved | held→nowhere report=MOVED audit=moved(op:to NA.UBND) at=+0m"},
		}},
		{name: "a deferred copy moves", start: State{Phase: Deferred}, steps: []step{
			{ev: Event{Kind: Move, Actor: "directory", To: "NA.UBND"}, want: "moved | deferred→nowhere report=MOVED audit=moved(directory:to NA.UBND) at=+0m"},
		}},
		{name: "a parked copy does not move", start: State{Phase: Parked, Reason: "parked", Attempts: 3}, steps: []step{
			{ev: Event{Kind: Move, Actor: "op", To: "NA.UBND"}, want: `parked "parked" attempts=3 | -`},
		}},
		{name: "cancel leaves a delivery in flight to its ack", steps: []step{
			{ev: Event{Kind: Cancel, Actor: "op", Reason: "x", InFlight: true}, want: "queued | -"},
		}},
		{name: "quarantined, then requeued or cancelled", steps: []step{
			{ev: Event{Kind: Quarantine, Reason: "body failed its check"}, want: "quarantined | queue→parked audit=integrity(switch:body failed its check)"},
			{offer: &offer{}, want: "skip"},
			{ev: ev(Hold, "op"), want: "quarantined | -"},
			{ev: ev(Ack, "t1"), want: "quarantined | -"},
			{ev: ev(Requeue, "op"), want: "queued | parked→queue audit=operator(op:requeue)"},
		}},
		{name: "quarantined expires", start: State{Phase: Quarantined}, steps: []step{
			{ev: ev(Expire, ""), want: `not delivered "expired" | parked→nowhere report=NOT_DELIVERED(expired) audit=expired(switch) at=+0m`},
		}},
		{name: "overdue once, while pending", steps: []step{
			{ev: ev(Overdue, ""), want: "queued overdue | queue→queue audit=overdue(switch)"},
			{ev: ev(Overdue, ""), want: "queued overdue | -"},
			{ev: ev(Ack, "t1"), want: "delivered overdue | queue→nowhere report=DELIVERED audit=delivered(t1) at=+0m"},
			{ev: ev(Overdue, ""), want: "delivered overdue | -"},
		}},
		{name: "deferred: before its time it waits, at its time it is queued", steps: []step{
			{file: &filing{deliverAt: 30}, want: "deferred | nowhere→deferred audit=deferred(switch:until 2026-11-30T08:30:00Z)"},
			{offer: &offer{}, t: 10, want: "skip"},
			{ev: ev(Attempt, "t1"), t: 10, want: "deferred | -"},
			{ev: ev(Ack, "t1"), t: 10, want: "deferred | -"},
			{ev: ev(Hold, "op"), t: 10, want: "deferred | -"},
			{ev: ev(Due, ""), t: 30, want: "queued | deferred→queue audit=queued(switch)"},
			{ev: ev(Due, ""), t: 30, want: "queued | -"}, // a second timer changes nothing
			{offer: &offer{}, t: 30, want: "deliver"},
			{ev: ev(Attempt, "t1"), t: 31, want: "queued attempts=1 | queue→queue audit=attempt(t1)"},
			{ev: ev(Ack, "t1"), t: 31, want: "delivered attempts=1 | queue→nowhere report=DELIVERED audit=delivered(t1) at=+31m"},
		}},
		{name: "deferred: a delivery time at the filing time queues at once", steps: []step{
			{file: &filing{deliverAt: 5}, t: 5, want: "queued | nowhere→queue audit=queued(switch)"},
			{ev: ev(Due, ""), t: 5, want: "queued | -"},
		}},
		{name: "deferred: after its time (the switch was down) it is queued when the timer runs", start: State{Phase: Deferred}, steps: []step{
			{offer: &offer{}, t: 200, want: "skip"},
			{ev: ev(Due, ""), t: 200, want: "queued | deferred→queue audit=queued(switch)"},
		}},
		{name: "deferred: a delivery time already past, or at or after the expiry, is refused", steps: []step{
			{file: &filing{deliverAt: 4}, t: 5, want: "refused: the delivery time 2026-11-30T08:04:00Z is already past (the switch's time is 2026-11-30T08:05:00Z)"},
			{file: &filing{deliverAt: 60, expiresAt: 30}, want: "refused: the delivery time 2026-11-30T09:00:00Z is not before the latest delivery time 2026-11-30T08:30:00Z: the telegram would expire undelivered"},
			{file: &filing{deliverAt: 30, expiresAt: 30}, want: "refused: the delivery time 2026-11-30T08:30:00Z is not before the latest delivery time 2026-11-30T08:30:00Z: the telegram would expire undelivered"},
			{file: &filing{deliverAt: 29, expiresAt: 30}, want: "deferred | nowhere→deferred audit=deferred(switch:until 2026-11-30T08:29:00Z)"},
		}},
		{name: "deferred: expires, or is cancelled, while deferred", start: State{Phase: Deferred}, steps: []step{
			{ev: Event{Kind: Cancel, Actor: "op", Reason: "x", InFlight: true}, t: 1, want: `not delivered "x" | deferred→nowhere report=NOT_DELIVERED(x) audit=cancelled(op:x) at=+1m`},
			{ev: ev(Due, ""), t: 30, want: `not delivered "x" | -`},
		}},
		{name: "deferred expires (restart with the timers overdue)", start: State{Phase: Deferred}, steps: []step{
			{ev: ev(Expire, ""), t: 90, want: `not delivered "expired" | deferred→nowhere report=NOT_DELIVERED(expired) audit=expired(switch) at=+90m`},
		}},
		{name: "settled telegrams take nothing more", start: State{Phase: NotDelivered, Reason: "expired"}, steps: []step{
			{ev: ev(Requeue, "op"), want: `not delivered "expired" | -`},
			{ev: ev(Park, ""), want: `not delivered "expired" | -`},
			{ev: ev(Quarantine, ""), want: `not delivered "expired" | -`},
			{ev: Event{Kind: Cancel, Reason: "x"}, want: `not delivered "expired" | -`},
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			s := sc.start
			if s.Phase == 0 && (len(sc.steps) == 0 || sc.steps[0].file == nil) {
				s.Phase = Queued
			}
			for i, st := range sc.steps {
				now := t0.Add(time.Duration(st.t) * time.Minute)
				var got string
				if st.file != nil {
					minute := func(m int) time.Time {
						if m == 0 {
							return time.Time{}
						}
						return t0.Add(time.Duration(m) * time.Minute)
					}
					at, exp := minute(st.file.deliverAt), minute(st.file.expiresAt)
					if err := CheckDeliverAt(at, exp, now); err != nil {
						got = "refused: " + err.Error()
					} else {
						var fx Effects
						s, fx = Filed(at, now)
						got = describe(s, fx)
					}
				} else if st.offer != nil {
					got = decision(Offer(s, st.offer.expired, st.offer.afterCrash, st.offer.handedOut, policy))
				} else {
					var fx Effects
					s, fx = Step(s, st.ev, now, policy)
					got = describe(s, fx)
				}
				if got != st.want {
					t.Fatalf("step %d (%v):\n got %s\nwant %s", i+1, stepName(st), got, st.want)
				}
			}
		})
	}
}

func stepName(st step) string {
	if st.file != nil {
		return fmt.Sprintf("file %+v", *st.file)
	}
	if st.offer != nil {
		return fmt.Sprintf("offer %+v", *st.offer)
	}
	return st.ev.Kind.String()
}

// A telegram's body goes once no addressee waits for it, parked ones
// included.
func TestFinished(t *testing.T) {
	for _, c := range []struct {
		phases []Phase
		want   bool
	}{
		{[]Phase{Delivered}, true},
		{[]Phase{Delivered, NotDelivered}, true},
		{[]Phase{Delivered, Queued}, false},
		{[]Phase{Delivered, Held}, false},
		{[]Phase{NotDelivered, Quarantined}, false},
		{[]Phase{Delivered, Parked}, false},
		{[]Phase{Delivered, Deferred}, false},
		{[]Phase{Relayed, Delivered}, true},
		{[]Phase{Relayed, Queued}, false},
	} {
		var ss []State
		for _, p := range c.phases {
			ss = append(ss, State{Phase: p})
		}
		if got := Finished(ss); got != c.want {
			t.Errorf("Finished(%v) = %v, want %v", c.phases, got, c.want)
		}
	}
}

// What decides parking: attempts that failed at the addressee's end. A
// hand-out after a crash counts the attempt before it as cut by the crash.
func TestOfferCountsOnlyFailedAttempts(t *testing.T) {
	for _, tc := range []struct {
		s          State
		afterCrash bool
		failed     int
	}{
		{State{Attempts: 5}, false, 5},
		{State{Attempts: 5}, true, 4},
		{State{Attempts: 5, Cut: 2}, false, 3},
		{State{Attempts: 5, Cut: 2}, true, 2},
		{State{Attempts: 2, Cut: 2}, true, 0}, // nothing left to count as cut
		{State{}, true, 0},
	} {
		tc.s.Phase = Queued
		if d, _ := Offer(tc.s, false, tc.afterCrash, false, Policy{MaxAttempts: tc.failed}); d != ParkIt && tc.failed > 0 {
			t.Errorf("%+v, after a crash %v: %s with max attempts %d, want park", tc.s, tc.afterCrash, decision(d, false), tc.failed)
		}
		if d, _ := Offer(tc.s, false, tc.afterCrash, false, Policy{MaxAttempts: tc.failed + 1}); d != Deliver {
			t.Errorf("%+v, after a crash %v: %s with max attempts %d, want deliver", tc.s, tc.afterCrash, decision(d, false), tc.failed+1)
		}
	}
}
