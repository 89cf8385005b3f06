package server

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	routing "github.com/dienbao/dienbao/switch/route"
	"github.com/dienbao/dienbao/switch/switchboard"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// Network is the switch's place in a network of switches (docs/DESIGN.md,
// "A network of switches"): its routing table (which names it), the peer
// switches it links with, and the diversion policy.
type Network struct {
	Table  *routing.Table
	Peers  []Peer
	Policy routing.Policy
}

// Peer is a switch this one links with: its name (its switch
// certificate's) and where it listens.
type Peer struct {
	Name    string
	Address string
}

// links are the switch's links to its peers, one each. A link is dialled
// by this switch and carries its hand-overs to the peer; the peer's own
// link to this switch carries the other direction.
type links struct {
	s *Server
	// net is the routing table and diversion policy in force: replaced
	// on SIGHUP (Server.ReloadNetwork); the peers are fixed at start.
	net    atomic.Pointer[Network]
	self   string
	byPeer map[string]*link
	order  []*link
	// notice is told of an agency newly in the register of agencies
	// served elsewhere (the store's, remote.go), for the links to seat.
	notice chan struct{}
}

// link is what this switch knows of its link to one peer.
type link struct {
	l      *links
	peer   Peer
	log    *zap.Logger
	wake   chan struct{} // something may be ready to hand over (a seat's wake)
	reseat chan struct{} // held or released, a link's state changed, or an agency to seat

	mu      sync.Mutex
	up      bool
	held    bool
	since   time.Time
	lastErr string
	rtt     time.Duration
	bytes   float64 // bytes per second handed over, smoothed
	sent    [5]uint64

	relayed atomic.Uint64 // copies and reports handed over in this run
	gaps    atomic.Uint64 // gaps and repeats on what came in from the peer
}

func newLinks(s *Server, n *Network) *links {
	l := &links{s: s, self: n.Table.Self(), byPeer: map[string]*link{}, notice: make(chan struct{}, 1)}
	l.net.Store(n)
	now := time.Now()
	for _, p := range n.Peers {
		lk := &link{l: l, peer: p, since: now, wake: make(chan struct{}, 1), reseat: make(chan struct{}, 1),
			log: s.log.With(zap.String("link", p.Name))}
		l.byPeer[p.Name] = lk
		l.order = append(l.order, lk)
	}
	return l
}

// reading is one reading of the routing table and the links' states, for
// decisions made together (every agency's next hops when seats are
// reviewed, or for tg links).
type reading struct {
	n      *Network
	states map[string]routing.Link
	now    time.Time
}

// routes reads the table in force and the links' states now.
func (l *links) routes() reading {
	st := make(map[string]routing.Link, len(l.order))
	for _, lk := range l.order {
		lk.mu.Lock()
		st[lk.peer.Name] = routing.Link{Up: lk.up, Since: lk.since, Held: lk.held}
		lk.mu.Unlock()
	}
	return reading{n: l.net.Load(), states: st, now: time.Now()}
}

// decide is the routing table's decision for addressee a of a telegram of
// precedence p that passed the switches in trace (this one not included).
func (r reading) decide(a telegram.Address, p telegram.Precedence, trace []string) routing.Decision {
	return r.n.Table.Next(a, p, trace, r.states, r.now, r.n.Policy)
}

// decide is routes().decide, for a single decision.
func (l *links) decide(a telegram.Address, p telegram.Precedence, trace []string) routing.Decision {
	return l.routes().decide(a, p, trace)
}

// elsewhere reports whether another switch serves a: this one relays it
// (the table alone says so; the filing path asks it for every addressee).
func (l *links) elsewhere(a telegram.Address) bool {
	return l.net.Load().Table.Relays(a)
}

// via is the next hop an agency served elsewhere is handed to now for
// telegrams of precedence p ("" if none): each precedence diverts after
// its own time.
func (r reading) via(a telegram.Address, p telegram.Precedence) string {
	d := r.decide(a, p, nil)
	if d.Kind != routing.Relay {
		return ""
	}
	return d.Via
}

// ranks is the mask of what agency a's seat on the link to peer carries
// (switchboard.Seat.SetRanks): the precedences whose next hop is peer
// now, and delivery reports when FLASH's is (reports take the fastest
// way back).
func (r reading) ranks(a telegram.Address, peer string) uint32 {
	var mask uint32
	for rank := range 4 {
		if r.via(a, telegram.PrecedenceOfRank(rank)) == peer {
			mask |= 1 << rank
		}
	}
	if mask&1 != 0 {
		mask |= 1 << switchboard.ReceiptRank
	}
	return mask
}

// passed is a telegram's trace without this switch (the last hop, when
// it came over a link).
func (l *links) passed(h *telegram.Header) []string {
	p := h.Passed()
	if n := len(p); n > 0 && p[n-1] == l.self {
		p = p[:n-1]
	}
	return p
}

// noted is told by the store of an agency newly served elsewhere.
func (l *links) noted(telegram.Address) {
	select {
	case l.notice <- struct{}{}:
	default:
	}
}

// changed wakes every link: a link's state changed, so an agency's next
// hop may have.
func (l *links) changed() {
	for _, lk := range l.order {
		signal(lk.reseat)
	}
}

// poke says something may be ready for the link to hand over.
func (lk *link) poke() { signal(lk.wake) }

// signal wakes whoever waits on c, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run keeps every link up until ctx ends.
func (l *links) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, lk := range l.order {
		wg.Go(func() { lk.run(ctx) })
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-l.notice:
			l.changed()
		}
	}
}

// setUp and setDown record the link's state changes, log them and wake
// the other links (their agencies may divert, or come back).
func (lk *link) setUp() {
	lk.mu.Lock()
	lk.up, lk.since, lk.lastErr = true, time.Now(), ""
	lk.mu.Unlock()
	lk.log.Info("link up", zap.String("address", lk.peer.Address))
	lk.l.changed()
}

func (lk *link) setDown(err error) {
	lk.mu.Lock()
	was := lk.up
	if was {
		lk.since = time.Now()
	}
	lk.up = false
	if err != nil {
		lk.lastErr = err.Error()
	}
	lk.mu.Unlock()
	if was {
		lk.log.Warn("link down", zap.Error(err))
		lk.l.changed()
	}
}

// hold stops (or resumes) the link for maintenance: traffic diverts to
// alternates at once.
func (lk *link) hold(on bool) bool {
	lk.mu.Lock()
	changed := lk.held != on
	lk.held = on
	lk.mu.Unlock()
	if changed {
		lk.l.changed()
	}
	return changed
}

func (lk *link) isHeld() bool {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	return lk.held
}

// peerOf is the configured peer a switch identity names, if any.
func (l *links) peerOf(name string) (*link, bool) {
	if l == nil {
		return nil, false
	}
	lk, ok := l.byPeer[name]
	return lk, ok
}

// names lists the peers, for messages.
func (l *links) names() []string {
	out := make([]string, 0, len(l.order))
	for _, lk := range l.order {
		out = append(out, lk.peer.Name)
	}
	slices.Sort(out)
	return out
}

// elsewhere is the test for addresses another switch serves, for
// filing's checks (nil: not in a network).
func (s *Server) elsewhere() func(telegram.Address) bool {
	if s.links == nil {
		return nil
	}
	return s.links.elsewhere
}

// ReloadNetwork puts a new routing table and diversion policy in force
// (SIGHUP). The switch's name and its peers cannot change while it runs:
// such a change is refused, and the table in force kept.
func (s *Server) ReloadNetwork(n *Network) error {
	const op = "reload"
	if s.links == nil && n == nil {
		return nil
	}
	if s.links == nil || n == nil {
		return fault.E(op, fault.Invalid, "joining or leaving a network of switches takes a restart")
	}
	l := s.links
	if n.Table.Self() != l.self {
		return fault.Errorf(op, fault.Invalid, "the switch's name (%s) cannot change while it runs", l.self)
	}
	peers := make([]string, 0, len(n.Peers))
	for _, p := range n.Peers {
		lk, ok := l.byPeer[p.Name]
		if !ok || lk.peer.Address != p.Address {
			return fault.Errorf(op, fault.Invalid, "adding a peer or changing its address (%s) takes a restart", p.Name)
		}
		peers = append(peers, p.Name)
	}
	if len(peers) != len(l.order) {
		return fault.E(op, fault.Invalid, "removing a peer takes a restart")
	}
	l.net.Store(n)
	s.log.Info("routing table reloaded")
	l.changed()
	return nil
}
