package server

import (
	"github.com/dienbao/dienbao/switch/monitor"
	"github.com/dienbao/dienbao/switch/telegram"
)

// State is what the monitoring console shows (monitor.Source).
func (s *Server) State() (monitor.State, error) {
	q, err := s.queues(20, telegram.TopSecret, false) // the console is the site's own, on loopback
	if err != nil {
		return monitor.State{}, err
	}
	sessions := s.sessionList()
	st := monitor.State{Switch: s.cfg.Name, Totals: monitor.Totals(q.Totals), Queues: make([]monitor.QueueRow, 0, len(q.Rows)),
		Overdue: make([]monitor.OverdueRow, 0, len(q.Overdue)), Sessions: make([]monitor.Session, 0, len(sessions)),
		Targets: map[string]float64{}, Agencies: map[string]monitor.AgencyInfo{}, Minimize: []string{}}
	st.Admission = q.Admission
	for _, m := range q.Minimize {
		st.Minimize = append(st.Minimize, m.String())
	}
	for _, r := range q.Rows {
		st.Queues = append(st.Queues, monitor.QueueRow{Agency: r.Agency, Tier: r.Tier, Precedence: r.Precedence,
			Waiting: r.Waiting, InFlight: r.InFlight, Parked: r.Parked, Held: r.Held, Deferred: r.Deferred, Overdue: r.Overdue,
			OldestAgeSeconds: r.OldestAgeSeconds, AgencyHeld: r.AgencyHeld, Terminals: r.Connected})
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
		st.Agencies[string(a.Address)] = monitor.AgencyInfo{Name: a.Name, Level: a.LevelOf()}
	}
	return st, nil
}

// Ready reports whether the switch accepts connections.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.draining
}
