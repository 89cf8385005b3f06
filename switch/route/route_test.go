package route

import (
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The three-switch example: NA's provincial switch serves NA, sends HN
// to HN's switch (or through the centre), NA.QL to a district switch,
// and everything else to the centre.
func naTable(t *testing.T) *Table {
	t.Helper()
	tb, err := NewTable("NA-SW", []Prefix{"NA"}, []Route{
		{Prefix: "HN", Via: []string{"HN-SW", "TW-SW"}},
		{Prefix: "NA.QL", Via: []string{"QL-SW"}},
		{Prefix: "TW", Via: []string{"TW-SW"}},
		{Prefix: Any, Via: []string{"TW-SW", "HN-SW"}},
	}, 4)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestNext(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	up := Link{Up: true, Since: t0.Add(-time.Hour)}
	downFor := func(d time.Duration) Link { return Link{Since: t0.Add(-d)} }
	allUp := map[string]Link{"HN-SW": up, "TW-SW": up, "QL-SW": up}
	for _, c := range []struct {
		name  string
		addr  telegram.Address
		prec  telegram.Precedence
		trace []string
		links map[string]Link
		want  Decision
	}{
		{"own prefix", "NA.UBND", telegram.Routine, nil, allUp, Decision{Kind: Local}},
		{"own prefix, deeper address", "NA.VINH.UBND", telegram.Routine, nil, allUp, Decision{Kind: Local}},
		{"more specific route inside own prefix", "NA.QL.UBND", telegram.Routine, nil, allUp, Decision{Kind: Relay, Via: "QL-SW", Ready: true}},
		{"whole segments only", "NAM.UBND", telegram.Routine, nil, allUp, Decision{Kind: Relay, Via: "TW-SW", Ready: true}},
		{"longest prefix", "HN.UBND", telegram.Routine, nil, allUp, Decision{Kind: Relay, Via: "HN-SW", Ready: true}},
		{"default route", "CP.VPCP", telegram.Routine, nil, allUp, Decision{Kind: Relay, Via: "TW-SW", Ready: true}},
		{"received from elsewhere, delivered here", "NA.UBND", telegram.Flash, []string{"HN-SW", "TW-SW"}, allUp, Decision{Kind: Local}},

		// Diversion.
		{"preferred down, within FLASH's diversion time: wait for it", "HN.UBND", telegram.Flash, nil,
			map[string]Link{"HN-SW": downFor(4 * time.Second), "TW-SW": up}, Decision{Kind: Relay, Via: "HN-SW"}},
		{"preferred down past FLASH's diversion time: alternate", "HN.UBND", telegram.Flash, nil,
			map[string]Link{"HN-SW": downFor(5 * time.Second), "TW-SW": up}, Decision{Kind: Relay, Via: "TW-SW", Ready: true, Diverted: true}},
		{"same moment, ROUTINE still waits", "HN.UBND", telegram.Routine, nil,
			map[string]Link{"HN-SW": downFor(5 * time.Second), "TW-SW": up}, Decision{Kind: Relay, Via: "HN-SW"}},
		{"ROUTINE past its diversion time", "HN.UBND", telegram.Routine, nil,
			map[string]Link{"HN-SW": downFor(10 * time.Minute), "TW-SW": up}, Decision{Kind: Relay, Via: "TW-SW", Ready: true, Diverted: true}},
		{"preferred back: traffic returns", "HN.UBND", telegram.Routine, nil,
			map[string]Link{"HN-SW": {Up: true, Since: t0}, "TW-SW": up}, Decision{Kind: Relay, Via: "HN-SW", Ready: true}},
		{"held by an operator: alternate at once", "HN.UBND", telegram.Routine, nil,
			map[string]Link{"HN-SW": {Up: true, Held: true, Since: t0}, "TW-SW": up}, Decision{Kind: Relay, Via: "TW-SW", Ready: true, Diverted: true}},
		{"never connected counts from the start", "HN.UBND", telegram.Flash, nil,
			map[string]Link{"TW-SW": up}, Decision{Kind: Relay, Via: "TW-SW", Ready: true, Diverted: true}},
		{"everything down: wait for the preferred", "HN.UBND", telegram.Flash, nil,
			map[string]Link{"HN-SW": downFor(time.Hour), "TW-SW": downFor(time.Hour)}, Decision{Kind: Relay, Via: "HN-SW"}},
		{"preferred held, alternate down: wait for the alternate", "HN.UBND", telegram.Flash, nil,
			map[string]Link{"HN-SW": {Held: true, Since: t0}, "TW-SW": downFor(time.Hour)}, Decision{Kind: Relay, Via: "TW-SW", Diverted: true}},
		{"all held: the first", "HN.UBND", telegram.Flash, nil,
			map[string]Link{"HN-SW": {Held: true}, "TW-SW": {Held: true}}, Decision{Kind: Relay, Via: "HN-SW"}},
		{"the only hop down: wait", "TW.VPTW", telegram.Flash, nil,
			map[string]Link{"TW-SW": downFor(time.Hour)}, Decision{Kind: Relay, Via: "TW-SW"}},

		// Loops.
		{"never back the way it came", "HN.UBND", telegram.Routine, []string{"HN-SW"}, allUp, Decision{Kind: Relay, Via: "TW-SW", Ready: true, Diverted: true}},
		{"every next hop passed", "TW.VPTW", telegram.Routine, []string{"TW-SW"}, allUp, Decision{Kind: Loop}},
		{"came back here", "HN.UBND", telegram.Routine, []string{"HN-SW", "NA-SW", "TW-SW"}, allUp, Decision{Kind: Loop}},
		{"hop limit", "CP.VPCP", telegram.Routine, []string{"QL-SW", "X-SW", "Y-SW"}, allUp, Decision{Kind: Loop}},
		{"just within the hop limit", "CP.VPCP", telegram.Routine, []string{"QL-SW", "X-SW"}, allUp, Decision{Kind: Relay, Via: "TW-SW", Ready: true}},
	} {
		got := naTable(t).Next(c.addr, c.prec, c.trace, c.links, t0, DefaultPolicy())
		reason := got.Reason
		got.Reason = ""
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		if (got.Kind == Loop || got.Kind == NoRoute) != (reason != "") {
			t.Errorf("%s: reason %q", c.name, reason)
		}
		if got.Kind == Loop && !strings.HasPrefix(reason, "loop detected") {
			t.Errorf("%s: reason %q", c.name, reason)
		}
	}
}

func TestNoRoute(t *testing.T) {
	tb, err := NewTable("HN-SW", []Prefix{"HN"}, []Route{{Prefix: "NA", Via: []string{"NA-SW"}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := tb.Next("TW.VPTW", telegram.Flash, nil, nil, time.Now(), DefaultPolicy())
	if d.Kind != NoRoute || d.Reason != "no route: HN-SW has no route to TW.VPTW" {
		t.Fatalf("%+v", d)
	}
	if tb.HopLimit() != DefaultHopLimit || tb.Self() != "HN-SW" {
		t.Fatalf("hop limit %d, self %s", tb.HopLimit(), tb.Self())
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]Prefix{"NA": "NA", "na.": "NA", "NA.VINH.": "NA.VINH", "*": Any, " HN ": "HN"} {
		if got, err := ParsePrefix(in); err != nil || got != want {
			t.Errorf("ParsePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "NA..X", "N A", "*.NA", "NA.*"} {
		if _, err := ParsePrefix(in); fault.KindOf(err) != fault.Invalid {
			t.Errorf("ParsePrefix(%q): %v, want Invalid", in, err)
		}
	}
}

func TestNewTableRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		self   string
		own    []Prefix
		routes []Route
		limit  int
	}{
		"no name":            {"", []Prefix{"NA"}, nil, 0},
		"own twice":          {"NA-SW", []Prefix{"NA", "NA"}, nil, 0},
		"route on own":       {"NA-SW", []Prefix{"NA"}, []Route{{Prefix: "NA", Via: []string{"X"}}}, 0},
		"two routes":         {"NA-SW", nil, []Route{{Prefix: "HN", Via: []string{"X"}}, {Prefix: "HN", Via: []string{"Y"}}}, 0},
		"no next hop":        {"NA-SW", nil, []Route{{Prefix: "HN"}}, 0},
		"itself as next hop": {"NA-SW", nil, []Route{{Prefix: "HN", Via: []string{"NA-SW"}}}, 0},
		"a hop twice":        {"NA-SW", nil, []Route{{Prefix: "HN", Via: []string{"X", "X"}}}, 0},
		"hop limit 1":        {"NA-SW", nil, nil, 1},
	} {
		if _, err := NewTable(c.self, c.own, c.routes, c.limit); fault.KindOf(err) != fault.Invalid {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
}

// Relays says, from the table alone, what Next says for a telegram filed
// here: relayed, or not.
func TestRelaysIsNextWithoutLinks(t *testing.T) {
	tb := naTable(t)
	now := time.Now()
	for _, a := range []telegram.Address{"NA.UBND", "NA.QL.UBND", "HN.UBND", "TW.VPTW", "XX.UBND", "NAM.UBND"} {
		want := tb.Next(a, telegram.Flash, nil, nil, now, DefaultPolicy()).Kind == Relay
		if got := tb.Relays(a); got != want {
			t.Errorf("Relays(%s) = %v, Next says relayed %v", a, got, want)
		}
	}
}
