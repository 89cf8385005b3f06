package server

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"golang.org/x/time/rate"
)

// Guards against exhaustion, all set in Config with safe defaults:
//
//   - per connection: concurrent request streams (MaxStreams) and the bytes
//     the client may have in flight to the switch (ConnWindow, QUIC flow
//     control); a frame's declared length and a body's announced length
//     are checked before either is read (MaxFrame, Limits.MaxBody); bodies
//     being received are reserved against ConnBodyBudget and, across the
//     switch, BodyBudget before they are allocated, and cut when they make
//     no progress for BodyTimeout (budget.go);
//   - per agency: filings per second (FilingRate, with a burst of twice
//     that); filings over it are refused with "retry later";
//   - per source address: handshakes per second (HandshakeRate, burst
//     twice that); more are refused before any cryptography;
//   - per agency: terminals receiving its telegrams at once (MaxTerminals);
//     a further inbox subscription is refused with "retry later";
//   - for the switch: sessions (MaxSessions), per certificate and per
//     agency (MaxSessionsPerCert, MaxSessionsPerAgency), the last tenth
//     kept for operators and agencies with nothing connected (admit.go);
//     idle and handshake timeouts;
//     a request stream without its frame within RequestTimeout.
//
// Refusals for rate reasons are counted in the metrics and audited like
// every refusal, aggregated (refusals.go), so a flood cannot flood the log.

// Defaults.
const (
	DefaultMaxStreams    = 256
	DefaultConnWindow    = 16 << 20
	DefaultFilingRate    = 10000 // per agency per second
	DefaultHandshakeRate = 100   // per source address per second
	DefaultRetryAbove    = 200   // connection attempts per second, switch-wide, before QUIC Retry
	// Filing bodies being received (budget.go): across the switch, the
	// part of it kept for FLASH, per connection, and how long a body may
	// make no progress.
	DefaultBodyBudget       = 96 << 20
	DefaultBodyFlashReserve = 16 << 20
	DefaultConnBodyBudget   = 64 << 20
	DefaultBodyTimeout      = 10 * time.Second
	DefaultMaxSessions      = 10000
	// One certificate, and one agency's terminals, may hold this many
	// sessions (a terminal uses one to three: inbox, reports, filing; a
	// few more while old connections time out).
	DefaultMaxSessionsPerCert   = 16
	DefaultMaxSessionsPerAgency = 64
	// DefaultMaxTerminals bounds the terminals of one agency that receive
	// at once; it also bounds what a crash can leave uncounted in flight
	// (schedule.Suspects).
	DefaultMaxTerminals = 8
	// Storage watermarks and reserve (storage.go).
	DefaultLowWatermark      = 1 << 30
	DefaultCriticalWatermark = 256 << 20
	DefaultReserve           = 128 << 20
	// DefaultIdleTimeout closes a connection silent for this long: a
	// terminal that died holding deliveries gives them back within it.
	// Keep-alives go out every quarter of it.
	DefaultIdleTimeout = 15 * time.Second
)

// limiters hands out token buckets by key, forgetting idle ones.
type limiters struct {
	mu      sync.Mutex
	perSec  float64
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newLimiters(perSec int) *limiters {
	return &limiters{perSec: float64(perSec), buckets: map[string]*bucket{}}
}

// allow takes n tokens for key.
func (l *limiters) allow(key string, n int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.perSec), int(2*l.perSec))}
		l.buckets[key] = b
	}
	b.last = now
	return b.lim.AllowN(now, n)
}

// allowHandshake applies the per-address handshake rate.
func (s *Server) allowHandshake(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ok := s.handshakes.allow(host, 1, time.Now())
	if !ok {
		s.stats.refused.WithLabelValues("rate").Inc()
		who := certs.Identity{Name: "address " + host}
		reason := "handshakes from " + host + " over " + strconv.Itoa(s.cfg.HandshakeRate) + " per second: refused"
		s.refusal(deniedKey("handshake/rate", who.String(), "", ""), store.AuditEntry{Actor: who.String(), Event: store.AuditSecurity, Reason: reason}, true)
	}
	return ok
}

// allowFilings applies the per-agency filing rate to a batch of n.
func (s *Server) allowFilings(who certs.Identity, n int) bool {
	ok := s.filings.allow(string(who.Agency), n, time.Now())
	if !ok {
		reason := "filings from " + string(who.Agency) + " over " + strconv.Itoa(s.cfg.FilingRate) + " per second: refused, retry later"
		s.refusal(deniedKey("filing/rate", who.String(), who.Agency, ""), store.AuditEntry{Actor: who.String(), From: who.Agency,
			Event: store.AuditSecurity, Reason: reason}, false)
	}
	return ok
}
