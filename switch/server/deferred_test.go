package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Deferred delivery end to end, on the real switch and client: filed with
// a delivery time two seconds ahead, the telegram is ACCEPTED at once,
// shown deferred to operators, kept across a restart, and handed out only
// once the switch has queued it at its time (audited deferred, then
// queued, the queued entry no earlier than the delivery time). A delivery
// time already past or not before the latest delivery time is refused
// with a clear error and files nothing.
func TestDeferredDelivery(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartWith(t, dir, nil, fastTimers)
	at := time.Now().Add(2 * time.Second).UTC().Truncate(time.Millisecond)
	m := tg("NA.TU", telegram.Flash, "hỏa tốc hẹn giờ")
	m.DeliverAt = at
	id := site.Send("HN.UBND", m)

	if got := site.Receive("NA.TU", inbox); time.Now().Before(at) && len(got.Telegrams) != 0 {
		t.Fatalf("a deferred telegram was delivered before its time")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op := site.Dial("operator")
	if time.Now().Before(at) {
		q, err := op.Queues(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var deferred, waiting int64
		for _, r := range q.Rows {
			if r.Agency == "NA.TU" && r.Precedence == telegram.Flash {
				deferred, waiting = r.Deferred, r.Waiting
			}
		}
		show, err := op.Show(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().Before(at) { // still before its time: the figures must say deferred
			if deferred != 1 || waiting != 0 {
				t.Fatalf("queues: deferred %d waiting %d, want 1 and 0", deferred, waiting)
			}
			if len(show.Addressees) != 1 || show.Addressees[0].State != "deferred" || !show.Header.DeliverAt.Equal(at) {
				t.Fatalf("show: %+v deliver-at %s, want deferred until %s", show.Addressees, show.Header.DeliverAt, at)
			}
		}
	}
	op.Close()

	// A restart keeps it deferred (or queues it, if its time came).
	site.Stop()
	site = daemontest.StartWith(t, dir, nil, fastTimers)
	// One subscription that follows the inbox: the telegram comes when
	// the switch queues it (polling with fresh subscriptions could close
	// one while the telegram is in flight to it, and the next would get
	// it flagged, rightly).
	col := &daemontest.Collector{}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- site.Dial("NA.TU").Receive(rctx, client.ReceiveOptions{Inbox: true, Follow: true}, col)
	}()
	var got int
	for deadline := time.Now().Add(30 * time.Second); got == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = col.Count()
	}
	stop()
	<-done
	for _, d := range col.Telegrams {
		if d.Header.ID != id || d.PossibleDuplicate {
			t.Fatalf("delivered %s (possible duplicate %v), want %s once", d.Header.ID, d.PossibleDuplicate, id)
		}
	}
	if got != 1 {
		t.Fatalf("the deferred telegram was not delivered after its time")
	}
	entries, err := site.Server.Store().Audit(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range entries {
		if e.ID != id {
			continue
		}
		events = append(events, e.Event)
		if e.Event == audit.Queued && e.At.Before(at) {
			t.Errorf("queued at %s, before its delivery time %s", e.At, at)
		}
	}
	if want := "filed deferred queued attempt delivered"; !strings.HasPrefix(strings.Join(events, " "), want) {
		t.Fatalf("audit events %v, want %s first", events, want)
	}

	// Refused: a time already past, and one at or after the expiry.
	filed := func() int {
		es, err := site.Server.Store().QueryAudit(store.AuditQuery{Event: audit.Filed, Limit: store.MaxQueryLimit})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	before := filed()
	for _, c := range []struct {
		deliverAt, expiresAt time.Time
		want                 string
	}{
		{time.Now().Add(-time.Minute), time.Time{}, "is already past"},
		{time.Now().Add(2 * time.Hour), time.Now().Add(time.Hour), "would expire undelivered"},
	} {
		m := tg("NA.TU", telegram.Routine, "x")
		m.DeliverAt, m.ExpiresAt = c.deliverAt, c.expiresAt
		_, err := fileAs(site, m)
		if !fault.Is(fault.Invalid, err) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("filing deliver-at %s expiring %s: %v, want an Invalid error saying %q", c.deliverAt, c.expiresAt, err, c.want)
		}
	}
	if after := filed(); after != before {
		t.Fatalf("refused filings filed %d telegrams", after-before)
	}
}
