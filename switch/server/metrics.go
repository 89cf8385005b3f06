package server

import (
	"regexp"
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/switch/buildinfo"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// stats are the switch's counters and the Prometheus registry that exposes
// them with the queue figures, read from the store at each scrape.
type stats struct {
	started  time.Time
	filed    [5]atomic.Int64 // by precedence
	deliverd [5]atomic.Int64
	// latencyNanos sums delivery latencies by precedence (the console's
	// chart: mean latency per interval).
	latencyNanos [5]atomic.Int64
	latency      *prometheus.HistogramVec
	refused      *prometheus.CounterVec
	// minimized counts filings a MINIMIZE applied to, by outcome.
	minimized *prometheus.CounterVec
	// rejected counts deliveries terminals refused on end-to-end
	// verification, by reason (signature, unreadable).
	rejected *prometheus.CounterVec
	retries  prometheus.Counter
	batches  prometheus.Histogram
	reg      *prometheus.Registry
	// scrapeErrors counts scrapes that could not read the queue figures.
	scrapeErrors atomic.Int64
}

func newStats(s *Server) *stats {
	st := &stats{started: time.Now(), reg: prometheus.NewRegistry()}
	st.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dienbao_delivery_latency_seconds",
		Help:    "Time from filing to the addressee's acknowledgement, by precedence.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600},
	}, []string{"precedence"})
	st.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dienbao_handshake_failures_total",
		Help: "Handshakes refused, by reason.",
	}, []string{"reason"})
	st.minimized = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dienbao_minimize_filings_total",
		Help: "Filings a MINIMIZE declaration applied to, by outcome: refused or deferred.",
	}, []string{"outcome"})
	st.minimized.WithLabelValues("refused")
	st.minimized.WithLabelValues("deferred")
	st.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dienbao_e2e_rejected_total",
		Help: "Deliveries the addressee's terminal refused because they failed end-to-end verification, by reason: signature or unreadable.",
	}, []string{"reason"})
	st.rejected.WithLabelValues("signature")
	st.rejected.WithLabelValues("unreadable")
	st.retries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dienbao_handshake_retries_total",
		Help: "Connection attempts asked to validate their source address first (QUIC Retry), past retry_above per second.",
	})
	st.batches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "dienbao_commit_batch_operations",
		Help:    "Operations written per commit (one fsync each): the group-commit batch size.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	for _, r := range []string{"revoked", "crl_out_of_date", "no_post_quantum", "no_certificate", "unknown_authority", "expired_or_not_yet_valid", "invalid_certificate", "bad_identity"} {
		st.refused.WithLabelValues(r) // every reason present, at zero
	}
	for p := telegram.Routine; p <= telegram.Flash; p++ {
		st.latency.WithLabelValues(p.String())
	}
	st.reg.MustRegister(st.latency, st.refused, st.minimized, st.rejected, st.retries, st.batches, &queueCollector{s: s}, &linkCollector{s: s}, procCollector{},
		// go_sched_latencies_seconds: how long goroutines waited, ready,
		// for a thread; a growing tail means the CPU is saturated
		// (README, "Saturation").
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: schedLatencies})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return st
}

var schedLatencies = regexp.MustCompile(`^/sched/latencies:seconds$`)

// delivered counts one acknowledged delivery and its latency.
func (st *stats) delivered(p telegram.Precedence, latency time.Duration) {
	st.deliverd[p].Add(1)
	st.latencyNanos[p].Add(int64(latency))
	st.latency.WithLabelValues(p.String()).Observe(latency.Seconds())
}

func (st *stats) totals(now time.Time) wire.Totals {
	t := wire.Totals{At: now}
	for p := range st.filed {
		t.Filed[p] = st.filed[p].Load()
		t.Delivered[p] = st.deliverd[p].Load()
	}
	return t
}

// queueCollector reads the queue figures at each scrape, summed by agency
// tier (the directory's level: centre, province, district, commune) and
// precedence, so the series do not multiply with agencies.
type queueCollector struct{ s *Server }

var (
	descDepth    = prometheus.NewDesc("dienbao_queue_depth", "Telegrams waiting (queued or in flight), by agency tier and precedence.", []string{"tier", "precedence"}, nil)
	descOldest   = prometheus.NewDesc("dienbao_queue_oldest_age_seconds", "Age of the oldest telegram waiting, by agency tier and precedence.", []string{"tier", "precedence"}, nil)
	descOverdue  = prometheus.NewDesc("dienbao_overdue_telegrams", "Telegrams waiting past their precedence's speed-of-service target.", []string{"tier", "precedence"}, nil)
	descParked   = prometheus.NewDesc("dienbao_parked_telegrams", "Telegrams parked for an operator.", []string{"tier", "precedence"}, nil)
	descHeld     = prometheus.NewDesc("dienbao_held_telegrams", "Telegrams held by an operator.", []string{"tier", "precedence"}, nil)
	descInFlight = prometheus.NewDesc("dienbao_in_flight_telegrams", "Telegrams handed to a terminal, not yet acknowledged.", []string{"tier", "precedence"}, nil)
	descFiled    = prometheus.NewDesc("dienbao_filed_total", "Telegrams accepted since the switch started, by precedence.", []string{"precedence"}, nil)
	descDeliv    = prometheus.NewDesc("dienbao_delivered_total", "Deliveries acknowledged since the switch started, by precedence.", []string{"precedence"}, nil)
	descSessions = prometheus.NewDesc("dienbao_sessions", "Connected sessions, by role.", []string{"role"}, nil)
	descStore    = prometheus.NewDesc("dienbao_store_size_bytes", "Space the store's files take on disk (allocated blocks), by part: lsm, vlog, wal, other.", []string{"part"}, nil)
	descFree     = prometheus.NewDesc("dienbao_storage_free_bytes", "Free space on the store's filesystem, as last measured.", nil, nil)
	descPressure = prometheus.NewDesc("dienbao_storage_pressure", "Storage pressure: 0 all filings accepted, 1 ROUTINE refused, 2 and PRIORITY, 3 and IMMEDIATE, 4 every filing refused.", nil, nil)
	descFull     = prometheus.NewDesc("dienbao_storage_refused_total", "Filings refused because the switch's storage is full.", nil, nil)
	descAudit    = prometheus.NewDesc("dienbao_audit_entries", "Entries in the audit log.", nil, nil)
	descDamaged  = prometheus.NewDesc("dienbao_store_damaged_tables", "Store tables the background scrub found damaged (restore the store from a backup).", nil, nil)
	descMinimize = prometheus.NewDesc("dienbao_minimize_in_force", "MINIMIZE declarations in force.", nil, nil)
	descAdmLevel = prometheus.NewDesc("dienbao_admission_level", "Admission control: 0 nothing limited, 1 ROUTINE limited, 2 ROUTINE and PRIORITY.", nil, nil)
	descAdmRate  = prometheus.NewDesc("dienbao_admission_rate", "Admission control: filings per second admitted of the limited precedences (0 when nothing is limited).", nil, nil)
	descAdmRef   = prometheus.NewDesc("dienbao_admission_refused_total", "Filings refused by admission control (retry later).", nil, nil)
	descErr      = prometheus.NewDesc("dienbao_queue_figures_errors_total", "Scrapes that could not read the queue figures.", nil, nil)
	descBuild    = prometheus.NewDesc("dienbao_build_info", "Always 1: the switch's version, source revision and Go version.", []string{"version", "revision", "goversion"}, nil)
	descReady    = prometheus.NewDesc("dienbao_ready", "1 while the switch accepts connections, 0 while it drains.", nil, nil)
	descCRLNext  = prometheus.NewDesc("dienbao_crl_next_update_timestamp_seconds", "The revocation list's next-update time (unix seconds): past it the switch refuses every certificate.", nil, nil)
	descNotAfter = prometheus.NewDesc("dienbao_certificate_not_after_timestamp_seconds", "Expiry (unix seconds) of the switch's own certificate and of each CA certificate it trusts.", []string{"certificate"}, nil)
	descUnlisted = prometheus.NewDesc("dienbao_unlisted_agencies", "Agencies no longer in the directory with telegrams or reports in custody (tg queues shows them).", nil, nil)
	descUnattend = prometheus.NewDesc("dienbao_unattended_agencies", "Agencies with telegrams of a precedence waiting and no terminal connected.", []string{"precedence"}, nil)
	descCkptSize = prometheus.NewDesc("dienbao_audit_checkpoint_size", "Entries covered by the last audit checkpoint this switch signed.", nil, nil)
	descCkptAt   = prometheus.NewDesc("dienbao_audit_checkpoint_timestamp_seconds", "When (unix seconds) the switch last signed an audit checkpoint covering new entries.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descOldest, descOverdue, descParked, descHeld, descInFlight,
		descFiled, descDeliv, descSessions, descStore, descFree, descPressure, descFull, descAudit, descDamaged, descMinimize, descAdmLevel, descAdmRate, descAdmRef, descErr,
		descBuild, descReady, descCRLNext, descNotAfter, descUnlisted, descUnattend, descCkptSize, descCkptAt} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	type key struct {
		tier string
		prec telegram.Precedence
	}
	type agg struct {
		depth, overdue, parked, held, inflight int64
		oldest                                 float64
	}
	sums := map[key]*agg{}
	var unattended [5]int64                 // by precedence
	for _, tier := range directory.Levels { // every level present, at zero
		for p := telegram.Routine; p <= telegram.Flash; p++ {
			sums[key{tier, p}] = &agg{}
		}
	}
	q, err := s.queues(0, telegram.TopSecret, false, nil)
	if err != nil {
		s.stats.scrapeErrors.Add(1)
	}
	for _, r := range q.Rows {
		k := key{r.Tier, r.Precedence}
		a := sums[k]
		if a == nil {
			a = &agg{}
			sums[k] = a
		}
		a.depth += r.Waiting
		a.overdue += r.Overdue
		a.parked += r.Parked
		a.held += r.Held
		a.inflight += r.InFlight
		a.oldest = max(a.oldest, r.OldestAgeSeconds)
		if r.Waiting > 0 && r.Connected == 0 && !r.AgencyHeld {
			unattended[r.Precedence]++
		}
	}
	for k, a := range sums {
		l := []string{k.tier, k.prec.String()}
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(a.depth), l...)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, a.oldest, l...)
		ch <- prometheus.MustNewConstMetric(descOverdue, prometheus.GaugeValue, float64(a.overdue), l...)
		ch <- prometheus.MustNewConstMetric(descParked, prometheus.GaugeValue, float64(a.parked), l...)
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(a.held), l...)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(a.inflight), l...)
	}
	for p := telegram.Routine; p <= telegram.Flash; p++ {
		ch <- prometheus.MustNewConstMetric(descUnattend, prometheus.GaugeValue, float64(unattended[p]), p.String())
		ch <- prometheus.MustNewConstMetric(descFiled, prometheus.CounterValue, float64(s.stats.filed[p].Load()), p.String())
		ch <- prometheus.MustNewConstMetric(descDeliv, prometheus.CounterValue, float64(s.stats.deliverd[p].Load()), p.String())
	}
	roles := map[string]int{"terminal": 0, "operator": 0, "auditor": 0, "switch": 0}
	for _, si := range s.sessionList() {
		roles[si.Role]++
	}
	for r, n := range roles {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(n), r)
	}
	if use, err := s.store.DiskUsage(); err == nil {
		for part, n := range use {
			ch <- prometheus.MustNewConstMetric(descStore, prometheus.GaugeValue, float64(n), part)
		}
	} else {
		s.stats.scrapeErrors.Add(1)
	}
	ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(s.disk.free.Load()))
	ch <- prometheus.MustNewConstMetric(descPressure, prometheus.GaugeValue, float64(s.disk.level.Load()))
	ch <- prometheus.MustNewConstMetric(descFull, prometheus.CounterValue, float64(s.disk.refused.Load()))
	ch <- prometheus.MustNewConstMetric(descAudit, prometheus.GaugeValue, float64(s.store.AuditSize()))
	ch <- prometheus.MustNewConstMetric(descDamaged, prometheus.GaugeValue, float64(len(s.store.DamagedTables())))
	ch <- prometheus.MustNewConstMetric(descMinimize, prometheus.GaugeValue, float64(len(s.minimize.Load().In)))
	adm := s.admission.current()
	ch <- prometheus.MustNewConstMetric(descAdmLevel, prometheus.GaugeValue, float64(adm.Level))
	ch <- prometheus.MustNewConstMetric(descAdmRate, prometheus.GaugeValue, map[bool]float64{true: adm.Rate}[adm.Level > 0])
	ch <- prometheus.MustNewConstMetric(descAdmRef, prometheus.CounterValue, float64(s.admission.total.Load()))
	ch <- prometheus.MustNewConstMetric(descErr, prometheus.CounterValue, float64(s.stats.scrapeErrors.Load()))
	c.collectHealth(ch)
}

// collectHealth is what the alert rules watch besides the queues: the
// build, readiness, the CRL's and the certificates' expiry, unlisted
// custody, the audit checkpoint.
func (c *queueCollector) collectHealth(ch chan<- prometheus.Metric) {
	s := c.s
	bi := buildinfo.Get()
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, bi.Version, bi.Short(), bi.Go)
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, map[bool]float64{true: 1}[s.Ready()])
	if crl := s.crl.Load(); crl != nil {
		ch <- prometheus.MustNewConstMetric(descCRLNext, prometheus.GaugeValue, float64(crl.NextUpdate.Unix()))
	}
	if leaf := s.cfg.Cert.Leaf; leaf != nil {
		ch <- prometheus.MustNewConstMetric(descNotAfter, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), "switch")
	}
	seen := map[string]bool{}
	for _, ca := range s.cfg.CACerts {
		name := "ca " + ca.Subject.CommonName
		if seen[name] {
			name += " " + ca.SerialNumber.String()
		}
		seen[name] = true
		ch <- prometheus.MustNewConstMetric(descNotAfter, prometheus.GaugeValue, float64(ca.NotAfter.Unix()), name)
	}
	ch <- prometheus.MustNewConstMetric(descUnlisted, prometheus.GaugeValue, float64(len(s.unlistedAgencies())))
	ch <- prometheus.MustNewConstMetric(descCkptSize, prometheus.GaugeValue, float64(s.checkpointSize.Load()))
	ch <- prometheus.MustNewConstMetric(descCkptAt, prometheus.GaugeValue, float64(s.checkpointAt.Load()))
}
