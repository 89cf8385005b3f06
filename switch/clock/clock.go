// Package clock is the switch's one clock, and its judgement of whether the
// system's wall clock can be believed.
//
// Decisions that cannot be undone depend on the time: a telegram past its
// latest delivery time is withdrawn and its sender told NOT_DELIVERED; one
// past its speed-of-service target is marked overdue; audit entries carry
// times that an auditor searches by, and that never go back. A wall clock
// set hours wrong, or stepped while the switch runs, would make those
// decisions wrong for good. So:
//
//   - While the switch runs, its time is the wall clock followed on the
//     monotonic clock: each reading is compared with the last trusted one
//     carried forward by the monotonic time elapsed. A difference within
//     the tolerance (an NTP slew) is followed; a larger one is a jump: the
//     clock is then untrusted, and Now keeps returning the last trusted time
//     carried forward, until the wall clock comes back within the tolerance
//     of it or an operator confirms the wall clock.
//   - At start, the wall clock is compared with the latest time the switch
//     recorded (its last audit entry): earlier by more than the tolerance,
//     it went back, and it is untrusted until it passes that time or an
//     operator confirms. (A wall clock set ahead while the switch was down
//     cannot be told from a long stop; it is caught only by the jump back
//     when someone corrects it.)
//
// While the clock is untrusted the switch refuses new filings, takes no
// expiry or overdue decision, and goes on delivering.
//
// The package has no I/O: the wall and monotonic clocks come in as a
// Source, so tests step them at will.
package clock

import (
	"fmt"
	"sync"
	"time"
)

// Source is where time comes from.
type Source struct {
	Wall func() time.Time     // the wall clock, without a monotonic reading
	Mono func() time.Duration // a monotonic clock: time elapsed since a fixed point
}

// System is the machine's clocks.
func System() Source {
	start := time.Now()
	return Source{Wall: func() time.Time { return time.Now().Round(0) }, Mono: func() time.Duration { return time.Since(start) }}
}

// DefaultTolerance is how far the wall clock may move from the switch's
// time at once before it is untrusted.
const DefaultTolerance = 2 * time.Minute

// Clock is the switch's time. It is safe for concurrent use.
type Clock struct {
	src       Source
	tolerance time.Duration

	mu         sync.Mutex
	anchorWall time.Time     // the last trusted wall reading
	anchorMono time.Duration // and the monotonic time it was taken at
	behind     time.Time     // while untrusted since the start: the latest time recorded before
	why        string        // empty while trusted
}

// New makes a clock on src, trusted from the start; Start checks it
// against the latest recorded time.
func New(src Source, tolerance time.Duration) *Clock {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	c := &Clock{src: src, tolerance: tolerance}
	c.anchorWall, c.anchorMono = src.Wall(), src.Mono()
	return c
}

// Start compares the wall clock with last, the latest time the switch
// recorded before this start, and reports whether it is trusted.
func (c *Clock) Start(last time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.src.Wall(); w.Before(last.Add(-c.tolerance)) {
		c.behind = last
		c.why = fmt.Sprintf("the clock reads %s, %s before the latest time the switch recorded (%s)",
			w.UTC().Format(time.RFC3339), last.Sub(w).Round(time.Second), last.UTC().Format(time.RFC3339))
	}
	return c.why == ""
}

// Now is the switch's time: the wall clock while trusted; while not, the
// last trusted reading carried forward on the monotonic clock (after a
// jump), or the wall clock (at a start behind the recorded time, where
// nothing better is known; the audit log keeps its own times from going
// back).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readLocked()
}

func (c *Clock) readLocked() time.Time {
	w, m := c.src.Wall(), c.src.Mono()
	carried := c.anchorWall.Add(m - c.anchorMono)
	drift := w.Sub(carried)
	jumped := drift > c.tolerance || drift < -c.tolerance
	switch {
	case c.why == "" && jumped:
		c.why = fmt.Sprintf("the clock jumped %s while the switch ran", signed(drift))
		return carried
	case c.why == "":
	case !c.behind.IsZero():
		// Behind since the start: trusted again once past that time.
		if w.Before(c.behind) {
			return w
		}
		c.why, c.behind = "", time.Time{}
	case jumped:
		return carried
	default:
		c.why = "" // the jump was undone
	}
	c.anchorWall, c.anchorMono = w, m
	return w
}

// Trusted reports whether time-dependent decisions may be taken, and if
// not, why.
func (c *Clock) Trusted() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readLocked()
	return c.why == "", c.why
}

// Offset is how far the wall clock is from the switch's time (zero while
// trusted).
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.readLocked()
	return c.src.Wall().Sub(now)
}

// Wall is the wall clock's reading.
func (c *Clock) Wall() time.Time { return c.src.Wall() }

// Confirm accepts the wall clock as right, on an operator's word.
func (c *Clock) Confirm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.why, c.behind = "", time.Time{}
	c.anchorWall, c.anchorMono = c.src.Wall(), c.src.Mono()
}

func signed(d time.Duration) string {
	if d < 0 {
		return "back " + (-d).Round(time.Second).String()
	}
	return "forward " + d.Round(time.Second).String()
}
