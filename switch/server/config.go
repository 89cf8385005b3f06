package server

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/clock"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"go.uber.org/zap"
)

// Config is everything a Server needs. It is data: built and validated by
// the daemon, never read from files here.
type Config struct {
	Listen string // UDP HOST:PORT
	// Store is the switch's store, opened by the daemon (on Clock's time).
	// The server takes it over: Serve closes it when it drains. If New
	// fails, it is the caller's to close.
	Store *store.Store
	// Clock is the switch's one clock (the store reads the same).
	Clock   *clock.Clock
	DataDir string          // the Badger folder (free space, the reserve beside it)
	Keyring *crypto.Keyring // seals the store; nil only in tests
	Cert    tls.Certificate // the switch's certificate and key
	CAs     *x509.CertPool  // the network CA
	// CACerts are the network CA's certificates, which must sign the CRL.
	CACerts []*x509.Certificate
	// CRL is the revocation list file; empty: none (revoked certificates
	// cannot be refused, which the switch logs at start).
	CRL string
	// CRLRenew, if set, lets the switch sign its own CRL before the one in
	// force reaches its next-update time (revocation.go).
	CRLRenew *CRLRenew
	// CRLGrace is how long a CRL past its next-update time is still used
	// (logged, audited, in the metrics) before every certificate is
	// refused.
	CRLGrace time.Duration
	// ExpiryWarning: the CRL or a certificate the switch holds that ends
	// within it is logged and audited, once a day (default 14 days).
	ExpiryWarning time.Duration
	Directory     *directory.Directory
	// DirectoryFile, if set, is watched: when it changes, the directory
	// is reloaded from it (as at SIGHUP).
	DirectoryFile string
	Limits        filing.Limits
	// AllowPlain lists the classifications (below SECRET) that may be
	// filed without end-to-end sealing; every other one must be sealed
	// and signed (e2e.go).
	AllowPlain []telegram.Classification
	MaxFrame   int // default wire.DefaultMaxFrame
	// Window is the number of unacknowledged deliveries per precedence per
	// session (default 32).
	Window int
	Logger *zap.Logger
	// Name is the switch's name in audit records (default "switch").
	Name string
	// CheckpointInterval is how often the audit log's checkpoint is signed
	// when the log has grown (default 30 s). One is also signed at start,
	// at stop and whenever an auditor asks.
	CheckpointInterval time.Duration
	// RefusalInterval is the period over which refusals are aggregated in
	// the audit log (default 10 s; refusals.go).
	RefusalInterval time.Duration
	// ArchiveAfter is the age past which audit entries are moved from the
	// store to archive files in ArchiveDir, checked hourly (0: only when
	// an auditor asks). The store is opened with the same ArchiveDir.
	ArchiveAfter time.Duration
	ArchiveDir   string
	// MemoryLimit, if positive, is the Go runtime's soft memory limit
	// with no session connected; the server raises it by SessionMemory
	// per session (memory.go). 0: the server leaves the limit alone.
	MemoryLimit int64

	// SpeedTargets are the speed-of-service targets per precedence: a
	// telegram still waiting for an addressee this long after filing is
	// reported overdue, once. Missing entries take DefaultSpeedTargets.
	SpeedTargets map[telegram.Precedence]time.Duration
	// AckTimeout is how long a terminal has to acknowledge a delivery once
	// it is written; past it the connection is closed and everything
	// unacknowledged goes back to the queue (default 2 minutes).
	AckTimeout time.Duration
	// MaxAttempts is how many unacknowledged hand-outs a telegram gets per
	// addressee before it is parked for an operator and the sender told
	// (default 5).
	MaxAttempts int
	// TimerInterval is how often expiry and speed-of-service deadlines are
	// checked (default 1 s).
	TimerInterval time.Duration
	// RequestTimeout bounds the wait for the request frame on a stream a
	// client opened (default 10 s): a stream left silent is dropped.
	RequestTimeout time.Duration
	// Guards against exhaustion (see limits.go); zero takes the default.
	MaxStreams int // concurrent request streams per connection
	ConnWindow int // bytes a client may have in flight to the switch
	FilingRate int // filings per second per agency
	// Network, if set, places the switch in a network of switches: its
	// routing table, peers and diversion policy (network.go).
	Network *Network
	// Group, if set, is the group of nodes this switch is the leader of
	// (a replicated switch: switch/group); nil on a single switch.
	Group Group
	// Admission is admission control's policy (zero Target: off).
	Admission     filing.AdmissionPolicy
	HandshakeRate int // handshakes per second per source address
	// Bodies being received and not yet stored: at most BodyBudget bytes
	// across the switch (BodyFlashReserve of them only FLASH bodies may
	// take) and ConnBodyBudget per connection; a body that makes no
	// progress for BodyTimeout is cut (budget.go).
	BodyBudget, BodyFlashReserve, ConnBodyBudget int64
	BodyTimeout                                  time.Duration
	// RetryAbove: past this many connection attempts per second across
	// the switch, a new one must first prove its source address (QUIC
	// Retry, one more round trip), so that spoofed packets cannot make
	// the switch work or write (default DefaultRetryAbove).
	RetryAbove  int
	MaxSessions int // sessions at once
	// MaxSessionsPerCert and MaxSessionsPerAgency bound the sessions one
	// certificate and one agency's terminals may hold (admit.go).
	MaxSessionsPerCert, MaxSessionsPerAgency int
	MaxTerminals                             int // terminals of one agency receiving at once
	// Storage (storage.go): free-space watermarks in bytes, the reserve
	// kept for the store, and how often delivered bodies' space is
	// reclaimed.
	LowWatermark, CriticalWatermark, Reserve int64
	ReclaimInterval                          time.Duration
	// ReserveReleased: ReleaseReserve gave the reserve to the store before
	// it was opened.
	ReserveReleased  bool
	IdleTimeout      time.Duration // a silent connection is closed (default 15 s)
	HandshakeTimeout time.Duration // default 10 s
}

// DefaultSpeedTargets follow the usual message-handling practice (ACP 121):
// FLASH as fast as possible and within 10 minutes, IMMEDIATE 30 minutes,
// PRIORITY 3 hours, ROUTINE 6 hours.
var DefaultSpeedTargets = map[telegram.Precedence]time.Duration{
	telegram.Flash:     10 * time.Minute,
	telegram.Immediate: 30 * time.Minute,
	telegram.Priority:  3 * time.Hour,
	telegram.Routine:   6 * time.Hour,
}

func (c *Config) defaults() {
	if c.MaxFrame <= 0 {
		c.MaxFrame = wire.DefaultMaxFrame
	}
	if c.Window <= 0 {
		c.Window = 32
	}
	if c.Name == "" {
		c.Name = "switch"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxStreams, DefaultMaxStreams)
	def(&c.ConnWindow, DefaultConnWindow)
	def(&c.FilingRate, DefaultFilingRate)
	def(&c.HandshakeRate, DefaultHandshakeRate)
	def(&c.RetryAbove, DefaultRetryAbove)
	def64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def64(&c.BodyBudget, DefaultBodyBudget)
	def64(&c.BodyFlashReserve, min(DefaultBodyFlashReserve, c.BodyBudget/4))
	def64(&c.ConnBodyBudget, DefaultConnBodyBudget)
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	def(&c.MaxSessions, DefaultMaxSessions)
	def(&c.MaxSessionsPerCert, DefaultMaxSessionsPerCert)
	def(&c.MaxSessionsPerAgency, DefaultMaxSessionsPerAgency)
	def(&c.MaxTerminals, DefaultMaxTerminals)
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 30 * time.Second
	}
	if c.RefusalInterval <= 0 {
		c.RefusalInterval = 10 * time.Second
	}
	c.Limits = c.Limits.WithDefaults()
	targets := map[telegram.Precedence]time.Duration{}
	for p, d := range DefaultSpeedTargets {
		targets[p] = d
	}
	for p, d := range c.SpeedTargets {
		if d > 0 {
			targets[p] = d
		}
	}
	c.SpeedTargets = targets
	if c.AckTimeout <= 0 {
		c.AckTimeout = 2 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.TimerInterval <= 0 {
		c.TimerInterval = time.Second
	}
	if c.LowWatermark <= 0 {
		c.LowWatermark = DefaultLowWatermark
	}
	if c.CriticalWatermark <= 0 {
		c.CriticalWatermark = min(DefaultCriticalWatermark, c.LowWatermark/2)
	}
	if c.Reserve < 0 {
		c.Reserve = 0
	} else if c.Reserve == 0 {
		c.Reserve = DefaultReserve
	}
	if c.ReclaimInterval <= 0 {
		c.ReclaimInterval = 10 * time.Minute
	}
}

// QUIC application error codes used when the switch closes a connection.
const (
	codeShutdown   = 0x10 // the switch is shutting down
	codeIdentity   = 0x11 // the certificate carries no usable identity
	codeProtocol   = 0x12 // the peer broke the protocol
	codeRevoked    = 0x13 // the certificate was revoked, or the CRL is out of date
	codeBusy       = 0x14 // a limit was reached; retry later
	streamBusy     = 0x14 // stream cancelled: over a rate limit
	streamProtocol = 0x12 // stream cancelled for a protocol error
	streamTooLarge = 0x13 // stream cancelled: announced size over the limit
	streamCut      = 0x16 // stream cancelled: what it carried could not be read whole (a retrieved body)
	codeAckTimeout = 0x14 // a delivery was not acknowledged in time
	codeReplaced   = 0x15 // a newer session of the same terminal took over
)

// CRLRenew is where and when the switch signs a fresh CRL by itself: the
// issuing CA's folder (certs.LoadCA: ca.pem, ca.key and revoked.json; an
// encrypted key's passphrase from Passphrase), Before the next-update time
// of the CRL in force, each valid for Validity.
type CRLRenew struct {
	CADir      string
	Passphrase certs.Passphrase
	Before     time.Duration
	Validity   time.Duration
}

// DefaultConfig is the configuration every setting left out takes: what
// a switch runs with (switchd --dev writes it out, so that the file shows
// the real values).
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}
