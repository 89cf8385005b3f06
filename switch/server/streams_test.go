package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
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

// Deliveries written to a stream's buffer go out even when the item after
// them is not written (here: quarantined, its body damaged): the writer
// flushes whenever it has nothing more to write, whether it wrote or
// skipped the last item. (It used to skip the flush with the item, and
// the FLASH before it sat in the buffer until the ack timeout.)
func TestDeliveriesFlushedPastASkippedItem(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	var intact []telegram.ID
	for i := range 3 {
		intact = append(intact, site.Send("HN.UBND", tg("NA.TU", telegram.Flash, fmt.Sprintf("intact %d", i))))
	}
	damaged := site.Send("HN.UBND", tg("NA.TU", telegram.Flash, "damaged"))
	site.Stop()
	flipStoredBit(t, dir, func(st *store.Store) []byte { return st.BodyKey(damaged, 0) }, -3)
	site = daemontest.StartIn(t, dir)
	col := &daemontest.Collector{}
	// Well within the ack timeout (2 minutes): a delivery held back in the
	// buffer would not arrive before this ends.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := site.Dial("NA.TU").Receive(ctx, inbox, col); err != nil {
		t.Fatalf("receive: %v (got %d of %d intact telegrams)", err, len(col.Telegrams), len(intact))
	}
	if len(col.Telegrams) != len(intact) {
		t.Fatalf("received %d telegrams, want the %d intact ones", len(col.Telegrams), len(intact))
	}
	for i, d := range col.Telegrams {
		if d.Header.ID != intact[i] {
			t.Errorf("delivery %d: %s, want %s", i, d.Header.ID, intact[i])
		}
	}
	if n := auditCount(t, site, store.AuditIntegrity, damaged); n != 1 {
		t.Errorf("%d integrity audit records for the damaged telegram, want 1", n)
	}
}
