package filing

import (
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// Admission control's decisions, interval by interval: when it starts,
// how the rate follows the queue delay, when PRIORITY is limited too, when
// it stops; FLASH and IMMEDIATE never limited.
func TestAdmissionStep(t *testing.T) {
	p := AdmissionPolicy{Target: 10 * time.Millisecond, Floor: 100}
	dt := 100 * time.Millisecond
	ms := time.Millisecond
	type step struct {
		delay    time.Duration
		admitted int // in the interval
		level    int
		rate     float64
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"under the target: nothing limited", []step{{5 * ms, 300, 0, 0}, {10 * ms, 300, 0, 0}}},
		{"over it: a fifth below what was admitted", []step{{11 * ms, 300, 1, 2400}}},
		{"still over: a fifth less each interval", []step{{20 * ms, 300, 1, 2400}, {20 * ms, 240, 1, 1920}, {15 * ms, 190, 1, 1536}}},
		{"between half and the target: held", []step{{20 * ms, 300, 1, 2400}, {7 * ms, 240, 1, 2400}}},
		{"under half: a tenth more", []step{{20 * ms, 300, 1, 2400}, {2 * ms, 240, 1, 2640}}},
		{"never below the floor", []step{{20 * ms, 5, 1, 100}, {15 * ms, 10, 1, 100}}},
		{"at the floor, twice the target: PRIORITY too", []step{{20 * ms, 5, 1, 100}, {25 * ms, 10, 2, 100}}},
		{"at the floor, under twice the target: ROUTINE only", []step{{20 * ms, 5, 1, 100}, {15 * ms, 10, 1, 100}}},
		{"off", []step{{time.Second, 300, 0, 0}}},
	}
	for _, c := range cases {
		var a Admission
		pol := p
		if c.name == "off" {
			pol = AdmissionPolicy{}
		}
		for i, s := range c.steps {
			a = a.Step(s.delay, s.admitted, dt, pol)
			if a.Level != s.level || int(a.Rate+0.5) != int(s.rate) {
				t.Errorf("%s, step %d: level %d rate %.1f, want %d %.0f", c.name, i, a.Level, a.Rate, s.level, s.rate)
			}
		}
	}
	// Calm: back to ROUTINE only after 10 calm intervals, and to nothing
	// after 20 more once the rate is well above what is admitted.
	var a Admission
	a = a.Step(20*ms, 5, dt, p)
	a = a.Step(25*ms, 5, dt, p)
	if a.Level != 2 {
		t.Fatalf("level %d, want 2", a.Level)
	}
	for i := 1; i <= 10; i++ {
		if a = a.Step(ms, 5, dt, p); (i < 10) != (a.Level == 2) {
			t.Fatalf("after %d calm intervals: level %d", i, a.Level)
		}
	}
	for i := 1; i <= 20; i++ {
		if a = a.Step(ms, 5, dt, p); (i < 20) != (a.Level == 1) {
			t.Fatalf("after %d more calm intervals: level %d", i, a.Level)
		}
	}
	if a != (Admission{}) {
		t.Fatalf("after calm: %+v, want nothing limited", a)
	}
	// A busy calm (admitting near the rate) keeps limiting.
	b := Admission{}.Step(20*ms, 300, dt, p)
	for range 30 {
		b = b.Step(ms, int(b.Rate*dt.Seconds()), dt, p)
	}
	if b.Level != 1 {
		t.Fatalf("admitting at the rate: level %d, want still limiting", b.Level)
	}
	for _, c := range []struct {
		level int
		prec  telegram.Precedence
		want  bool
	}{
		{0, telegram.Routine, false}, {1, telegram.Routine, true}, {1, telegram.Priority, false},
		{2, telegram.Priority, true}, {2, telegram.Immediate, false}, {2, telegram.Flash, false},
	} {
		if got := (Admission{Level: c.level}).Limits(c.prec); got != c.want {
			t.Errorf("level %d limits %s: %v, want %v", c.level, c.prec, got, c.want)
		}
	}
}
