// Package route decides where a telegram goes next in a network of
// switches: delivered here, relayed to which next hop, or not deliverable
// (no route, or a loop). It owns the routing table (address prefixes to
// next hops in order of preference, longest prefix first), diversion to
// an alternate next hop when the preferred one has been unreachable for
// longer than the telegram's precedence allows, and the loop rules (a
// telegram never revisits a switch and never passes more than the hop
// limit).
//
// Like switch/custody it is a pure core: the table, the telegram's trace,
// the state of the links and the time go in, a Decision comes out. No
// network, no clock of its own. The caller asks again whenever a link's
// state changes, so traffic returns to the preferred next hop once it is
// back.
package route

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Prefix is an address prefix by whole segments: "NA" covers NA and every
// address under it (NA.UBND, NA.VINH.UBND) but not NAM.UBND; "*" covers
// every address.
type Prefix string

// Any is the prefix of a default route.
const Any Prefix = "*"

// ParsePrefix validates s: "*", or an address with an optional trailing
// dot ("NA." is "NA").
func ParsePrefix(s string) (Prefix, error) {
	s = strings.TrimSpace(s)
	if s == string(Any) {
		return Any, nil
	}
	a, err := telegram.ParseAddress(strings.TrimSuffix(s, "."))
	if err != nil {
		return "", fault.E("route", fault.Invalid, fmt.Sprintf("prefix %q", s), err)
	}
	return Prefix(a), nil
}

// Covers reports whether a is under the prefix.
func (p Prefix) Covers(a telegram.Address) bool {
	if p == Any {
		return true
	}
	s := string(a)
	return s == string(p) || strings.HasPrefix(s, string(p)+".")
}

// segments is how specific the prefix is: 0 for Any.
func (p Prefix) segments() int {
	if p == Any {
		return 0
	}
	return strings.Count(string(p), ".") + 1
}

// Route sends the addresses under Prefix to the first usable of Via, the
// next hops (peer switch names) in order of preference.
type Route struct {
	Prefix Prefix
	Via    []string
}

// Table is one switch's routing.
type Table struct {
	self     string
	own      []Prefix
	routes   []Route
	hopLimit int
}

// DefaultHopLimit is how many switches a telegram may pass, the filing
// switch included, unless the table says otherwise.
const DefaultHopLimit = 8

// NewTable checks and builds a table: self is this switch's name in
// traces, own the prefixes of the addresses it serves, routes the rest.
// Where an own prefix and a route's are equally specific, the own one
// wins; a more specific route inside an own prefix (a district's switch
// under a province's) takes its addresses elsewhere.
func NewTable(self string, own []Prefix, routes []Route, hopLimit int) (*Table, error) {
	const op = "route"
	if self == "" {
		return nil, fault.E(op, fault.Invalid, "the switch needs a name for the routing table")
	}
	if hopLimit == 0 {
		hopLimit = DefaultHopLimit
	}
	if hopLimit < 2 {
		return nil, fault.Errorf(op, fault.Invalid, "hop limit %d: a relayed telegram passes at least 2 switches", hopLimit)
	}
	seen := map[Prefix]string{}
	for _, p := range own {
		if seen[p] != "" {
			return nil, fault.Errorf(op, fault.Invalid, "prefix %s is listed twice as this switch's own", p)
		}
		seen[p] = "own"
	}
	for _, r := range routes {
		if prev := seen[r.Prefix]; prev != "" {
			return nil, fault.Errorf(op, fault.Invalid, "prefix %s has two entries (a route and %s): give one route its alternates instead", r.Prefix, prev)
		}
		seen[r.Prefix] = "a route"
		if len(r.Via) == 0 {
			return nil, fault.Errorf(op, fault.Invalid, "the route for %s names no next hop", r.Prefix)
		}
		for i, h := range r.Via {
			if h == self {
				return nil, fault.Errorf(op, fault.Invalid, "the route for %s names this switch (%s) as a next hop", r.Prefix, self)
			}
			if slices.Contains(r.Via[:i], h) {
				return nil, fault.Errorf(op, fault.Invalid, "the route for %s names %s twice", r.Prefix, h)
			}
		}
	}
	return &Table{self: self, own: slices.Clone(own), routes: slices.Clone(routes), hopLimit: hopLimit}, nil
}

// Self is this switch's name in traces.
func (t *Table) Self() string { return t.self }

// HopLimit is how many switches a telegram may pass.
func (t *Table) HopLimit() int { return t.hopLimit }

// Link is what the switch knows of its link to a next hop.
type Link struct {
	Up    bool
	Since time.Time // when it last came up or went down (for one never up: when the switch started)
	Held  bool      // stopped by an operator: traffic goes to an alternate at once
}

// Policy says how long a preferred next hop may be unreachable before a
// telegram of each precedence goes to an alternate.
type Policy struct {
	Divert map[telegram.Precedence]time.Duration
}

// DefaultPolicy diverts FLASH after 5 s, IMMEDIATE after 30 s, PRIORITY
// after 2 min and ROUTINE after 10 min (AFTN diverts at once between
// automatic centres and within 10 minutes otherwise).
func DefaultPolicy() Policy {
	return Policy{Divert: map[telegram.Precedence]time.Duration{
		telegram.Flash: 5 * time.Second, telegram.Immediate: 30 * time.Second,
		telegram.Priority: 2 * time.Minute, telegram.Routine: 10 * time.Minute,
	}}
}

// Kind is what a Decision says to do.
type Kind uint8

// Kinds.
const (
	Local   Kind = iota + 1 // this switch serves the address: queue it for the agency's terminals
	Relay                   // hand it to Decision.Via
	NoRoute                 // nothing serves the address: NOT_DELIVERED, "no route"
	Loop                    // it would revisit a switch or pass the hop limit: NOT_DELIVERED, "loop detected"
)

var kindNames = [...]string{"", "local", "relay", "no route", "loop detected"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Decision is where one addressee's copy goes next.
type Decision struct {
	Kind Kind
	// Via is the next hop (Relay). Ready: its link is up now (otherwise
	// the telegram waits for it, within its diversion time or because no
	// alternate is up). Diverted: Via is not the route's first choice.
	Via             string
	Ready, Diverted bool
	// Reason says why (NoRoute, Loop): the NOT_DELIVERED report's reason.
	Reason string
}

// Next decides for the addressee a of a telegram of precedence p that has
// passed the switches in trace (the filing switch first; this one not yet
// in it), given the links' states at now.
func (t *Table) Next(a telegram.Address, p telegram.Precedence, trace []string, links map[string]Link, now time.Time, pol Policy) Decision {
	if slices.Contains(trace, t.self) {
		return Decision{Kind: Loop, Reason: fmt.Sprintf("loop detected: the telegram came back to %s (trace %s)", t.self, strings.Join(trace, " > "))}
	}
	r, own := t.match(a)
	if own {
		return Decision{Kind: Local}
	}
	if r == nil {
		return Decision{Kind: NoRoute, Reason: fmt.Sprintf("no route: %s has no route to %s", t.self, a)}
	}
	if len(trace)+2 > t.hopLimit {
		return Decision{Kind: Loop, Reason: fmt.Sprintf("loop detected: %s would be the switch number %d on the way to %s, past the hop limit of %d (trace %s)",
			r.Via[0], len(trace)+2, a, t.hopLimit, strings.Join(trace, " > "))}
	}
	var hops []string // the route's next hops the telegram has not passed
	for _, h := range r.Via {
		if !slices.Contains(trace, h) {
			hops = append(hops, h)
		}
	}
	if len(hops) == 0 {
		return Decision{Kind: Loop, Reason: fmt.Sprintf("loop detected: every next hop towards %s (%s) has already passed the telegram", a, strings.Join(r.Via, ", "))}
	}
	d := func(h string, ready bool) Decision {
		return Decision{Kind: Relay, Via: h, Ready: ready, Diverted: h != r.Via[0]}
	}
	// The first hop that is up; before it, a hop down for less than the
	// precedence's diversion time keeps the telegram waiting for it.
	for _, h := range hops {
		l := links[h]
		switch {
		case l.Held:
			continue
		case l.Up:
			return d(h, true)
		case now.Sub(l.Since) < pol.Divert[p]:
			return d(h, false)
		}
	}
	// Nothing is up: wait for the most preferred hop not held (or, all
	// held, the first).
	for _, h := range hops {
		if !links[h].Held {
			return d(h, false)
		}
	}
	return d(hops[0], false)
}

// Relays reports whether another switch serves a: it has a route and no
// own prefix as specific, so that a telegram for it is relayed (to some
// next hop, whatever the links' states). It is Next's answer for a
// telegram filed here, without the links.
func (t *Table) Relays(a telegram.Address) bool {
	r, own := t.match(a)
	return r != nil && !own
}

// match returns the most specific route covering a, and whether an own
// prefix is at least as specific (the address is served here).
func (t *Table) match(a telegram.Address) (*Route, bool) {
	best, bestOwn := -1, -1
	var r *Route
	for i := range t.routes {
		if n := t.routes[i].Prefix.segments(); t.routes[i].Prefix.Covers(a) && n > best {
			best, r = n, &t.routes[i]
		}
	}
	for _, p := range t.own {
		if n := p.segments(); p.Covers(a) && n > bestOwn {
			bestOwn = n
		}
	}
	return r, bestOwn >= 0 && bestOwn >= best
}
