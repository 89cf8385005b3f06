package server

import (
	"github.com/dienbao/dienbao/switch/monitor"
)

// State is what the monitoring console shows (monitor.Source).
func (s *Server) State() (monitor.State, error) {
	q, err := s.queues(20)
	if err != nil {
		return monitor.State{}, err
	}
	st := monitor.State{Switch: s.cfg.Name, Queues: q.Rows, Overdue: q.Overdue, Totals: q.Totals,
		Sessions: s.sessionList(), Targets: map[string]float64{}, Agencies: map[string]monitor.AgencyInfo{}}
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
