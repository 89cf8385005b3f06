package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Admission control (the decisions: filing.Admission). Every tenth of a
// second the switch reads its queue delay from the store and the filings
// it admitted, and steps the controller. While it limits, filings of the
// limited precedences take a token from one shared bucket at the
// controller's rate; one that finds none is refused, Unavailable, with a
// retry-after hint that the client library honours with backoff. The
// refusals are counted, not audited one by one: the start and the end of
// limiting are audited, the end with how many were refused meanwhile
// (like storage pressure, the audit log must not be what a flood fills).

const admissionInterval = 100 * time.Millisecond

type admission struct {
	mu       sync.Mutex
	state    filing.Admission
	bucket   *rate.Limiter
	admitted atomic.Int64 // ROUTINE and PRIORITY filings admitted in this interval
	total    atomic.Int64 // refused since the switch started (metric)
	since    time.Time    // when limiting started (the admission loop's)
	before   int64        // total when limiting started (the admission loop's)
}

// current is the controller's state.
func (a *admission) current() filing.Admission {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// admit decides on a filing of precedence p: nil, or the refusal.
func (s *Server) admit(p telegram.Precedence) error { return s.admitN(p, 1) }

// admitN decides on n filings of precedence p together.
func (s *Server) admitN(p telegram.Precedence, n int) error {
	a := &s.admission
	if p != telegram.Routine && p != telegram.Priority {
		return nil
	}
	a.mu.Lock()
	st, bucket := a.state, a.bucket
	a.mu.Unlock()
	// A request larger than the bucket's burst takes the whole burst:
	// asked for more, the bucket would refuse it for ever, and its client
	// would retry for nothing.
	if !st.Limits(p) || bucket.AllowN(time.Now(), min(n, bucket.Burst())) {
		a.admitted.Add(int64(n))
		return nil
	}
	a.total.Add(int64(n))
	e := fault.Errorf("file", fault.Unavailable, "the switch is saturated: %s filings are limited to %.0f a second to keep room for urgent traffic; nothing was filed, retry later (FLASH and IMMEDIATE are never limited)", p, st.Rate)
	e.RetryAfter = st.RetryAfter()
	return e
}

// admitRequest decides, before any body is read, on a request whose
// filings are all of one precedence: the whole request is admitted or
// refused (ok true), so that a saturated switch spends nothing on the
// bodies of what it refuses. Other requests (ok false) are decided filing
// by filing.
func (s *Server) admitRequest(fs []wire.Filing) (ok bool, err error) {
	p := fs[0].Precedence
	for _, f := range fs {
		if f.Precedence != p {
			return false, nil
		}
	}
	return true, s.admitN(p, len(fs))
}

// admissionLoop steps admission control until ctx ends.
func (s *Server) admissionLoop(ctx context.Context) {
	if s.cfg.Admission.Target <= 0 {
		return
	}
	t := time.NewTicker(admissionInterval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.stepAdmission(s.store.QueueDelay(), now.Sub(last))
			last = now
		}
	}
}

// stepAdmission applies one interval's measurements.
func (s *Server) stepAdmission(delay, dt time.Duration) {
	a := &s.admission
	a.mu.Lock()
	old := a.state
	next := old.Step(delay, int(a.admitted.Swap(0)), dt, s.cfg.Admission)
	a.state = next
	if next.Level > 0 {
		a.bucket.SetLimit(rate.Limit(next.Rate))
		a.bucket.SetBurst(max(1, int(next.Rate/10)))
	}
	a.mu.Unlock()
	if next.Level == old.Level {
		return
	}
	var why string
	switch {
	case old.Level == 0:
		a.since, a.before = time.Now(), a.total.Load()
		why = fmt.Sprintf("%s: filings waited %s on average for the commit loop (target %s)", next, delay.Round(time.Microsecond), s.cfg.Admission.Target)
		s.log.Warn("admission control started", zap.String("state", next.String()), zap.Duration("queue_delay", delay))
	case next.Level == 0:
		refused := a.total.Load() - a.before
		why = fmt.Sprintf("admission control stopped limiting after %s; %d filings refused meanwhile", time.Since(a.since).Round(time.Millisecond), refused)
		s.log.Warn("admission control stopped", zap.Int64("refused", refused))
	default:
		why = next.String()
		s.log.Warn("admission control changed", zap.String("state", next.String()))
	}
	s.store.RecordAsync(store.AuditEntry{Actor: "switch", Event: audit.Admission, Reason: why})
}
