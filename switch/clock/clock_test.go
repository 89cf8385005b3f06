package clock

import (
	"strings"
	"testing"
	"time"
)

// fake is a wall clock set by hand and a monotonic clock advanced by hand.
type fake struct {
	wall time.Time
	mono time.Duration
}

func (f *fake) source() Source {
	return Source{Wall: func() time.Time { return f.wall }, Mono: func() time.Duration { return f.mono }}
}

// advance moves both clocks on by d, as time passing does.
func (f *fake) advance(d time.Duration) { f.wall, f.mono = f.wall.Add(d), f.mono+d }

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func TestClock(t *testing.T) {
	type step struct {
		advance time.Duration // both clocks
		step    time.Duration // the wall clock alone
		confirm bool
		trusted bool
		now     time.Duration // expected Now, from t0
	}
	cases := []struct {
		name  string
		last  time.Duration // latest recorded time at start, from t0
		steps []step
	}{
		{"time passes", -time.Hour, []step{
			{advance: time.Minute, trusted: true, now: time.Minute},
			{advance: time.Hour, trusted: true, now: time.Hour + time.Minute},
		}},
		{"a slew within the tolerance is followed", -time.Hour, []step{
			{step: 30 * time.Second, trusted: true, now: 30 * time.Second},
			{step: -90 * time.Second, trusted: true, now: -time.Minute},
		}},
		{"a jump forward is not followed until undone", -time.Hour, []step{
			{advance: time.Minute, trusted: true, now: time.Minute},
			{step: 7 * time.Hour, trusted: false, now: time.Minute},
			{advance: time.Minute, trusted: false, now: 2 * time.Minute},
			{step: -7 * time.Hour, trusted: true, now: 2 * time.Minute},
		}},
		{"a jump back, then an operator confirms it", -time.Hour, []step{
			{step: -2 * time.Hour, trusted: false, now: 0},
			{advance: time.Minute, trusted: false, now: time.Minute},
			{confirm: true, trusted: true, now: -2*time.Hour + time.Minute},
			{advance: time.Minute, trusted: true, now: -2*time.Hour + 2*time.Minute},
		}},
		{"behind the recorded time at start, until it passes it", 2 * time.Hour, []step{
			{trusted: false, now: 0},
			{advance: time.Hour, trusted: false, now: time.Hour},
			{advance: time.Hour, trusted: true, now: 2 * time.Hour},
		}},
		{"behind at start, confirmed", 2 * time.Hour, []step{
			{confirm: true, trusted: true, now: 0},
		}},
		{"behind at start by less than the tolerance", time.Minute, []step{
			{trusted: true, now: 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{wall: t0}
			c := New(f.source(), 2*time.Minute)
			c.Start(t0.Add(tc.last))
			for i, s := range tc.steps {
				f.advance(s.advance)
				f.wall = f.wall.Add(s.step)
				if s.confirm {
					c.Confirm()
				}
				ok, why := c.Trusted()
				if ok != s.trusted || (ok != (why == "")) {
					t.Fatalf("step %d: trusted %v (%q), want %v", i, ok, why, s.trusted)
				}
				if now := c.Now(); !now.Equal(t0.Add(s.now)) {
					t.Fatalf("step %d: Now %s, want %s", i, now.Sub(t0), s.now)
				}
			}
		})
	}
}

// The reason says what happened, in words an operator can act on.
func TestReasons(t *testing.T) {
	f := &fake{wall: t0}
	c := New(f.source(), time.Minute)
	c.Start(t0.Add(-time.Hour))
	f.wall = f.wall.Add(7 * time.Hour)
	if _, why := c.Trusted(); !strings.Contains(why, "jumped forward 7h0m0s") {
		t.Errorf("reason %q", why)
	}
	c = New(f.source(), time.Minute)
	c.Start(f.wall.Add(2 * time.Hour))
	if _, why := c.Trusted(); !strings.Contains(why, "2h0m0s before the latest time the switch recorded") {
		t.Errorf("reason %q", why)
	}
}
