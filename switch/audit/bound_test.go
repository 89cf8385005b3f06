package audit

import (
	"strings"
	"testing"
	"time"
)

// Whatever comes from outside, a bounded entry's leaf fits in MaxLeaf,
// reads back as itself, and shows no control or bidi character raw.
func TestBounded(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		e     Entry
		check func(Entry) bool
	}{
		{"a 14,000-character certificate name", Entry{Event: Security, Actor: strings.Repeat("A", 14000), Reason: "handshake refused"},
			func(e Entry) bool { return len(e.Actor) <= maxActor && strings.Contains(e.Actor, "…(+") }},
		{"60,000 addressees quoted in a refusal", Entry{Event: Refused, Actor: "x", Reason: "unknown addressee " + strings.Repeat("\x01, ", 60000)},
			func(e Entry) bool { return strings.HasPrefix(e.Reason, `unknown addressee \x01, \x01`) }},
		{"HTML characters escape six-fold in JSON", Entry{Event: Refused, Actor: strings.Repeat("<", 256), Reason: strings.Repeat("<>&", 700)},
			func(e Entry) bool { return true }},
		{"escape sequences and bidi overrides shown", Entry{Event: Security, Actor: "\x1b[31mFLASH\u202e", Reason: "ok"},
			func(e Entry) bool { return e.Actor == `\x1b[31mFLASH\u202e` }},
		{"invalid UTF-8", Entry{Event: Security, Actor: "a\xffb"}, func(e Entry) bool { return e.Actor == "a\uFFFDb" }},
		{"a normal entry is unchanged", Entry{Event: Delivered, Actor: "NA.TU/terminal 1", From: "HN.UBND", To: "NA.TU", Reason: "Đã nhận"},
			func(e Entry) bool { return e.Actor == "NA.TU/terminal 1" && e.Reason == "Đã nhận" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.e.At = at
			b := Bounded(c.e)
			l, err := Leaf(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(l) > MaxLeaf {
				t.Fatalf("leaf of %d bytes", len(l))
			}
			back, err := ParseLeaf(l)
			if err != nil || back != b {
				t.Fatalf("leaf does not read back: %v", err)
			}
			for _, r := range b.Actor + b.Reason + string(b.From) + string(b.To) {
				if UnsafeRune(r) {
					t.Fatalf("raw %U kept", r)
				}
			}
			if !c.check(b) {
				t.Fatalf("bounded entry %+v", b)
			}
		})
	}
}
