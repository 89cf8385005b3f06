package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

func fastTimers(c *daemon.Config) {
	c.Custody.TimerInterval = daemon.Duration(20 * time.Millisecond)
}

// follow receives name's delivery reports for the rest of the test.
func follow(t *testing.T, site *daemontest.Site, name string) <-chan telegram.Receipt {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	got := make(chan telegram.Receipt, 64)
	c := site.Dial(name)
	go c.Receive(ctx, client.ReceiveOptions{Receipts: true, Follow: true},
		&receiptFunc{fn: func(r telegram.Receipt) { got <- r }})
	return got
}

// waitReceipt waits for the report about id for addressee.
func waitReceipt(t *testing.T, reports <-chan telegram.Receipt, id telegram.ID, addressee telegram.Address) telegram.Receipt {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case r := <-reports:
			if r.ID == id && r.Addressee == addressee {
				return r
			}
		case <-timeout:
			t.Fatalf("no delivery report for %s to %s", id, addressee)
		}
	}
}

func auditCount(t *testing.T, site *daemontest.Site, event string, id telegram.ID) int {
	t.Helper()
	entries, err := site.Server.Store().Audit(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Event == event && e.ID == id {
			n++
		}
	}
	return n
}

// A telegram for an agency that never connects is withdrawn at its latest
// delivery time by the switch on its own; the sender learns why.
func TestExpiryForAnAgencyThatNeverConnects(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, fastTimers)
	reports := follow(t, site, "HN.UBND")
	m := tg("HCM.UBND", telegram.Priority, "too late")
	m.Info = []telegram.Address{"NA.TU"}
	m.ExpiresAt = time.Now().Add(300 * time.Millisecond)
	id := site.Send("HN.UBND", m)
	// NA.TU collects it in time; HCM.UBND never connects.
	if got := site.Receive("NA.TU", inbox); len(got.Telegrams) != 1 {
		t.Fatalf("NA.TU received %d, want 1", len(got.Telegrams))
	}
	r := waitReceipt(t, reports, id, "HCM.UBND")
	if r.Status != telegram.NotDelivered || r.Reason != store.ReasonExpired {
		t.Fatalf("report %+v, want NOT_DELIVERED expired", r)
	}
	if n := auditCount(t, site, store.AuditExpired, id); n != 1 {
		t.Errorf("%d expiry audit records, want 1", n)
	}
	if d, _ := site.Server.Store().Delivery(id, "NA.TU"); d.Status != telegram.Delivered {
		t.Errorf("NA.TU's delivery state %+v: expiry must not touch it", d)
	}
	// A cleared terminal of HCM.UBND connecting now gets nothing.
	hcm := issueTerminal(t, site, "HCM.UBND", telegram.TopSecret)
	if got := site.Receive(hcm, inbox); len(got.Telegrams) != 0 {
		t.Fatalf("an expired telegram was delivered")
	}
}

// A telegram waiting past its precedence's target is reported overdue,
// with its age, exactly once.
func TestOverdueReportedOnce(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		fastTimers(c)
		c.Speed.Flash = daemon.Duration(100 * time.Millisecond)
	})
	first := site.Send("TW.VPTW", tg("DN.UBND", telegram.Flash, "waiting"))
	// A second, later telegram to the same queue: once it is overdue, the
	// timer has run past the first's deadline many times.
	time.Sleep(50 * time.Millisecond)
	second := site.Send("TW.VPTW", tg("DN.UBND", telegram.Flash, "waiting too"))
	deadline := time.Now().Add(60 * time.Second)
	for auditCount(t, site, store.AuditOverdue, second) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second telegram was never reported overdue")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := auditCount(t, site, store.AuditOverdue, first); n != 1 {
		t.Fatalf("the first telegram was reported overdue %d times, want once", n)
	}
	d, _ := site.Server.Store().Delivery(first, "DN.UBND")
	if !d.Overdue || !d.Pending() {
		t.Fatalf("delivery state %+v, want pending and overdue", d)
	}
	// A ROUTINE telegram with the default 6-hour target is not overdue.
	routine := site.Send("TW.VPTW", tg("DN.UBND", telegram.Routine, "fine"))
	if n := auditCount(t, site, store.AuditOverdue, routine); n != 0 {
		t.Fatalf("a ROUTINE telegram was reported overdue")
	}
}

// stall stores nothing and never acknowledges: it holds each delivery
// until the switch gives up on the connection.
type stall struct {
	c    *client.Client
	seen []client.Delivery
}

func (s *stall) Telegram(d client.Delivery) error {
	s.seen = append(s.seen, d)
	<-s.c.Done()
	return errors.New("connection closed")
}
func (s *stall) Receipt(telegram.Receipt) error { return nil }

// A delivery not acknowledged in time goes out again, flagged as a
// possible duplicate; after MaxAttempts it is parked for an operator and
// the sender is told.
func TestAckTimeoutRedeliveryAndParking(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		fastTimers(c)
		c.Custody.AckTimeout = daemon.Duration(200 * time.Millisecond)
		c.Custody.MaxAttempts = 2
	})
	reports := follow(t, site, "HN.UBND")
	id := site.Send("HN.UBND", tg("NA.TU", telegram.Immediate, "unlucky"))
	for attempt := 1; attempt <= 2; attempt++ {
		c := site.Dial("NA.TU")
		h := &stall{c: c}
		if err := c.Receive(context.Background(), inbox, h); err == nil {
			t.Fatalf("attempt %d: Receive ended cleanly, want the switch to close the connection", attempt)
		}
		if len(h.seen) != 1 || h.seen[0].Header.ID != id {
			t.Fatalf("attempt %d: handed %d telegrams", attempt, len(h.seen))
		}
		if dup := h.seen[0].PossibleDuplicate; dup != (attempt > 1) {
			t.Fatalf("attempt %d: possible duplicate = %v", attempt, dup)
		}
	}
	// The third hand-out is not made: the telegram is parked.
	if got := site.Receive("NA.TU", inbox); len(got.Telegrams) != 0 {
		t.Fatalf("a telegram out of attempts was delivered")
	}
	r := waitReceipt(t, reports, id, "NA.TU")
	if r.Status != telegram.NotDelivered || r.Reason != store.ReasonParked {
		t.Fatalf("report %+v, want NOT_DELIVERED parked", r)
	}
	parked, err := site.Server.Store().Parked("NA.TU", 10)
	if err != nil || len(parked) != 1 || parked[0].ID != id {
		t.Fatalf("parked list %+v %v", parked, err)
	}
	if n := auditCount(t, site, store.AuditAttempt, id); n != 2 {
		t.Errorf("%d attempt audit records, want 2", n)
	}
	if d, _ := site.Server.Store().Delivery(id, "NA.TU"); d.Attempts != 2 || d.Reason != store.ReasonParked {
		t.Errorf("delivery state %+v", d)
	}
}
