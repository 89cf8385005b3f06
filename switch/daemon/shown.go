package daemon

import (
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/clock"
	"github.com/dienbao/dienbao/switch/server"
	"github.com/dienbao/dienbao/switch/telegram"
)

// withDefaultsShown returns cfg with every setting it leaves out set to
// the value the switch runs with (server.DefaultConfig and the daemon's
// own defaults), so that the config switchd --dev writes shows the real
// values instead of zeros. Starting from the file gives the same switch.
func withDefaultsShown(cfg Config) Config {
	d := server.DefaultConfig()
	i := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	i64 := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	dur := func(v *Duration, def time.Duration) {
		if *v == 0 {
			*v = Duration(def)
		}
	}
	l := &cfg.Limits
	i64(&l.MaxBody, d.Limits.MaxBody)
	i(&l.MaxSubject, d.Limits.MaxSubject)
	i(&l.MaxRef, d.Limits.MaxRef)
	i(&l.MaxAddressees, d.Limits.MaxAddressees)
	i(&l.Window, d.Window)
	dur(&l.RequestTimeout, d.RequestTimeout)
	i(&l.MaxStreams, d.MaxStreams)
	i(&l.ConnWindow, d.ConnWindow)
	i(&l.FilingRate, d.FilingRate)
	i(&l.HandshakeRate, d.HandshakeRate)
	i(&l.RetryAbove, d.RetryAbove)
	i(&l.MaxSessionsPerCert, d.MaxSessionsPerCert)
	i(&l.MaxSessionsPerAgency, d.MaxSessionsPerAgency)
	i(&l.MaxSessions, d.MaxSessions)
	i(&l.MaxTerminals, d.MaxTerminals)
	dur(&l.IdleTimeout, d.IdleTimeout)
	dur(&l.HandshakeTimeout, d.HandshakeTimeout)
	i64(&l.BodyBudget, d.BodyBudget)
	i64(&l.BodyFlashReserve, d.BodyFlashReserve)
	i64(&l.ConnBodyBudget, d.ConnBodyBudget)
	dur(&l.BodyTimeout, d.BodyTimeout)
	dur(&cfg.Custody.AckTimeout, d.AckTimeout)
	i(&cfg.Custody.MaxAttempts, d.MaxAttempts)
	dur(&cfg.Custody.TimerInterval, d.TimerInterval)
	dur(&cfg.Custody.ClockTolerance, clock.DefaultTolerance)
	s := &cfg.Speed
	for p, v := range map[telegram.Precedence]*Duration{telegram.Flash: &s.Flash, telegram.Immediate: &s.Immediate, telegram.Priority: &s.Priority, telegram.Routine: &s.Routine} {
		dur(v, d.SpeedTargets[p])
	}
	dur(&cfg.Audit.CheckpointInterval, d.CheckpointInterval)
	dur(&cfg.Audit.RefusalInterval, d.RefusalInterval)
	if cfg.Audit.ArchiveAfter == nil {
		a := Duration(DefaultArchiveAfter)
		cfg.Audit.ArchiveAfter = &a
	}
	i64(&cfg.Storage.LowWatermark, d.LowWatermark)
	i64(&cfg.Storage.CriticalWatermark, d.CriticalWatermark)
	i64(&cfg.Storage.Reserve, d.Reserve)
	dur(&cfg.Storage.ReclaimInterval, d.ReclaimInterval)
	dur(&cfg.Journal.Retention, store.DefaultRetention)
	p := Admission{}.policy()
	if cfg.Admission.Enabled == nil {
		on := true
		cfg.Admission.Enabled = &on
	}
	dur(&cfg.Admission.TargetDelay, p.Target)
	i(&cfg.Admission.Floor, int(p.Floor))
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	r := &cfg.Revocation
	for _, x := range []struct {
		v   **Duration
		def time.Duration
	}{{&r.RenewBefore, DefaultCRLRenewBefore}, {&r.Validity, DefaultCRLValidity}, {&r.Grace, DefaultCRLGrace}, {&r.WarnBefore, DefaultExpiryWarning}} {
		if *x.v == nil {
			v := Duration(x.def)
			*x.v = &v
		}
	}
	return cfg
}
