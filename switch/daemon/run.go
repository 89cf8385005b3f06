package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"go/version"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/clock"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/monitor"
	"github.com/dienbao/dienbao/switch/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options say how to run.
type Options struct {
	Config *Config
	// DevDir is set in dev mode: the site folder, whose identity folders get
	// the switch's actual address and whose use is printed on Out.
	DevDir string
	Out    io.Writer // where the dev banner goes (default stdout)
	Logger *zap.Logger
	// KeepRuntime leaves the process's Go memory limit and GOMAXPROCS
	// alone (tests that run a switch in-process).
	KeepRuntime bool
	// Clock replaces the machine's clocks (tests that step the time).
	Clock clock.Source
	// AcceptLoss starts the switch although its store is damaged
	// (switchd --accept-loss; see store/logcheck.go and
	// store/lastcheckpoint.go).
	AcceptLoss bool
	// ConfigPath is the file SIGHUP reloads from (dev mode: the site's
	// switchd.toml).
	ConfigPath string

	// group is set while a node of a replicated switch leads (group.go).
	group *groupRun
}

// NewLogger builds the switch's logger: JSON for production, console for
// dev, to stderr through a buffer flushed every logFlush (and by Sync, at
// exit), so that a line per telegram does not cost a write system call per
// line. Log lines never carry a telegram body or subject.
func NewLogger(format string) (*zap.Logger, error) {
	logSinkOnce.Do(func() {
		err := zap.RegisterSink(logSink, func(*url.URL) (zap.Sink, error) {
			return bufferedStderr{&zapcore.BufferedWriteSyncer{WS: zapcore.Lock(os.Stderr), FlushInterval: logFlush}}, nil
		})
		if err != nil {
			panic(err) // registered once, under a name of our own
		}
	})
	var c zap.Config
	if format == "console" {
		c = zap.NewDevelopmentConfig()
		c.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		c.DisableStacktrace = true
	} else {
		c = zap.NewProductionConfig()
		c.EncoderConfig.TimeKey = "time"
		c.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	}
	c.OutputPaths = []string{logSink + ":"}
	return c.Build()
}

const (
	logSink  = "dienbao-stderr"
	logFlush = 100 * time.Millisecond
)

var logSinkOnce sync.Once

// bufferedStderr is the logger's sink: stderr behind a buffer.
type bufferedStderr struct{ *zapcore.BufferedWriteSyncer }

func (b bufferedStderr) Close() error { return b.Stop() }

// MinGo is the oldest Go whose standard library govulncheck finds clean for
// this code (go1.26.8 has ten reachable vulnerabilities in crypto/tls,
// crypto/x509, net/http and os). The module still builds with older Go, so
// that go vet and the tests run on the machines' own toolchain; switchd
// warns at start when built with one.
const MinGo = "go1.27.3"

// DefaultMemoryLimit is the Go runtime's soft memory limit for switchd
// with no session connected, unless the config or GOMEMLIMIT says
// otherwise; each session raises it by server.SessionMemory. Queues live
// on disk, so the switch needs little: the limit makes the garbage
// collector keep the heap near what is live instead of letting it double.
const DefaultMemoryLimit = 192 << 20

// foundProcs is what the Go runtime chose at start (the CPUs, or a
// container's CPU limit), before Start changes it: starting twice in one
// process does not double twice.
var foundProcs = runtime.GOMAXPROCS(0)

// Procs is the number of threads the switch runs Go code on at once:
// configured (procs > 0), or twice the CPUs Go found (found). More
// threads than CPUs lets the kernel, which switches threads within a
// fraction of a millisecond, interleave the switch's work, instead of
// Go's scheduler, which lets a goroutine run up to 10 ms before the next
// one in its queue, and knows no precedence. On a saturated 2-core
// machine this halved the tail of a FLASH's delivery time (README,
// "Saturation").
func Procs(procs, found int) int {
	if procs > 0 {
		return procs
	}
	return 2 * max(found, 1)
}

// Start builds a server from the config. The caller serves it.
func Start(o Options) (*server.Server, error) {
	cfg := o.Config
	var memLimit int64 // managed by the server: it grows with the sessions
	if os.Getenv("GOMEMLIMIT") == "" && !o.KeepRuntime {
		memLimit = int64(DefaultMemoryLimit)
		if cfg.MemoryLimit > 0 {
			memLimit = cfg.MemoryLimit
		}
		debug.SetMemoryLimit(memLimit)
	}
	if os.Getenv("GOMAXPROCS") == "" && !o.KeepRuntime {
		runtime.GOMAXPROCS(Procs(cfg.Procs, foundProcs))
	}
	log := o.Logger
	if log == nil {
		var err error
		if log, err = NewLogger(cfg.Log); err != nil {
			return nil, err
		}
	}
	if version.Compare(runtime.Version(), MinGo) < 0 {
		log.Warn("built with a Go whose standard library has known vulnerabilities reachable from the switch; build with GOTOOLCHAIN="+MinGo,
			zap.String("go", runtime.Version()), zap.String("want", MinGo))
	}
	dir, err := directory.Load(cfg.Directory)
	if err != nil {
		return nil, err
	}
	pair, pool, caCerts, err := loadSwitchTLS(cfg)
	if err != nil {
		return nil, err
	}
	var ring *crypto.Keyring
	if o.group != nil {
		ring = o.group.rep.Keyring()
	} else if ring, err = OpenKeyring(cfg); err != nil {
		return nil, err
	}
	allowPlain, err := cfg.EndToEnd.allowPlain()
	if err != nil {
		return nil, err
	}
	scfg := server.Config{AllowPlain: allowPlain,
		Listen: cfg.Listen, DataDir: StoreDir(cfg), Keyring: ring, Cert: pair, CAs: pool, CACerts: caCerts, CRL: cfg.CRL,
		CRLRenew: cfg.renewal(), CRLGrace: orDefault(cfg.Revocation.Grace, DefaultCRLGrace),
		ExpiryWarning: orDefault(cfg.Revocation.WarnBefore, DefaultExpiryWarning),
		DirectoryFile: cfg.Directory,
		Directory:     dir, Limits: cfg.Limits.filing(), Window: cfg.Limits.Window, Logger: log, Name: cfg.Name,
		SpeedTargets: cfg.Speed.targets(), AckTimeout: time.Duration(cfg.Custody.AckTimeout),
		MaxAttempts: cfg.Custody.MaxAttempts, TimerInterval: time.Duration(cfg.Custody.TimerInterval),
		CheckpointInterval: time.Duration(cfg.Audit.CheckpointInterval), RefusalInterval: time.Duration(cfg.Audit.RefusalInterval),
		RequestTimeout: time.Duration(cfg.Limits.RequestTimeout),
		MaxStreams:     cfg.Limits.MaxStreams, ConnWindow: cfg.Limits.ConnWindow, FilingRate: cfg.Limits.FilingRate,
		HandshakeRate: cfg.Limits.HandshakeRate, RetryAbove: cfg.Limits.RetryAbove, MaxSessions: cfg.Limits.MaxSessions,
		MaxSessionsPerCert: cfg.Limits.MaxSessionsPerCert, MaxSessionsPerAgency: cfg.Limits.MaxSessionsPerAgency, MaxTerminals: cfg.Limits.MaxTerminals,
		IdleTimeout: time.Duration(cfg.Limits.IdleTimeout), HandshakeTimeout: time.Duration(cfg.Limits.HandshakeTimeout),
		BodyBudget: cfg.Limits.BodyBudget, BodyFlashReserve: cfg.Limits.BodyFlashReserve, ConnBodyBudget: cfg.Limits.ConnBodyBudget,
		BodyTimeout:  time.Duration(cfg.Limits.BodyTimeout),
		LowWatermark: cfg.Storage.LowWatermark, CriticalWatermark: cfg.Storage.CriticalWatermark, Reserve: cfg.Storage.Reserve,
		ReclaimInterval: time.Duration(cfg.Storage.ReclaimInterval),
		ArchiveAfter:    cfg.archiveAfter(), ArchiveDir: ArchiveDir(cfg), MemoryLimit: memLimit,
		Admission: cfg.Admission.policy(),
	}
	if scfg.Network, err = cfg.Network.build(); err != nil {
		return nil, err
	}
	// The store, on the switch's one clock, opened here and handed to the
	// server (which closes it when it drains). A switch stopped on a full
	// disk first gets its reserve back, so that the store can open.
	src := o.Clock
	if src.Wall == nil || src.Mono == nil {
		src = clock.System()
	}
	scfg.Clock = clock.New(src, time.Duration(cfg.Custody.ClockTolerance))
	scfg.ReserveReleased = server.ReleaseReserve(scfg)
	sopts := store.Options{Dir: scfg.DataDir, Keyring: ring, Logger: log, Origin: cfg.origin(),
		Now: scfg.Clock.Now, CheckpointCopy: CheckpointCopy(cfg), AcceptLoss: o.AcceptLoss, Retention: time.Duration(cfg.Journal.Retention),
		ArchiveDir: ArchiveDir(cfg)}
	if o.group != nil {
		sopts.DB, sopts.Replicate = o.group.rep.DB(), o.group.replicate
		scfg.Group = o.group.node
	}
	scfg.Store, err = store.Open(sopts)
	if err != nil {
		return nil, err
	}
	if o.group != nil {
		st := o.group.node.Status()
		self := o.group.node.Self()
		if err := scfg.Store.Record(store.AuditEntry{Actor: "switch", Event: audit.Group,
			Reason: fmt.Sprintf("node %d (%s) leads the group, term %d", self.ID, self.Name, st.Term)}); err != nil {
			scfg.Store.Close()
			return nil, err
		}
	}
	srv, err := server.New(scfg)
	if err != nil {
		scfg.Store.Close()
		return nil, err
	}
	addr := srv.Addr().String()
	log.Info("switch listening", zap.String("addr", addr), zap.String("alpn", "dienbao/1"),
		zap.Int("agencies", len(dir.Agencies())), zap.Int("procs", runtime.GOMAXPROCS(0)))
	if o.DevDir != "" {
		if addr != cfg.Listen {
			for _, di := range DevIdentities {
				p := filepath.Join(o.DevDir, "ids", di.Name, certs.FolderSwitch)
				if err := os.WriteFile(p, []byte(addr+"\n"), 0o644); err != nil {
					return nil, err
				}
			}
		}
		out := o.Out
		if out == nil {
			out = os.Stdout
		}
		printBanner(out, o.DevDir, addr)
	}
	return srv, nil
}

// loadSwitchTLS reads the switch's certificate and key (a switch
// certificate, its key file private), and the CA's certificates.
func loadSwitchTLS(cfg *Config) (tls.Certificate, *x509.CertPool, []*x509.Certificate, error) {
	const op = "switchd"
	var none tls.Certificate
	pair, err := certs.LoadKeyPair(cfg.Cert, cfg.Key, cfg.keyPassphrase())
	if err != nil {
		return none, nil, nil, fault.E(op, fault.Invalid, "cannot load the switch certificate and key: "+err.Error())
	}
	if id, err := certs.IdentityOf(pair.Leaf); err != nil || id.Role != certs.Switch {
		return none, nil, nil, fault.Errorf(op, fault.Invalid, "%s is not a switch certificate", cfg.Cert)
	}
	caPEM, err := os.ReadFile(cfg.CA)
	if err != nil {
		return none, nil, nil, fault.E(op, fault.Invalid, "cannot read the CA certificate", err)
	}
	pool := x509.NewCertPool()
	caCerts, _ := certs.ParsePEMCertificates(caPEM)
	if !pool.AppendCertsFromPEM(caPEM) {
		return none, nil, nil, fault.Errorf(op, fault.Invalid, "%s holds no PEM certificate", cfg.CA)
	}
	return pair, pool, caCerts, nil
}

// StoreDir is where the Badger store lives: data/store.
func StoreDir(cfg *Config) string { return filepath.Join(cfg.Data, "store") }

// ArchiveDir is the folder of the audit log's archive files.
func ArchiveDir(cfg *Config) string { return filepath.Join(cfg.Data, "audit-archive") }

// DefaultArchiveAfter is the age past which audit entries are archived
// unless [audit] archive_after says otherwise.
const DefaultArchiveAfter = 90 * 24 * time.Hour

func (cfg *Config) archiveAfter() time.Duration {
	if cfg.Audit.ArchiveAfter == nil {
		return DefaultArchiveAfter
	}
	return time.Duration(*cfg.Audit.ArchiveAfter)
}

// CheckpointCopy is where the latest audit checkpoint is copied: beside
// the keyring, outside the store's files, so that it does not share their
// fate.
func CheckpointCopy(cfg *Config) string { return filepath.Join(cfg.Data, "checkpoint.note") }

// OpenKeyring opens the keyring in the data folder with the configured
// secret. The first start (no keyring and no store yet) creates it. A
// wrong passphrase or key file is refused in one line, before anything
// under the data folder is touched.
func OpenKeyring(cfg *Config) (*crypto.Keyring, error) {
	secret, err := cfg.Secret()
	if err != nil {
		return nil, fault.E("switchd", fault.Invalid, err.Error())
	}
	ring, err := crypto.OpenKeyring(cfg.Data, secret)
	if fault.Is(fault.NotExist, err) {
		if _, statErr := os.Stat(StoreDir(cfg)); statErr == nil {
			return nil, fault.Errorf("switchd", fault.Integrity, "%s holds a store but no keyring (%s): restore the keyring from backup",
				cfg.Data, crypto.KeyringFile)
		}
		return crypto.CreateKeyring(cfg.Data, secret)
	}
	return ring, err
}

// OpenStore opens a stopped switch's store, with its keyring, for
// maintenance and inspection. It fails while the switch runs.
func OpenStore(cfg *Config) (*store.Store, error) {
	ring, err := OpenKeyring(cfg)
	if err != nil {
		return nil, err
	}
	opts := store.Options{Dir: StoreDir(cfg), Keyring: ring, Origin: cfg.origin(), CheckpointCopy: CheckpointCopy(cfg), ArchiveDir: ArchiveDir(cfg)}
	if cfg.Group.enabled() {
		// A node of a group, stopped: its records, read only (a write
		// would need the group).
		rep, err := store.OpenReplica(opts.Dir, ring)
		if err != nil {
			return nil, err
		}
		opts.DB, opts.CloseDB = rep.DB(), true
		opts.Replicate = func([]byte) error {
			return fault.E("switchd", fault.Invalid, "a stopped node of a group is read only: changes go through the group's leader")
		}
		st, err := store.Open(opts)
		if err != nil {
			rep.Close()
		}
		return st, err
	}
	return store.Open(opts)
}

// origin is the audit log's origin: configured, or derived from the name.
func (cfg *Config) origin() string {
	if cfg.Audit.Origin != "" {
		return cfg.Audit.Origin
	}
	name := cfg.Name
	if name == "" {
		name = "switch"
	}
	return audit.OriginFor(name)
}

// Run starts the switch and serves until ctx ends, then drains.
//
// With Config.HTTP set it also serves the monitoring listener (metrics,
// health, console); on SIGHUP it reloads the agency directory and the
// filing limits from ConfigPath without dropping sessions.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		log, err := NewLogger(o.Config.Log)
		if err != nil {
			return err
		}
		o.Logger = log
		defer log.Sync()
	}
	if o.Config.Group.enabled() {
		return runGroup(ctx, o)
	}
	srv, err := Start(o)
	if err != nil {
		return err
	}
	for _, listen := range []func(Options, *server.Server) (*monitor.Listener, error){listenMonitor, listenConsole} {
		ml, err := listen(o, srv)
		if err != nil {
			stopped, cancel := context.WithCancel(ctx)
			cancel()
			srv.Serve(stopped) // closes the store cleanly
			return err
		}
		if ml != nil {
			defer ml.Close()
		}
	}
	defer listenControl(o, srv)()
	status := serving(srv.Addr().String())
	notify(o.Logger, sdnotify.SdNotifyReady, status)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				notify(o.Logger, sdnotify.SdNotifyStopping, "draining")
				return
			case <-hup:
				notify(o.Logger, sdnotify.SdNotifyReloading, "reloading the directory, limits and CRL")
				reload(o, srv)
				notify(o.Logger, sdnotify.SdNotifyReady, serving(srv.Addr().String()))
			}
		}
	}()
	return srv.Serve(ctx)
}

// listenConsole starts the HTTPS console (Config.Console), if set: TLS
// 1.3 with the switch's certificate, operators' and auditors' client
// certificates, the Host header one of the certificate's names (or
// console_hosts).
func listenConsole(o Options, srv *server.Server) (*monitor.Listener, error) {
	if o.Config.Console == "" {
		return nil, nil
	}
	hosts := o.Config.ConsoleHosts
	if len(hosts) == 0 {
		hosts = srv.ConsoleHosts()
	}
	ml, err := monitor.ListenWith(o.Config.Console, srv, o.Logger, monitor.Options{Console: true, TLS: srv.ConsoleTLS(),
		Authorize: srv.ConsoleAuthorize, Hosts: hosts})
	if err != nil {
		return nil, fault.E("switchd", fault.Unavailable, "cannot listen on "+o.Config.Console+" for the console", err)
	}
	o.Logger.Info("console listener (HTTPS, client certificates)", zap.String("addr", ml.Addr().String()), zap.Strings("hosts", hosts))
	return ml, nil
}

// listenMonitor starts the monitoring listener, if Config.HTTP is set:
// with the console in dev mode (and on loopback). In dev mode a busy
// default port falls back to any free one: the banner says which.
func listenMonitor(o Options, srv *server.Server) (*monitor.Listener, error) {
	if o.Config.HTTP == "" {
		return nil, nil
	}
	listen := monitor.ListenMonitoring
	if o.DevDir != "" {
		listen = monitor.Listen
	}
	ml, err := listen(o.Config.HTTP, srv, o.Logger)
	if err != nil && o.DevDir != "" {
		o.Logger.Warn("monitoring port busy; using another", zap.String("wanted", o.Config.HTTP), zap.Error(err))
		ml, err = monitor.Listen("127.0.0.1:0", srv, o.Logger)
	}
	if err != nil {
		return nil, fault.E("switchd", fault.Unavailable, "cannot listen on "+o.Config.HTTP+" for monitoring", err)
	}
	o.Logger.Info("monitoring listener", zap.String("addr", ml.Addr().String()))
	if o.DevDir != "" {
		// tg bench --dev finds the metrics here.
		if err := os.WriteFile(filepath.Join(o.DevDir, "monitor"), []byte(ml.Addr().String()+"\n"), 0o644); err != nil {
			return nil, err
		}
		out := o.Out
		if out == nil {
			out = os.Stdout
		}
		fmt.Fprintf(out, "Console (bảng theo dõi): http://%s/   metrics: http://%s/metrics\n\n", ml.Addr(), ml.Addr())
	}
	return ml, nil
}

// reload re-reads the config file's directory and limits (SIGHUP). A bad
// file changes nothing.
func reload(o Options, srv *server.Server) {
	path := o.ConfigPath
	if path == "" && o.DevDir != "" {
		path = filepath.Join(o.DevDir, "switchd.toml")
	}
	if path == "" {
		o.Logger.Warn("SIGHUP: no config file to reload")
		return
	}
	cfg, err := LoadConfig(path)
	if err == nil {
		var dir *directory.Directory
		if dir, err = directory.Load(cfg.Directory); err == nil {
			if err := srv.Reload(dir, cfg.Limits.filing()); err != nil {
				o.Logger.Error("SIGHUP: reload refused; the directory and limits in force are kept", zap.Error(err))
				return
			}
			srv.ReloadCRL()
			n, err := cfg.Network.build()
			if err == nil {
				err = srv.ReloadNetwork(n)
			}
			if err != nil {
				o.Logger.Error("SIGHUP: the routing table was not reloaded; the one in force is kept", zap.Error(err))
			}
			return
		}
	}
	o.Logger.Error("SIGHUP: reload refused; the directory and limits in force are kept", zap.Error(err))
}

func printBanner(w io.Writer, dir, addr string) {
	ids := filepath.Join(dir, "ids")
	fmt.Fprintf(w, `
dienbao switch (dev mode) listening on %s (QUIC, ALPN dienbao/1)
  data folder: %s    identities: %s/{TW.VPTW,CP.VPCP,HN.UBND,NA.TU,NA.UBND,NA.VINH.UBND,operator,auditor}

In another terminal, from this folder:
  GOTOOLCHAIN=go1.27.3 go build -o bin/ ./cmd/tg
  bin/tg --id %s/HN.UBND send --to NA.UBND --prec FLASH --class CONFIDENTIAL --subject "Báo cáo" "Nội dung điện"
  bin/tg --id %s/NA.UBND inbox
  bin/tg --id %s/HN.UBND receipts

Stop with Ctrl-C (queued telegrams stay in %s).

`, addr, dir, ids, ids, ids, ids, dir)
}
