package filing

import (
	"fmt"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// Admission control keeps headroom for urgent traffic when the switch is
// saturated. The switch measures, at every interval, how long filings
// waited for its commit loop (the queue delay: how far it is behind) and
// how many ROUTINE and PRIORITY filings it admitted; Admission.Step turns
// that into a decision. Below the target delay nothing is limited. Above
// it, ROUTINE filings are admitted at a rate that starts a fifth below
// what was admitted and falls by a fifth each interval the delay stays
// above the target (down to a floor), and rises by a tenth each interval
// it is under half the target; at the floor, still saturated, PRIORITY is
// limited too. Limiting stops once the rate is well above what is
// admitted and the delay has stayed low for a while. FLASH and IMMEDIATE
// are never limited. A refused filing is told to retry after RetryAfter.

// AdmissionPolicy is the configuration of admission control.
type AdmissionPolicy struct {
	Target time.Duration // the queue delay the switch keeps under; 0 turns admission control off
	Floor  float64       // the lowest admission rate, per second
}

// Admission is the state of admission control.
type Admission struct {
	Level int     // 0: nothing limited; 1: ROUTINE; 2: ROUTINE and PRIORITY
	Rate  float64 // admissions per second of the limited precedences
	calm  int     // consecutive intervals with the delay under half the target
}

// Intervals of calm before a level is dropped.
const (
	calmToLower = 10
	calmToStop  = 20
)

// Step returns the state after an interval of length dt in which the
// longest queue delay was delay and admitted filings of the limited (or,
// when nothing is limited, of ROUTINE and PRIORITY) precedences were
// admitted.
func (a Admission) Step(delay time.Duration, admitted int, dt time.Duration, p AdmissionPolicy) Admission {
	if p.Target <= 0 {
		return Admission{}
	}
	perS := float64(admitted) / dt.Seconds()
	switch {
	case delay > p.Target && a.Level == 0:
		return Admission{Level: 1, Rate: max(perS*0.8, p.Floor)}
	case delay > p.Target:
		a.calm = 0
		if a.Rate <= p.Floor && delay > 2*p.Target {
			a.Level = 2
		}
		a.Rate = max(a.Rate*0.8, p.Floor)
		return a
	case a.Level == 0:
		return a
	case delay < p.Target/2:
		a.calm++
		a.Rate *= 1.1
	default:
		a.calm = 0
	}
	if a.Level == 2 && a.calm >= calmToLower {
		a.Level, a.calm = 1, 0
	}
	if a.Level == 1 && a.calm >= calmToStop && a.Rate > 1.5*perS {
		return Admission{}
	}
	return a
}

// Limits reports whether filings of precedence p are limited.
func (a Admission) Limits(p telegram.Precedence) bool {
	return a.Level >= 1 && p == telegram.Routine || a.Level >= 2 && p == telegram.Priority
}

// RetryAfter is the wait a refused filing is told to take before trying
// again: about what a burst of a tenth of a second's admissions needs.
func (a Admission) RetryAfter() time.Duration {
	return 100 * time.Millisecond * time.Duration(a.Level)
}

// String describes the state for the log, the audit log and tg top.
func (a Admission) String() string {
	switch a.Level {
	case 0:
		return "admission control: nothing limited"
	case 1:
		return fmt.Sprintf("admission control: ROUTINE limited to %.0f filings/s", a.Rate)
	}
	return fmt.Sprintf("admission control: ROUTINE and PRIORITY limited to %.0f filings/s", a.Rate)
}
