package daemon

import (
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/switch/group"
	"github.com/dienbao/dienbao/switch/monitor"
	"github.com/dienbao/dienbao/switch/server"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// groupSource is what a node's monitoring listener shows: the group
// always; the switch's queues, sessions and metrics while it leads.
type groupSource struct {
	node *group.Node
	name string
	reg  *prometheus.Registry
	srv  atomic.Pointer[server.Server]
	log  *zap.Logger
}

func newGroupSource(node *group.Node, name string, log *zap.Logger) *groupSource {
	reg := prometheus.NewRegistry()
	reg.MustRegister(group.NewCollector(node))
	return &groupSource{node: node, name: name, reg: reg, log: log}
}

func (g *groupSource) serve(srv *server.Server) { g.srv.Store(srv) }

func (g *groupSource) State() (monitor.State, error) {
	var st monitor.State
	if srv := g.srv.Load(); srv != nil {
		var err error
		if st, err = srv.State(); err != nil {
			return st, err
		}
	} else {
		st.Switch = g.name
		st.Totals.At = time.Now()
	}
	gs := g.node.Status()
	out := &monitor.GroupState{Node: gs.Node, State: gs.State, Leader: gs.Leader, Term: gs.Term, Commit: gs.Commit, Applied: gs.Applied}
	for _, m := range gs.Members {
		c := -1.0
		if !m.LastContact.IsZero() && !m.Self {
			c = time.Since(m.LastContact).Seconds()
		}
		out.Members = append(out.Members, monitor.GroupMember{ID: m.ID, Name: m.Name, Address: m.Addr, Leader: m.Leader, Lag: m.Lag, LastContact: c})
	}
	st.Group = out
	return st, nil
}

func (g *groupSource) Ready() bool {
	srv := g.srv.Load()
	return srv != nil && srv.Ready()
}

func (g *groupSource) Metrics() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		gs := prometheus.Gatherers{g.reg}
		if srv := g.srv.Load(); srv != nil {
			gs = append(gs, srv.Metrics())
		}
		return gs.Gather()
	})
}

// Counters are the switch's while this node leads.
func (g *groupSource) Counters() monitor.Totals {
	if srv := g.srv.Load(); srv != nil {
		return srv.Counters()
	}
	return monitor.Totals{At: time.Now()}
}

// AgencyEvents are the switch's while this node leads.
func (g *groupSource) AgencyEvents(a telegram.Address, n int) ([]monitor.Event, error) {
	if srv := g.srv.Load(); srv != nil {
		return srv.AgencyEvents(a, n)
	}
	return nil, nil
}
