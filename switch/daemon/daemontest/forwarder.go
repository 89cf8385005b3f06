package daemontest

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// Forwarder is a UDP relay a test puts on a link between two switches: the
// dialling switch is given the forwarder's address as its peer's, and the
// forwarder passes datagrams both ways. The test can cut it (every
// datagram dropped, as when a line goes down) and restore it, and limit
// the bytes per second towards the target (a slow line, with a router's
// small queue: what does not fit is dropped).
type Forwarder struct {
	Addr   string // where to send to reach the target
	ln     *net.UDPConn
	up     *net.UDPConn // connected to the target
	mu     sync.Mutex
	client *net.UDPAddr
	cut    atomic.Bool
	limit  atomic.Pointer[rate.Limiter]
	queue  chan []byte
	done   chan struct{}
}

// NewForwarder forwards to target until the test ends.
func NewForwarder(t testing.TB, target string) *Forwarder {
	t.Helper()
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.DialUDP("udp", nil, ta)
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{Addr: ln.LocalAddr().String(), ln: ln, up: up, queue: make(chan []byte, 64), done: make(chan struct{})}
	go f.fromClient()
	go f.toTarget()
	go f.fromTarget()
	t.Cleanup(func() { ln.Close(); up.Close(); close(f.done) })
	return f
}

// Cut drops every datagram both ways until Restore.
func (f *Forwarder) Cut() { f.cut.Store(true) }

// Restore ends a Cut.
func (f *Forwarder) Restore() { f.cut.Store(false) }

// Limit caps the bytes per second towards the target (0: no cap).
func (f *Forwarder) Limit(bytesPerSecond int) {
	if bytesPerSecond <= 0 {
		f.limit.Store(nil)
		return
	}
	f.limit.Store(rate.NewLimiter(rate.Limit(bytesPerSecond), 64<<10))
}

func (f *Forwarder) fromClient() {
	buf := make([]byte, 65536)
	for {
		n, from, err := f.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.client = from
		f.mu.Unlock()
		if f.cut.Load() {
			continue
		}
		select {
		case f.queue <- append([]byte(nil), buf[:n]...):
		default: // the queue is full: dropped, as a router would
		}
	}
}

func (f *Forwarder) toTarget() {
	for {
		var p []byte
		select {
		case p = <-f.queue:
		case <-f.done:
			return
		}
		if l := f.limit.Load(); l != nil {
			if d := l.ReserveN(time.Now(), len(p)).Delay(); d > 0 {
				time.Sleep(d)
			}
		}
		if !f.cut.Load() {
			f.up.Write(p)
		}
	}
}

func (f *Forwarder) fromTarget() {
	buf := make([]byte, 65536)
	for {
		n, err := f.up.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // the target is not there (a refused datagram): go on
		}
		f.mu.Lock()
		c := f.client
		f.mu.Unlock()
		if c != nil && !f.cut.Load() {
			f.ln.WriteToUDP(buf[:n], c)
		}
	}
}
