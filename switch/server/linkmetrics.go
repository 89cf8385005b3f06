package server

import (
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/prometheus/client_golang/prometheus"
)

// linkCollector exposes the links at each scrape, labelled by peer switch
// (a small set): state, how long down, copies waiting per precedence,
// hand-overs, sequence anomalies, round trip; and the diversion times, so
// that an alert can compare (docs/alerts.yml: a link down longer than
// FLASH's diversion time).
type linkCollector struct{ s *Server }

var (
	descLinkUp      = prometheus.NewDesc("dienbao_link_up", "1 when the link to the peer switch is up, 0 when down or held.", []string{"peer"}, nil)
	descLinkHeld    = prometheus.NewDesc("dienbao_link_held", "1 when an operator holds the link to the peer switch.", []string{"peer"}, nil)
	descLinkDown    = prometheus.NewDesc("dienbao_link_down_seconds", "How long the link to the peer switch has been down (0 while up).", []string{"peer"}, nil)
	descLinkWaiting = prometheus.NewDesc("dienbao_link_waiting_telegrams", "Copies waiting for the peer switch as next hop, by precedence.", []string{"peer", "precedence"}, nil)
	descLinkRelayed = prometheus.NewDesc("dienbao_link_handovers_total", "Telegram copies and delivery reports the peer switch took over the link since this switch started.", []string{"peer"}, nil)
	descLinkGaps    = prometheus.NewDesc("dienbao_link_sequence_anomalies_total", "Gaps and repeats in the sequence numbers of what the peer switch handed over, since this switch started.", []string{"peer"}, nil)
	descLinkRTT     = prometheus.NewDesc("dienbao_link_round_trip_seconds", "The last hand-over batch's round trip to the peer switch, its commit included.", []string{"peer"}, nil)
	descDivert      = prometheus.NewDesc("dienbao_link_divert_seconds", "How long a preferred next hop may be down before traffic of the precedence takes an alternate.", []string{"precedence"}, nil)
)

func (c *linkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinkUp, descLinkHeld, descLinkDown, descLinkWaiting, descLinkRelayed, descLinkGaps, descLinkRTT, descDivert} {
		ch <- d
	}
}

func (c *linkCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.s.links
	if l == nil {
		return
	}
	for p, d := range l.net.Load().Policy.Divert {
		ch <- prometheus.MustNewConstMetric(descDivert, prometheus.GaugeValue, d.Seconds(), p.String())
	}
	rep, err := l.report()
	if err != nil {
		c.s.stats.scrapeErrors.Add(1)
		return
	}
	now := time.Now()
	for _, w := range rep.Links {
		up, held, down := 0.0, 0.0, 0.0
		switch w.State {
		case "up":
			up = 1
		case "held":
			held = 1
		}
		if w.State != "up" {
			down = now.Sub(w.Since).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, up, w.Peer)
		ch <- prometheus.MustNewConstMetric(descLinkHeld, prometheus.GaugeValue, held, w.Peer)
		ch <- prometheus.MustNewConstMetric(descLinkDown, prometheus.GaugeValue, down, w.Peer)
		for r, n := range w.Waiting {
			ch <- prometheus.MustNewConstMetric(descLinkWaiting, prometheus.GaugeValue, float64(n), w.Peer, telegram.PrecedenceOfRank(r).String())
		}
		ch <- prometheus.MustNewConstMetric(descLinkRelayed, prometheus.CounterValue, float64(w.Relayed), w.Peer)
		ch <- prometheus.MustNewConstMetric(descLinkGaps, prometheus.CounterValue, float64(w.Gaps), w.Peer)
		ch <- prometheus.MustNewConstMetric(descLinkRTT, prometheus.GaugeValue, w.RTTMillis/1000, w.Peer)
	}
}
