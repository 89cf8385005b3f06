package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// row finds one agency and precedence in the queue figures.
func row(t *testing.T, q wire.Queues, a telegram.Address, p telegram.Precedence) wire.QueueRow {
	t.Helper()
	for _, r := range q.Rows {
		if r.Agency == a && r.Precedence == p {
			return r
		}
	}
	return wire.QueueRow{Agency: a, Precedence: p}
}

func queues(t *testing.T, op *client.Client) wire.Queues {
	t.Helper()
	q, err := op.Queues(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// expect checks one row's waiting, held, parked and overdue figures.
func expect(t *testing.T, op *client.Client, a telegram.Address, p telegram.Precedence, waiting, held, parked, overdue int64) {
	t.Helper()
	r := row(t, queues(t, op), a, p)
	if r.Waiting != waiting || r.Held != held || r.Parked != parked || r.Overdue != overdue {
		t.Fatalf("%s %s: waiting %d held %d parked %d overdue %d, want %d %d %d %d", a, p,
			r.Waiting, r.Held, r.Parked, r.Overdue, waiting, held, parked, overdue)
	}
}

func operate(t *testing.T, op *client.Client, o wire.Operate) wire.Operated {
	t.Helper()
	res, err := op.Operate(context.Background(), o)
	if err != nil {
		t.Fatalf("%s: %v", o.Action, err)
	}
	return res
}

// An operator sees exact figures per agency and precedence, and each
// action changes them, the deliveries and the sender's reports as it
// should; every action is audited with the operator's identity.
func TestOperatorActions(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		fastTimers(c)
		c.Speed.Priority = daemon.Duration(100 * time.Millisecond)
		c.Custody.AckTimeout = daemon.Duration(200 * time.Millisecond)
		c.Custody.MaxAttempts = 1
	})
	op := site.Dial("operator")
	reports := follow(t, site, "HN.UBND")
	var flash, priority []telegram.ID
	for i := 0; i < 5; i++ {
		flash = append(flash, site.Send("HN.UBND", tg("DN.UBND", telegram.Flash, "f")))
	}
	for i := 0; i < 3; i++ {
		priority = append(priority, site.Send("HN.UBND", tg("HCM.UBND", telegram.Priority, "p")))
	}
	for i := 0; i < 2; i++ {
		site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "r"))
	}
	expect(t, op, "DN.UBND", telegram.Flash, 5, 0, 0, 0)
	expect(t, op, "NA.TU", telegram.Routine, 2, 0, 0, 0)
	// The PRIORITY ones pass their 100 ms target.
	deadline := time.Now().Add(30 * time.Second)
	for row(t, queues(t, op), "HCM.UBND", telegram.Priority).Overdue != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the PRIORITY telegrams were never counted overdue")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if q := queues(t, op); len(q.Overdue) != 3 || q.Overdue[0].Agency != "HCM.UBND" || row(t, q, "HCM.UBND", telegram.Priority).OldestAgeSeconds <= 0.1 {
		t.Fatalf("overdue list %+v", q.Overdue)
	}

	// Hold one telegram, then release it.
	if res := operate(t, op, wire.Operate{Action: wire.ActHold, ID: flash[1]}); len(res.Done) != 1 {
		t.Fatalf("hold: %+v", res)
	}
	expect(t, op, "DN.UBND", telegram.Flash, 4, 1, 0, 0)
	if s, _ := op.Show(context.Background(), flash[1]); s.Addressees[0].State != "held" || s.Header.Subject != "" {
		t.Fatalf("show after hold: %+v", s)
	}
	operate(t, op, wire.Operate{Action: wire.ActRelease, ID: flash[1]})
	expect(t, op, "DN.UBND", telegram.Flash, 5, 0, 0, 0)
	if _, err := op.Operate(context.Background(), wire.Operate{Action: wire.ActRelease, ID: flash[1]}); !fault.Is(fault.Invalid, err) {
		t.Fatalf("releasing what is not held: %v", err)
	}

	// Hold a whole agency: its terminal gets nothing until released, then
	// everything, in order.
	operate(t, op, wire.Operate{Action: wire.ActHoldAgency, Agency: "NA.TU"})
	if got := site.Receive("NA.TU", inbox); len(got.Telegrams) != 0 {
		t.Fatalf("a held agency received %d telegrams", len(got.Telegrams))
	}
	if r := row(t, queues(t, op), "NA.TU", telegram.Routine); !r.AgencyHeld || r.Held != 2 || r.Waiting != 2 {
		t.Fatalf("held agency row %+v", r)
	}
	operate(t, op, wire.Operate{Action: wire.ActReleaseAgency, Agency: "NA.TU"})
	if got := site.Receive("NA.TU", inbox); len(got.Telegrams) != 2 {
		t.Fatalf("after release the agency received %d telegrams, want 2", len(got.Telegrams))
	}
	expect(t, op, "NA.TU", telegram.Routine, 0, 0, 0, 0)

	// Cancel: the sender is told, with the operator's reason.
	operate(t, op, wire.Operate{Action: wire.ActCancel, ID: priority[0], Reason: "gửi nhầm"})
	expect(t, op, "HCM.UBND", telegram.Priority, 2, 0, 0, 2)
	if r := waitReceipt(t, reports, priority[0], "HCM.UBND"); r.Status != telegram.NotDelivered || r.Reason != "gửi nhầm" {
		t.Fatalf("cancel report %+v", r)
	}

	// Parked after its one attempt, then requeued and delivered.
	parked := site.Send("HN.UBND", tg("NA.UBND", telegram.Immediate, "stalled"))
	c := site.Dial("NA.UBND")
	c.Receive(context.Background(), inbox, &stall{c: c})
	site.Receive("NA.UBND", inbox) // out of attempts: parked
	waitReceipt(t, reports, parked, "NA.UBND")
	expect(t, op, "NA.UBND", telegram.Immediate, 0, 0, 1, 0)
	if s, _ := op.Show(context.Background(), parked); s.Addressees[0].State != "parked" || s.Addressees[0].Attempts != 1 {
		t.Fatalf("show parked: %+v", s.Addressees)
	}
	operate(t, op, wire.Operate{Action: wire.ActRequeue, ID: parked})
	expect(t, op, "NA.UBND", telegram.Immediate, 1, 0, 0, 0)
	if got := site.Receive("NA.UBND", inbox); len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != parked {
		t.Fatalf("the requeued telegram was not delivered: %d", len(got.Telegrams))
	}
	if r := waitReceipt(t, reports, parked, "NA.UBND"); r.Status != telegram.Delivered {
		t.Fatalf("after requeue: %+v", r)
	}

	// Sessions: the operator's own connection is listed.
	list, err := op.Sessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, s := range list {
		seen = seen || (s.Role == "operator" && s.Remote != "")
	}
	if !seen {
		t.Fatalf("sessions %+v", list)
	}
	// Terminals cannot.
	if _, err := site.Dial("NA.TU").Queues(context.Background(), 0); !fault.Is(fault.Permission, err) {
		t.Fatalf("a terminal read the queues: %v", err)
	}

	// Every action audited, naming the operator.
	ops, err := site.Server.Store().QueryAudit(store.AuditQuery{Event: audit.Operator, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	cancels, _ := site.Server.Store().QueryAudit(store.AuditQuery{Event: audit.Cancelled, Limit: 100})
	if len(ops) != 5 || len(cancels) != 1 || cancels[0].Reason != "gửi nhầm" {
		t.Fatalf("%d operator entries (want 5: hold, release, hold agency, release agency, requeue), %d cancelled", len(ops), len(cancels))
	}
	for _, e := range append(ops, cancels...) {
		if e.Actor != "operator (dev)" {
			t.Fatalf("operator action by %q", e.Actor)
		}
	}
}

// telegramFunc hands each delivered telegram to fn (which may block,
// holding back the acknowledgement).
type telegramFunc struct{ fn func(client.Delivery) }

func (f *telegramFunc) Telegram(d client.Delivery) error { f.fn(d); return nil }
func (f *telegramFunc) Receipt(telegram.Receipt) error   { return nil }

// A telegram held after the scheduler buffered it, but before the
// scheduler hears of the hold, is not handed out: the hand-out reads the
// held state and lets it go.
func TestHeldAfterBufferingIsNotDelivered(t *testing.T) {
	site := daemontest.Start(t)
	got := make(chan client.Delivery, 8)
	flashIn, ackFlash := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go site.Dial("NA.TU").Receive(ctx, client.ReceiveOptions{Inbox: true, Follow: true}, &telegramFunc{fn: func(d client.Delivery) {
		got <- d
		if d.Header.Precedence == telegram.Flash {
			close(flashIn)
			<-ackFlash // the FLASH stays in flight: no ROUTINE goes out meanwhile
		}
	}})
	flash := site.Send("HN.UBND", tg("NA.TU", telegram.Flash, "flash"))
	<-flashIn
	held := site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "held"))
	// The hold commits without the scheduler being told, as in the moment
	// between an operator's hold and its notice.
	if _, err := site.Server.Store().Hold(held, "test", nil); err != nil {
		t.Fatal(err)
	}
	later := site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "later"))
	close(ackFlash)
	want := []telegram.ID{flash, later}
	for i, id := range want {
		select {
		case d := <-got:
			if d.Header.ID != id {
				t.Fatalf("delivery %d: %s, want %s (the held telegram is %s)", i, d.Header.ID, id, held)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("delivery %d (%s) never came", i, id)
		}
	}
}
