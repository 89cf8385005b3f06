package server_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

var inbox = client.ReceiveOptions{Inbox: true}

func tg(to string, p telegram.Precedence, body string) client.Telegram {
	return client.Telegram{To: []telegram.Address{telegram.Address(to)}, Precedence: p,
		Classification: telegram.Unclassified, Body: []byte(body)}
}

// Telegrams filed while the addressee is offline come out FLASH first,
// then IMMEDIATE, PRIORITY, ROUTINE, and in filing order within each.
func TestPrecedenceOrder(t *testing.T) {
	site := daemontest.Start(t)
	order := []telegram.Precedence{telegram.Routine, telegram.Priority, telegram.Flash, telegram.Immediate,
		telegram.Routine, telegram.Flash, telegram.Priority, telegram.Immediate, telegram.Routine, telegram.Flash}
	c := site.Dial("HN.UBND")
	for i, p := range order {
		if _, err := c.Send(context.Background(), tg("NA.UBND", p, fmt.Sprintf("%s-%d", p, i))); err != nil {
			t.Fatal(err)
		}
	}
	got := site.Receive("NA.UBND", inbox)
	var want []string
	for _, p := range telegram.Precedences {
		for i, q := range order {
			if q == p {
				want = append(want, fmt.Sprintf("%s-%d", p, i))
			}
		}
	}
	if len(got.Telegrams) != len(want) {
		t.Fatalf("received %d telegrams, want %d", len(got.Telegrams), len(want))
	}
	for i, d := range got.Telegrams {
		if string(d.Body) != want[i] {
			t.Errorf("delivery %d: got %q, want %q", i, d.Body, want[i])
		}
	}
	// A second inbox run finds nothing: everything was acknowledged.
	if again := site.Receive("NA.UBND", inbox); len(again.Telegrams) != 0 {
		t.Errorf("second inbox run received %d telegrams, want 0", len(again.Telegrams))
	}
}

// One telegram to two action and one info addressee reaches each once,
// and the sender gets one delivery report per addressee.
func TestMultiAddresseeAndReceipts(t *testing.T) {
	site := daemontest.Start(t)
	id := site.Send("TW.VPTW", client.Telegram{
		To:   []telegram.Address{"NA.UBND", "HN.UBND"},
		Info: []telegram.Address{"NA.TU"}, Precedence: telegram.Immediate,
		Classification: telegram.Confidential, Subject: "Chỉ thị", Body: []byte("directive"),
	})
	for _, name := range []string{"NA.UBND", "HN.UBND", "NA.TU"} {
		got := site.Receive(name, inbox)
		if len(got.Telegrams) != 1 {
			t.Fatalf("%s received %d telegrams, want 1", name, len(got.Telegrams))
		}
		h := got.Telegrams[0].Header
		if h.ID != id || h.From != "TW.VPTW" || h.Subject != "Chỉ thị" || len(h.To) != 2 || len(h.Info) != 1 ||
			h.Precedence != telegram.Immediate || h.Classification != telegram.Confidential {
			t.Errorf("%s got header %+v", name, h)
		}
	}
	rc := site.Receive("TW.VPTW", client.ReceiveOptions{Receipts: true})
	if len(rc.Receipts) != 3 {
		t.Fatalf("sender received %d receipts, want 3", len(rc.Receipts))
	}
	seen := map[telegram.Address]bool{}
	for _, r := range rc.Receipts {
		if r.ID != id || r.Status != telegram.Delivered || r.At.IsZero() {
			t.Errorf("receipt %+v", r)
		}
		seen[r.Addressee] = true
	}
	if len(seen) != 3 {
		t.Errorf("receipts name %d distinct addressees, want 3", len(seen))
	}
	// Reports are delivered once.
	if again := site.Receive("TW.VPTW", client.ReceiveOptions{Receipts: true}); len(again.Receipts) != 0 {
		t.Errorf("second receipts run got %d, want 0", len(again.Receipts))
	}
}

// A sender that is online receives the delivery report as soon as the
// addressee acknowledges.
func TestReceiptToOnlineSender(t *testing.T) {
	site := daemontest.Start(t)
	reports := follow(t, site, "HN.UBND")
	id := site.Send("HN.UBND", tg("NA.TU", telegram.Flash, "now"))
	site.Receive("NA.TU", inbox)
	r := waitReceipt(t, reports, id, "NA.TU")
	if r.Status != telegram.Delivered {
		t.Errorf("receipt %+v", r)
	}
}

type receiptFunc struct{ fn func(telegram.Receipt) }

func (f *receiptFunc) Telegram(client.Delivery) error   { return nil }
func (f *receiptFunc) Receipt(r telegram.Receipt) error { f.fn(r); return nil }

// A telegram for an offline agency survives a switch restart and is
// delivered, with its report, afterwards.
func TestOfflineAddresseeAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	id := site.Send("CP.VPCP", tg("NA.UBND", telegram.Priority, "survives restart"))
	site.Stop()

	site = daemontest.StartIn(t, dir)
	got := site.Receive("NA.UBND", inbox)
	if len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id || string(got.Telegrams[0].Body) != "survives restart" {
		t.Fatalf("after restart received %+v", got.Telegrams)
	}
	site.Stop()

	site = daemontest.StartIn(t, dir)
	if again := site.Receive("NA.UBND", inbox); len(again.Telegrams) != 0 {
		t.Errorf("after a second restart received %d telegrams, want 0", len(again.Telegrams))
	}
	rc := site.Receive("CP.VPCP", client.ReceiveOptions{Receipts: true})
	if len(rc.Receipts) != 1 || rc.Receipts[0].ID != id {
		t.Errorf("sender receipts after restart: %+v", rc.Receipts)
	}
}

// Filing twice with the same reference returns the same ID and queues
// nothing new.
func TestIdempotentRef(t *testing.T) {
	site := daemontest.Start(t)
	c := site.Dial("HN.UBND")
	msg := tg("NA.TU", telegram.Routine, "once")
	msg.Ref = "HN-2026-0001"
	first, err := c.Send(context.Background(), msg)
	if err != nil || first.Duplicate {
		t.Fatalf("first filing: %+v %v", first, err)
	}
	second, err := c.Send(context.Background(), msg)
	if err != nil || !second.Duplicate || second.ID != first.ID {
		t.Fatalf("second filing: %+v %v (first %s)", second, err, first.ID)
	}
	// The same reference from another agency is another telegram.
	other := site.Send("NA.UBND", func() client.Telegram { m := msg; m.To = []telegram.Address{"NA.TU"}; return m }())
	if other == first.ID {
		t.Fatal("references are per sender agency, but another agency got the same ID")
	}
	// A batch carrying the same reference twice files once.
	res, err := c.SendBatch(context.Background(), []client.Telegram{
		func() client.Telegram { m := msg; m.Ref = "HN-2026-0002"; return m }(),
		func() client.Telegram { m := msg; m.Ref = "HN-2026-0002"; return m }(),
	})
	if err != nil || res[0].ID != res[1].ID || res[0].Duplicate == res[1].Duplicate {
		t.Fatalf("batch with a repeated reference: %+v %v", res, err)
	}
	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 3 {
		t.Errorf("addressee received %d telegrams, want 3 (one per distinct sender reference)", len(got.Telegrams))
	}
}

// Every bad filing gets a specific error and stores nothing.
func TestBadFilingsStoreNothing(t *testing.T) {
	site := daemontest.Start(t)
	big := bytes.Repeat([]byte("x"), 16<<20+1)
	cases := []struct {
		name, as string
		msg      client.Telegram
		kind     fault.Kind
	}{
		{"unknown addressee", "HN.UBND", tg("XX.NOWHERE", telegram.Routine, "x"), fault.NotExist},
		{"one of two addressees unknown", "HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU", "XX.ELSEWHERE"}, Body: []byte("x")}, fault.NotExist},
		{"no action addressee", "HN.UBND", client.Telegram{Info: []telegram.Address{"NA.TU"}, Body: []byte("x")}, fault.Invalid},
		{"addressee twice", "HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Info: []telegram.Address{"NA.TU"}, Body: []byte("x")}, fault.Invalid},
		{"above clearance", "NA.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Classification: telegram.Secret, Body: []byte("x")}, fault.Permission},
		{"invalid precedence", "HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Precedence: 9, Body: []byte("x")}, fault.Invalid},
		{"invalid classification", "HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Classification: 9, Body: []byte("x")}, fault.Invalid},
		// Plain: what a sealing terminal checks itself, the switch checks too.
		{"empty body", "HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Plain: true}, fault.Invalid},
		{"oversize body", "HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Body: big}, fault.TooLarge},
		{"control characters in subject", "HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Subject: "a\x1b[2Jb", Body: []byte("x"), Plain: true}, fault.Invalid},
		{"operator files", "operator", tg("NA.TU", telegram.Routine, "x"), fault.Permission},
		{"auditor files", "auditor", tg("NA.TU", telegram.Routine, "x"), fault.Permission},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := site.Dial(tc.as).Send(context.Background(), tc.msg)
			if err == nil {
				t.Fatal("filing accepted")
			}
			if k := fault.KindOf(err); k != tc.kind {
				t.Fatalf("error kind %s (%v), want %s", k, err, tc.kind)
			}
		})
	}
	// The switch kept serving: a good filing still goes through.
	site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "good"))
	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 1 || string(got.Telegrams[0].Body) != "good" {
		t.Fatalf("NA.TU received %d telegrams, want only the good one", len(got.Telegrams))
	}
	// The audit log holds exactly one accepted filing and one refusal per
	// bad filing; nothing else was filed.
	entries, err := site.Server.Store().Audit(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Event]++
	}
	if counts[store.AuditFiled] != 1 || counts[store.AuditQueued] != 1 {
		t.Errorf("audit: %d filed, %d queued; want 1 and 1", counts[store.AuditFiled], counts[store.AuditQueued])
	}
	if refusals := counts[store.AuditRefused] + counts[store.AuditSecurity]; refusals != len(cases) {
		t.Errorf("audit: %d refusals, want %d", refusals, len(cases))
	}
}

// A telegram is never delivered to a terminal cleared below its
// classification; a cleared terminal of the same agency receives it.
func TestClearanceAtDelivery(t *testing.T) {
	site := daemontest.Start(t)
	// NA.VINH.UBND's dev terminal is cleared UNCLASSIFIED only.
	secret := client.Telegram{To: []telegram.Address{"NA.VINH.UBND"}, Precedence: telegram.Flash,
		Classification: telegram.Confidential, Body: []byte("confidential")}
	plain := tg("NA.VINH.UBND", telegram.Routine, "plain")
	site.Send("HN.UBND", secret)
	site.Send("HN.UBND", plain)
	got := site.Receive("NA.VINH.UBND", inbox)
	if len(got.Telegrams) != 1 || string(got.Telegrams[0].Body) != "plain" {
		t.Fatalf("uncleared terminal received %d telegrams (%v), want only the unclassified one", len(got.Telegrams), got.Telegrams)
	}
	// Issue a CONFIDENTIAL terminal for the same agency.
	cleared := issueTerminal(t, site, "NA.VINH.UBND", telegram.Confidential)
	got = site.Receive(cleared, inbox)
	if len(got.Telegrams) != 1 || string(got.Telegrams[0].Body) != "confidential" {
		t.Fatalf("cleared terminal received %d telegrams, want the confidential one", len(got.Telegrams))
	}
}

// Operators and auditors have no inbox.
func TestSubscribeNeedsTerminal(t *testing.T) {
	site := daemontest.Start(t)
	for _, name := range []string{"operator", "auditor"} {
		err := site.Dial(name).Receive(context.Background(), inbox, &daemontest.Collector{})
		if fault.KindOf(err) != fault.Permission {
			t.Errorf("%s subscribing: %v, want a permission error", name, err)
		}
	}
}

// lossyHandler stores each telegram, then fails before acknowledging the
// first n: as if the connection dropped between the store and the ack.
type lossyHandler struct {
	daemontest.Collector
	fail int
}

func (h *lossyHandler) Telegram(d client.Delivery) error {
	if err := h.Collector.Telegram(d); err != nil {
		return err
	}
	if h.fail > 0 {
		h.fail--
		return fmt.Errorf("connection lost before the acknowledgement")
	}
	return nil
}

// A telegram stored by the terminal but never acknowledged comes again,
// flagged as a possible duplicate, and the inbox keeps one copy.
func TestUnacknowledgedIsRedeliveredOnce(t *testing.T) {
	site := daemontest.Start(t)
	id := site.Send("HN.UBND", tg("NA.TU", telegram.Immediate, "once only"))
	inboxDir := t.TempDir()
	h := &lossyHandler{fail: 1}
	h.Inbox = &client.Inbox{Dir: inboxDir}
	if err := site.Dial("NA.TU").Receive(context.Background(), inbox, h); err == nil {
		t.Fatal("Receive succeeded although the handler failed")
	}
	col := &daemontest.Collector{Inbox: &client.Inbox{Dir: inboxDir}}
	var seen []client.Delivery
	rec := &recorder{Collector: col, all: &seen}
	if err := site.Dial("NA.TU").Receive(context.Background(), inbox, rec); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Header.ID != id || !seen[0].PossibleDuplicate {
		t.Fatalf("redelivery: %+v, want one possible duplicate of %s", seen, id)
	}
	if len(col.Telegrams) != 0 {
		t.Fatalf("the inbox stored the redelivery again (%d new)", len(col.Telegrams))
	}
	if again := site.Receive("NA.TU", inbox); len(again.Telegrams) != 0 {
		t.Fatalf("delivered again after the acknowledgement: %d", len(again.Telegrams))
	}
}

// recorder sees every delivery before the collector's inbox dedupes it.
type recorder struct {
	*daemontest.Collector
	all *[]client.Delivery
}

func (r *recorder) Telegram(d client.Delivery) error {
	*r.all = append(*r.all, d)
	return r.Collector.Telegram(d)
}
