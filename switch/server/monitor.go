package server

import (
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/monitor"
	"github.com/dienbao/dienbao/switch/telegram"
)

// State is what the monitoring console shows (monitor.Source): every
// agency's figures, the sessions, the overdue telegrams, the links. The
// console computes what it serves from it once a second for all viewers.
func (s *Server) State() (monitor.State, error) {
	q, err := s.queues(20, telegram.TopSecret, false, nil) // the console is the site's own
	if err != nil {
		return monitor.State{}, err
	}
	sessions := s.sessionList()
	st := monitor.State{Switch: s.cfg.Name, Totals: s.Counters(), Queues: make([]monitor.QueueRow, 0, len(q.Rows)),
		Overdue: make([]monitor.OverdueRow, 0, len(q.Overdue)), Sessions: make([]monitor.Session, 0, len(sessions)),
		Targets: map[string]float64{}, Agencies: map[string]monitor.AgencyInfo{}, Minimize: []string{},
		Unlisted: s.unlistedAgencies(), LastSeen: map[telegram.Address]time.Time{}}
	st.Totals.At = q.Totals.At
	st.Admission = q.Admission
	for _, m := range q.Minimize {
		st.Minimize = append(st.Minimize, m.String())
	}
	for _, r := range q.Rows {
		st.Queues = append(st.Queues, monitor.QueueRow{Agency: r.Agency, Tier: r.Tier, Precedence: r.Precedence,
			Waiting: r.Waiting, InFlight: r.InFlight, Parked: r.Parked, Held: r.Held, Deferred: r.Deferred, Overdue: r.Overdue,
			OldestAgeSeconds: r.OldestAgeSeconds, AgencyHeld: r.AgencyHeld, Terminals: r.Connected, Unlisted: r.Unlisted})
	}
	for _, o := range q.Overdue {
		st.Overdue = append(st.Overdue, monitor.OverdueRow(o))
	}
	for _, x := range sessions {
		st.Sessions = append(st.Sessions, monitor.Session(x))
	}
	for p, d := range s.cfg.SpeedTargets {
		st.Targets[p.String()] = d.Seconds()
	}
	for _, a := range s.directory().Agencies() {
		info := monitor.AgencyInfo{Name: a.Name, Level: a.LevelOf()}
		switch {
		case a.MovedTo != "":
			info.Closing = "moved to " + string(a.MovedTo)
		case a.Drain:
			info.Closing = "draining"
		}
		st.Agencies[string(a.Address)] = info
	}
	for _, n := range s.openNotices(certs.Identity{}) {
		st.Notices = append(st.Notices, monitor.Notice{Number: n.Number, Affects: n.Affects, Until: n.Until, Text: n.Text, By: n.By, At: n.At})
	}
	s.lastSeen.Range(func(k, v any) bool {
		st.LastSeen[k.(telegram.Address)] = v.(time.Time)
		return true
	})
	if s.links != nil {
		if ls, err := s.links.report(); err == nil {
			for _, l := range ls.Links {
				st.Links = append(st.Links, monitor.Link{Peer: l.Peer, State: l.State, Since: l.Since, Waiting: l.Waiting})
			}
		}
	}
	return st, nil
}

// Counters are the running totals since start, by precedence, and the
// sum of delivery latencies (monitor.Source: the console's charts).
func (s *Server) Counters() monitor.Totals {
	w := s.stats.totals(time.Now())
	t := monitor.Totals{At: w.At, Filed: w.Filed, Delivered: w.Delivered}
	for p := range t.LatencyNanos {
		t.LatencyNanos[p] = s.stats.latencyNanos[p].Load()
	}
	return t
}

// AgencyEvents lists the newest n audit entries naming agency a, for its
// page in the console: event, actor, time, telegram, and whether a sent
// or was sent it; never the other agencies, the precedence or the
// classification (an operator's view).
func (s *Server) AgencyEvents(a telegram.Address, n int) ([]monitor.Event, error) {
	es, err := s.store.QueryAudit(store.AuditQuery{Agency: a, Newest: true, Limit: n, Scan: 100_000})
	if err != nil {
		return nil, err
	}
	out := make([]monitor.Event, 0, len(es))
	for _, e := range es {
		role := "addressee"
		if e.From == a {
			role = "sender"
		}
		out = append(out, monitor.Event{Index: e.Index, At: e.At, Event: e.Event, Actor: e.Actor, ID: e.ID, Role: role})
	}
	return out, nil
}

// Ready reports whether the switch accepts connections.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.draining
}
