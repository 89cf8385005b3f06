package filing

import (
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Which declaration, if any, applies to a filing: by precedence, by the
// sender's agency or level, by time; a refusing one before a deferring one.
func TestMinimized(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	whole := Minimize{Number: 1, Below: telegram.Immediate, Reason: "storm"}
	district := Minimize{Number: 2, Below: telegram.Priority, Level: "district", Reason: "flood"}
	listed := Minimize{Number: 3, Below: telegram.Flash, Agencies: []telegram.Address{"NA.TU"}, Reason: "exercise", Defer: true}
	ended := Minimize{Number: 4, Below: telegram.Flash, Reason: "over", Until: now}
	later := Minimize{Number: 5, Below: telegram.Flash, Reason: "until tonight", Until: now.Add(time.Hour), Defer: true}
	hn := directory.Agency{Address: "HN.UBND"}                          // a province
	na := directory.Agency{Address: "NA.TU"}                            // a province, listed in 3
	huyen := directory.Agency{Address: "NA.DL.UBND", Level: "district"} // a district
	cases := []struct {
		name string
		in   []Minimize
		from directory.Agency
		p    telegram.Precedence
		want uint64 // 0: none applies
	}{
		{"nothing declared", nil, hn, telegram.Routine, 0},
		{"whole switch, routine", []Minimize{whole}, hn, telegram.Routine, 1},
		{"whole switch, priority", []Minimize{whole}, hn, telegram.Priority, 1},
		{"whole switch, immediate is not below", []Minimize{whole}, hn, telegram.Immediate, 0},
		{"whole switch, flash", []Minimize{whole}, hn, telegram.Flash, 0},
		{"district level, a district", []Minimize{district}, huyen, telegram.Routine, 2},
		{"district level, a province", []Minimize{district}, hn, telegram.Routine, 0},
		{"district level, priority is not below", []Minimize{district}, huyen, telegram.Priority, 0},
		{"listed agency", []Minimize{listed}, na, telegram.Immediate, 3},
		{"listed agency, flash", []Minimize{listed}, na, telegram.Flash, 0},
		{"not listed", []Minimize{listed}, hn, telegram.Routine, 0},
		{"ended at its until", []Minimize{ended}, hn, telegram.Routine, 0},
		{"before its until", []Minimize{later}, hn, telegram.Routine, 5},
		{"refusing before deferring", []Minimize{listed, whole}, na, telegram.Routine, 1},
		{"earliest of two refusing", []Minimize{whole, district}, huyen, telegram.Routine, 1},
		{"invalid precedence left to the checks", []Minimize{whole}, hn, 0, 0},
	}
	for _, c := range cases {
		m, ok := Minimized(c.in, c.from, c.p, now)
		if got := map[bool]uint64{true: m.Number}[ok]; got != c.want {
			t.Errorf("%s: MINIMIZE %d applies, want %d", c.name, got, c.want)
		}
	}
	err := whole.Refusal(telegram.Routine)
	if fault.KindOf(err) != fault.Minimized || err.Error() != "file: not filed: MINIMIZE 1 below IMMEDIATE for the whole switch is in force (storm); ROUTINE filings are refused until it is lifted; file again then, or at IMMEDIATE or above if it cannot wait" {
		t.Errorf("refusal: %v (%v)", err, fault.KindOf(err))
	}
}

func TestCheckMinimize(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	dir, _ := directory.New([]directory.Agency{{Address: "HN.UBND"}, {Address: "NA.TU"}})
	ok := Minimize{Below: telegram.Immediate, Reason: "storm"}
	if err := CheckMinimize(ok, dir, now); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		edit func(*Minimize)
		kind fault.Kind
	}{
		{"below ROUTINE", func(m *Minimize) { m.Below = telegram.Routine }, fault.Invalid},
		{"no precedence", func(m *Minimize) { m.Below = 0 }, fault.Invalid},
		{"level and agencies", func(m *Minimize) { m.Level, m.Agencies = "district", []telegram.Address{"NA.TU"} }, fault.Invalid},
		{"unknown level", func(m *Minimize) { m.Level = "village" }, fault.Invalid},
		{"no reason", func(m *Minimize) { m.Reason = "  " }, fault.Invalid},
		{"control characters", func(m *Minimize) { m.Reason = "a\x1b[2Jb" }, fault.Invalid},
		{"past until", func(m *Minimize) { m.Until = now }, fault.Invalid},
		{"unknown agency", func(m *Minimize) { m.Agencies = []telegram.Address{"XX.YY"} }, fault.NotExist},
	}
	for _, c := range bad {
		m := ok
		c.edit(&m)
		if err := CheckMinimize(m, dir, now); fault.KindOf(err) != c.kind {
			t.Errorf("%s: %v, want kind %v", c.name, err, c.kind)
		}
	}
}
