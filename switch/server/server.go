package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/clock"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/switchboard"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Server is a running switch.
type Server struct {
	cfg   Config
	log   *zap.Logger
	store *store.Store
	board *switchboard.Board
	disk  storage
	clock *clock.Clock
	// clockTold is the clock's state last logged and audited; clockMu
	// guards it (the timer loop and an operator's confirmation).
	clockMu   sync.Mutex
	clockTold string
	tr        *quic.Transport
	ln        *quic.Listener
	stats     *stats
	// filings and handshakes are the rate limiters per agency and per
	// source address.
	filings, handshakes *limiters
	// auditReads bounds the audit queries answered at once (one), so that
	// queries cannot take the cores that filing and delivery need: with
	// 16 clients running whole-log queries, a FLASH filing took 1.2 ms at
	// the median and 5 ms at most with one slot, 23 and 82 ms with two.
	auditReads slots
	// bodies is the switch-wide budget of filing bodies being received.
	bodies *budget
	// refusals aggregates the audit entries of refusals (refusals.go).
	refusals refusalLog
	// signing bounds the checkpoints requests make the switch sign (one
	// per CheckpointInterval; auditors are not bound).
	signing *rate.Limiter
	// dir and limits change on Reload (SIGHUP).
	dir atomic.Pointer[directory.Directory]
	// unlisted: agencies not in the directory with custody (dirchange.go).
	unlisted atomic.Pointer[[]telegram.Address]
	moving   atomic.Bool // moved agencies' queues are being moved
	// lastSeen: when a terminal of an agency last disconnected
	// (telegram.Address → time.Time), for the console's "offline since".
	lastSeen sync.Map
	notices  notices                // open incident notices (notice.go)
	keys     atomic.Pointer[keyset] // the directory's published agency keys (e2e.go)
	limits   atomic.Pointer[filing.Limits]
	// crl is the revocation list in force (nil: none configured).
	crl atomic.Pointer[certs.CRL]
	// The last audit checkpoint this process signed: its size and when
	// (unix seconds), for the metrics.
	checkpointSize atomic.Uint64
	checkpointAt   atomic.Int64
	crlMu          sync.Mutex // guards crlFile, crlStaleNoted, crlGraceNoted, crlRenewTried and expiryWarned
	crlFile        fileWatch
	crlStaleNoted  bool
	crlGraceNoted  bool
	crlRenewTried  time.Time // the last failed renewal (retried every crlRenewRetry)
	expiryWarned   time.Time // the last expiry warning round (once a day)
	dirFile        fileWatch // the directory file, as last loaded (timers)
	keysSeen       *string   // the directory's keys folder, as last looked at (timers; reload.go)
	// minimize is the MINIMIZE declarations in force (minimize.go);
	// minimizeMu serialises changes to them.
	minimize   atomic.Pointer[minimizeState]
	minimizeMu sync.Mutex
	admission  admission // admission control (admission.go)
	// links are the links to peer switches (nil: not in a network).
	links *links
	// witnessMu serialises the witness's reads and writes of what it
	// cosigned, and guards witnessKey, its key once read (witness.go).
	witnessMu  sync.Mutex
	witnessKey witnessKey

	mu        sync.Mutex
	sessions  map[*session]struct{}
	open      openSessions // the sessions counted by certificate and agency (admit.go)
	draining  bool
	memStep   int // the memory limit's session step (memory.go)
	resealing bool
	bg        sync.WaitGroup // background work: re-sealing
	bgCtx     context.Context
	bgStop    context.CancelFunc
	reqs      sync.WaitGroup // request handlers in progress
	conns     sync.WaitGroup // connection handlers
}

// New opens the store and starts listening. Serve must be called next.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.defaults()
	if cfg.Directory == nil || cfg.CAs == nil {
		return nil, fault.E("server", fault.Invalid, "a switch needs an agency directory and a CA")
	}
	if cfg.Store == nil || cfg.Clock == nil {
		return nil, fault.E("server", fault.Invalid, "a switch needs its store and its clock")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sessions: map[*session]struct{}{}, store: cfg.Store, clock: cfg.Clock}
	s.dir.Store(cfg.Directory)
	if errs := s.loadKeys(cfg.Directory); len(errs) > 0 {
		return nil, fault.E("server", fault.Invalid, "the directory's published agency keys: "+errs[0].Error())
	}
	if cfg.DirectoryFile != "" {
		s.dirFile.changed(cfg.DirectoryFile) // remember it as loaded
		s.keysFolderChanged()                // and its keys folder
	}
	s.limits.Store(&cfg.Limits)
	s.stats = newStats(s)
	s.bgCtx, s.bgStop = context.WithCancel(context.Background()) // cancelled when draining starts
	s.disk.released.Store(cfg.ReserveReleased)
	st := s.store
	s.board = switchboard.New(st, switchboard.Config{Window: cfg.Window, MaxTerminals: cfg.MaxTerminals,
		MaxAttempts: cfg.MaxAttempts, AckTimeout: cfg.AckTimeout, Expired: s.expired, Delivered: s.stats.delivered, Logger: cfg.Logger})
	st.Observe(s.board.OnCommit, func(n int) { s.stats.batches.Observe(float64(n)) })
	if cfg.Network != nil {
		s.links = newLinks(s, cfg.Network)
		st.SetRemote(s.links.elsewhere, s.links.noted)
	}
	if err := s.loadMinimize(); err != nil {
		return nil, err
	}
	if err := s.loadNotices(); err != nil {
		return nil, err
	}
	s.clock.Start(st.LastTimeAtOpen())
	if cfg.CRL != "" {
		if err := s.loadCRL(); err != nil {
			return nil, err
		}
	} else {
		s.log.Warn("no CRL configured: revoked certificates cannot be refused")
	}
	s.filings, s.handshakes = newLimiters(cfg.FilingRate), newLimiters(cfg.HandshakeRate)
	s.signing = rate.NewLimiter(rate.Every(cfg.CheckpointInterval), 1)
	s.refusals.interval = cfg.RefusalInterval
	s.bodies = newBudget(cfg.BodyBudget, cfg.BodyFlashReserve)
	s.auditReads = make(slots, 1)
	s.admission.bucket = rate.NewLimiter(rate.Inf, 1)
	tr, err := s.transport()
	if err != nil {
		return nil, err
	}
	ln, err := tr.Listen(s.tlsConfig(), &quic.Config{
		Allow0RTT:                  false,
		HandshakeIdleTimeout:       cfg.HandshakeTimeout,
		MaxIdleTimeout:             cfg.IdleTimeout,
		KeepAlivePeriod:            cfg.IdleTimeout / 4,
		MaxIncomingStreams:         int64(cfg.MaxStreams),
		MaxConnectionReceiveWindow: uint64(cfg.ConnWindow),
		MaxStreamReceiveWindow:     uint64(cfg.ConnWindow),
		// Clients never open unidirectional streams.
		MaxIncomingUniStreams: -1,
	})
	if err != nil {
		tr.Close()
		tr.Conn.Close()
		return nil, fault.E("server", fault.Unavailable, "cannot listen on "+cfg.Listen, err)
	}
	s.tr, s.ln = tr, ln
	if err := st.Record(store.AuditEntry{Actor: cfg.Name, Event: store.AuditSwitchStart}); err != nil {
		ln.Close()
		tr.Close()
		tr.Conn.Close()
		return nil, err
	}
	s.putDirectory(cfg.Directory)
	s.checkpoint()
	s.disk.last = time.Now()
	s.watchStorage(s.disk.last)
	s.watchClock()
	return s, nil
}

// directory is the agency directory in force.
func (s *Server) directory() *directory.Directory { return s.dir.Load() }

// Reload puts a new agency directory and filing limits in force, for the
// next request; sessions stay up. (Called on SIGHUP.) A directory that
// drops an agency with anything in custody is refused, and audited: the
// one in force stays (dirchange.go).
func (s *Server) Reload(dir *directory.Directory, limits filing.Limits) error {
	if err := s.checkDropped(dir); err != nil {
		return err
	}
	limits = limits.WithDefaults()
	s.noteKeys(dir)
	s.putDirectory(dir)
	s.limits.Store(&limits)
	s.log.Info("directory and limits reloaded", zap.Int("agencies", len(dir.Agencies())),
		zap.Int64("max_body", limits.MaxBody))
	s.moveMoved()
	return nil
}

// Limits is the filing limits in force.
func (s *Server) Limits() filing.Limits { return *s.limits.Load() }

// Metrics is the Prometheus registry of the switch's figures.
func (s *Server) Metrics() prometheus.Gatherer { return s.stats.reg }

// Addr is the UDP address the switch listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Store exposes the store (tests, operator tooling).
func (s *Server) Store() *store.Store { return s.store }

// Serve accepts connections until ctx is cancelled, then drains: it stops
// accepting, lets requests in progress finish (up to 10 s), closes every
// session, records the stop and closes the store.
func (s *Server) Serve(ctx context.Context) error {
	timersDone := make(chan struct{})
	go func() {
		defer close(timersDone)
		var bg sync.WaitGroup
		bg.Go(func() { s.archiver(ctx) })
		bg.Go(func() { s.scrubber(ctx) })
		bg.Go(func() { s.admissionLoop(ctx) })
		if s.links != nil {
			bg.Go(func() { s.links.run(ctx) })
		}
		s.timers(ctx)
		bg.Wait()
	}()
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	defer func() { <-timersDone }()
	if s.cfg.Keyring != nil && len(s.cfg.Keyring.IDs()) > 1 {
		s.log.Info("older data keys still in the keyring: resuming re-sealing")
		s.startReseal()
	}
	for {
		conn, err := s.ln.Accept(context.Background())
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, quic.ErrServerClosed) {
				s.log.Error("accept failed", zap.Error(err))
			}
			break
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.handleConn(conn)
		}()
	}
	return s.shutdown()
}

func (s *Server) shutdown() error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.bgStop()
	s.bg.Wait()
	done := make(chan struct{})
	go func() { s.reqs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn("requests still running at shutdown; closing anyway")
	}
	s.mu.Lock()
	for sess := range s.sessions {
		sess.conn.CloseWithError(codeShutdown, "the switch is shutting down")
	}
	s.mu.Unlock()
	s.conns.Wait()
	if err := s.store.Record(store.AuditEntry{Actor: s.cfg.Name, Event: store.AuditSwitchStop}); err != nil {
		s.log.Error("cannot record the stop", zap.Error(err))
	}
	s.checkpoint()
	s.tr.Close()
	s.tr.Conn.Close() // the transport closes only a socket it opened itself
	s.log.Info("switch stopped")
	return s.store.Close()
}

// beginRequest registers a request handler unless the switch is draining.
func (s *Server) beginRequest() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.reqs.Add(1)
	return true
}
