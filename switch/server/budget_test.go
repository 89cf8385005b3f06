package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// fileRaw starts a filing of one body of n bytes on a new stream of c and
// sends the first `send` bytes of it; the caller reads the reply.
func fileRaw(t *testing.T, c *quic.Conn, p telegram.Precedence, n, send int) *quic.Stream {
	t.Helper()
	str, err := c.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req := wire.FileRequest{Filings: []wire.Filing{{To: []telegram.Address{"NA.TU"}, Precedence: p,
		Classification: telegram.Unclassified, BodyLen: int64(n)}}}
	if err := wire.WriteFrame(str, wire.TFile, req); err != nil {
		t.Fatal(err)
	}
	str.Write(make([]byte, send))
	return str
}

// replyErr reads a reply that must be an error frame.
func replyErr(t *testing.T, str *quic.Stream, within time.Duration) error {
	t.Helper()
	str.SetReadDeadline(time.Now().Add(within))
	typ, payload, err := wire.ReadFrame(str, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	var we wire.Error
	if typ != wire.TError || wire.Decode(wire.TError, payload, &we) != nil {
		t.Fatalf("reply %s, want an error", typ)
	}
	return we.Fault()
}

// Bodies announced and never sent, or sent all but the last byte, cannot
// make the switch allocate without bound (issue 15, finding 3: 16 MiB
// announced on each of 128 streams drove the heap to 2.17 GB): the bytes
// are reserved against a budget per connection and across the switch
// before they are allocated, a body that makes no progress is cut, and a
// FLASH from another terminal still goes through meanwhile.
func TestBodyBudgets(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Limits.BodyBudget = 8 << 20 // 2 MiB of it kept for FLASH
		c.Limits.BodyFlashReserve = 2 << 20
		c.Limits.ConnBodyBudget = 6 << 20
		c.Limits.BodyTimeout = daemon.Duration(3 * time.Second) // longer than the 2 s a filing waits for budget
	})
	a, err := rawDial(t, site, "HN.UBND", nil)
	if err != nil {
		t.Fatal(err)
	}
	stalled := fileRaw(t, a, telegram.Routine, 4<<20, 4<<20-1) // all but the last byte
	time.Sleep(200 * time.Millisecond)
	if err := replyErr(t, fileRaw(t, a, telegram.Routine, 4<<20, 0), 5*time.Second); !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "this connection") {
		t.Fatalf("a second 4 MiB body on the same connection: %v, want refused by the connection's budget", err)
	}
	b, err := rawDial(t, site, "TW.VPTW", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := replyErr(t, fileRaw(t, b, telegram.Routine, 3<<20, 0), 5*time.Second); !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "retry later") {
		t.Fatalf("3 MiB more across the switch (4 + 3 > 6 for ROUTINE): %v, want retry later", err)
	}
	// The FLASH share is still there: a FLASH files at once.
	m := tg("NA.TU", telegram.Flash, "hỏa tốc")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := site.Dial("CP.VPCP").Send(ctx, m); err != nil {
		t.Fatalf("a FLASH while the budget is held: %v", err)
	}
	// The stalled body is cut after 3 s without progress, and its
	// bytes come back.
	if err := replyErr(t, stalled, 10*time.Second); !fault.Is(fault.Invalid, err) || !strings.Contains(err.Error(), "no progress") {
		t.Fatalf("the stalled body: %v, want cut", err)
	}
	if err := replyErr(t, fileRaw(t, b, telegram.Routine, 3<<20, 0), 5*time.Second); err == nil {
		t.Fatal("unreachable")
	} else if fault.Is(fault.Unavailable, err) {
		t.Fatalf("after the stalled body was cut, the budget is still held: %v", err)
	}
	healthy(t, site)
}
