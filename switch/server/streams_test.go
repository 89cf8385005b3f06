package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// A long-lived connection whose requests end (FIN) in a packet of their
// own, after the reply, as a terminal that pauses between writes sends
// them, can make far more requests than the per-connection stream limit:
// every request stream is released once answered. (The switch used to
// leave such a stream's end unread, and the 257th request blocked for
// ever.) Filings through the client library on the same connection keep
// working throughout.
func TestManyRequestsOnOneConnection(t *testing.T) {
	site := daemontest.Start(t)
	c, err := rawDial(t, site, "HN.UBND", nil)
	if err != nil {
		t.Fatal(err)
	}
	term := site.Dial("HN.UBND")
	raw, _ := wire.Marshal(wire.AuditCheckpointRequest{})
	frame := append(frameHeader(uint32(2+len(raw)), byte(wire.TAuditCheckpoint)), raw...)
	const n = 1000 // about four times the default limit of 256 streams
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		str, err := c.OpenStreamSync(ctx)
		cancel()
		if err != nil {
			t.Fatalf("request %d of %d: cannot open a stream: %v", i+1, n, err)
		}
		str.Write(frame)
		str.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, _, err := wire.ReadFrame(str, wire.DefaultMaxFrame)
		if err != nil || typ != wire.TAuditCheckpoints {
			t.Fatalf("request %d of %d: reply %s, %v", i+1, n, typ, err)
		}
		time.Sleep(time.Millisecond)
		str.Close() // the end of the request, alone in its packet
		if i%100 == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := term.Send(ctx, tg("NA.UBND", telegram.Routine, "x"))
			cancel()
			if err != nil {
				t.Fatalf("filing after request %d: %v", i+1, err)
			}
		}
	}
}
