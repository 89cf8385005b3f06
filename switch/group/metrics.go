package group

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the group as this node sees it, at each scrape: every
// node serves it (a follower's lag and contact show too).
type Collector struct{ n *Node }

// NewCollector is the node's collector.
func NewCollector(n *Node) *Collector { return &Collector{n: n} }

var (
	descLeader  = prometheus.NewDesc("dienbao_group_leader", "1 when this node leads its group and serves, 0 otherwise.", nil, nil)
	descTerm    = prometheus.NewDesc("dienbao_group_term", "The group's Raft term, as this node knows it.", nil, nil)
	descCommit  = prometheus.NewDesc("dienbao_group_commit_index", "The last entry this node knows a quorum holds.", nil, nil)
	descApplied = prometheus.NewDesc("dienbao_group_applied_index", "The last entry this node applied to its records.", nil, nil)
	descHasLead = prometheus.NewDesc("dienbao_group_has_leader", "1 when this node knows a leader it heard from within an election timeout.", nil, nil)
	descLag     = prometheus.NewDesc("dienbao_group_member_lag_entries", "How many entries a member is behind the leader's last (on the leader only).", []string{"member", "node"}, nil)
	descContact = prometheus.NewDesc("dienbao_group_member_last_contact_seconds", "How long since this node last heard from the member.", []string{"member", "node"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descTerm, descCommit, descApplied, descHasLead, descLag, descContact} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.n.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	_, hasLead := c.n.Leader()
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, b(st.Serving))
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, float64(st.Commit))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(st.Applied))
	ch <- prometheus.MustNewConstMetric(descHasLead, prometheus.GaugeValue, b(hasLead || st.Serving))
	now := time.Now()
	for _, m := range st.Members {
		id := strconv.FormatUint(m.ID, 10)
		if st.State == "leader" {
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(m.Lag), m.Name, id)
		}
		if !m.Self && !m.LastContact.IsZero() {
			ch <- prometheus.MustNewConstMetric(descContact, prometheus.GaugeValue, now.Sub(m.LastContact).Seconds(), m.Name, id)
		}
	}
}
