// Package daemontest starts real dev switches for tests: a real CA and
// certificates, a real Badger folder under t.TempDir(), QUIC on an
// ephemeral loopback port, and real clients. Nothing here is a fake.
package daemontest

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/clock"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/server"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Site is a dev site with a running switch.
type Site struct {
	t      testing.TB
	Dir    string
	Server *server.Server
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Start creates a dev site in a new temporary folder and starts a switch.
func Start(t testing.TB) *Site {
	return StartIn(t, t.TempDir())
}

// StartIn starts a switch on the dev site in dir (created if absent).
func StartIn(t testing.TB, dir string) *Site {
	t.Helper()
	return StartWithLogger(t, dir, zaptest.NewLogger(t))
}

// StartWithLogger starts a switch that logs to log.
func StartWithLogger(t testing.TB, dir string, log *zap.Logger) *Site {
	t.Helper()
	return StartWith(t, dir, log, nil)
}

// StartWith starts a switch on the dev site in dir, letting tune adjust the
// configuration first (short timers, small limits).
func StartWith(t testing.TB, dir string, log *zap.Logger, tune func(*daemon.Config)) *Site {
	t.Helper()
	return StartWithClock(t, dir, log, tune, clock.Source{})
}

// StartWithClock is StartWith on a clock the test steps (zero: the
// machine's).
func StartWithClock(t testing.TB, dir string, log *zap.Logger, tune func(*daemon.Config), clk clock.Source) *Site {
	t.Helper()
	if log == nil {
		log = zaptest.NewLogger(t)
	}
	cfg, err := daemon.DevSite(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dev site: %v", err)
	}
	// Tests share the machine's disk: pressure only when it is nearly full.
	cfg.Storage = daemon.Storage{LowWatermark: 48 << 20, CriticalWatermark: 16 << 20, Reserve: 4 << 20}
	if tune != nil {
		tune(cfg)
	}
	srv, err := daemon.Start(daemon.Options{Config: cfg, DevDir: dir, Out: io.Discard, Logger: log, KeepRuntime: true, Clock: clk})
	if err != nil {
		t.Fatalf("start switch: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Site{t: t, Dir: dir, Server: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ctx) }()
	t.Cleanup(func() { s.Stop() })
	return s
}

// Stop drains the switch and waits for it to exit.
func (s *Site) Stop() {
	s.once.Do(func() {
		s.cancel()
		if err := <-s.done; err != nil {
			s.t.Errorf("switch exited with %v", err)
		}
	})
}

// OpenStore opens the store of the stopped dev site in dir, as switchd
// would (keyring and key file from its switchd.toml). The test closes it.
func OpenStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	cfg, err := daemon.LoadConfig(filepath.Join(dir, "switchd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := daemon.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// ReloadDirectory reloads the site's directory file (and its keys
// folder), as SIGHUP does, and fails the test if it is refused.
func (s *Site) ReloadDirectory() {
	s.t.Helper()
	if err := s.TryReloadDirectory(); err != nil {
		s.t.Fatal(err)
	}
}

// TryReloadDirectory reloads the site's directory file and returns the
// switch's refusal, if any.
func (s *Site) TryReloadDirectory() error {
	d, err := directory.Load(filepath.Join(s.Dir, "directory.toml"))
	if err != nil {
		return err
	}
	return s.Server.Reload(d, s.Server.Limits())
}

// IDDir is the identity folder of a dev identity.
func (s *Site) IDDir(name string) string { return filepath.Join(s.Dir, "ids", name) }

// Dial connects as a dev identity.
func (s *Site) Dial(name string) *client.Client {
	s.t.Helper()
	f, err := certs.LoadFolder(s.IDDir(name))
	if err != nil {
		s.t.Fatalf("identity %s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, f)
	if err != nil {
		s.t.Fatalf("dial as %s: %v", name, err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Send files one telegram as name and fails the test on error.
func (s *Site) Send(name string, tg client.Telegram) telegram.ID {
	s.t.Helper()
	c := s.Dial(name)
	defer c.Close()
	res, err := c.Send(context.Background(), tg)
	if err != nil {
		s.t.Fatalf("send as %s: %v", name, err)
	}
	return res.ID
}

// Collector is a client.Handler that records what it is given, in order,
// storing telegrams in an Inbox first when one is set.
type Collector struct {
	mu        sync.Mutex
	Inbox     *client.Inbox
	Telegrams []client.Delivery
	Receipts  []telegram.Receipt
}

// Telegram implements client.Handler.
func (c *Collector) Telegram(d client.Delivery) error {
	if c.Inbox != nil {
		stored, err := c.Inbox.Store(d)
		if err != nil || !stored {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Telegrams = append(c.Telegrams, d)
	return nil
}

// Count is how many telegrams it holds now (safe while it receives).
func (c *Collector) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.Telegrams)
}

// Receipt implements client.Handler.
func (c *Collector) Receipt(r telegram.Receipt) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Receipts = append(c.Receipts, r)
	return nil
}

// Receive drains what is waiting for name (inbox and/or receipts) and
// returns it.
func (s *Site) Receive(name string, opts client.ReceiveOptions) *Collector {
	s.t.Helper()
	col := &Collector{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Dial(name).Receive(ctx, opts, col); err != nil {
		s.t.Fatalf("receive as %s: %v", name, err)
	}
	return col
}

// Buffer is a bytes.Buffer safe for concurrent writers: a log sink or a
// process's output in tests.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

// Sync lets a Buffer be a zap sink.
func (l *Buffer) Sync() error { return nil }

func (l *Buffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// VerifyAudit checks a stopped switch's whole audit log as an auditor
// would: every stored checkpoint's signature, and the tree recomputed over
// every leaf against each of them. It returns the log size and the number
// of checkpoints, and fails the test on any mismatch.
func VerifyAudit(t testing.TB, st *store.Store) (size uint64, checkpoints int) {
	t.Helper()
	v := audit.NewVerifier()
	err := st.Checkpoints(0, func(sc store.SignedCheckpoint) error {
		cp, err := audit.OpenCheckpoint(sc.Note, st.VerifierKey())
		if err != nil {
			return err
		}
		v.Expect(cp)
		checkpoints++
		return nil
	})
	if err == nil {
		err = st.AuditLeaves(0, 1<<62, func(i uint64, leaf []byte) error { return v.Add(i, leaf) })
	}
	if err == nil {
		err = v.Finish()
	}
	if err != nil {
		t.Fatalf("the audit log does not verify: %v", err)
	}
	if len(v.Checked()) != checkpoints {
		t.Fatalf("%d of %d checkpoints checked", len(v.Checked()), checkpoints)
	}
	return v.Size(), checkpoints
}

// Stuck is a client.Handler for a terminal that stops working while storing
// its first delivery (its process hangs or dies): it reports the telegram's
// ID on Got, then never acknowledges. Close(Release) at the end of the test
// lets its goroutines end.
type Stuck struct {
	Got     chan telegram.ID
	Release chan struct{}
}

// NewStuck makes a Stuck handler released when the test ends.
func NewStuck(t testing.TB) *Stuck {
	h := &Stuck{Got: make(chan telegram.ID, 1), Release: make(chan struct{})}
	t.Cleanup(func() { close(h.Release) })
	return h
}

// Telegram implements client.Handler.
func (h *Stuck) Telegram(d client.Delivery) error {
	select {
	case h.Got <- d.Header.ID:
	default:
	}
	<-h.Release
	return context.Canceled
}

// Receipt implements client.Handler.
func (h *Stuck) Receipt(telegram.Receipt) error { <-h.Release; return context.Canceled }

// StuckInFlight connects as name, follows its inbox with a Stuck handler,
// and returns once the first delivery (which must be want) is in flight
// to that dead-to-the-world terminal. The client is returned so that the
// test can see its connection end.
func (s *Site) StuckInFlight(name string, want telegram.ID) *client.Client {
	s.t.Helper()
	h := NewStuck(s.t)
	c := s.Dial(name)
	go c.Receive(context.Background(), client.ReceiveOptions{Inbox: true, Follow: true}, h)
	select {
	case got := <-h.Got:
		if got != want {
			s.t.Fatalf("the stuck terminal got %s, want %s", got, want)
		}
	case <-time.After(30 * time.Second):
		s.t.Fatal("the stuck terminal got nothing")
	}
	return c
}
