package server_test

import (
	"bytes"
	"context"
	"github.com/dienbao/dienbao/envelope"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// A delivered telegram stays in the journal: the sender and the addressee
// it was delivered to get a copy (marked, not a delivery: nothing reaches
// the inbox), an auditor too; another agency is refused and audited; an
// addressee not yet delivered is told to wait for its inbox. The sender
// sends it again: the addressee receives the same ID flagged possible
// duplicate, and the sender a second delivery report; another agency may
// not. Exact audit counts.
func TestJournalRetrieveAndResend(t *testing.T) {
	site := daemontest.Start(t)
	ctx := context.Background()
	body := bytes.Repeat([]byte("nội dung điện "), 10000) // 150 KB: three chunks
	m := client.Telegram{To: []telegram.Address{"NA.TU"}, Info: []telegram.Address{"NA.UBND"}, Precedence: telegram.Immediate,
		Classification: telegram.Confidential, Subject: "Báo cáo", Body: body}
	id := site.Send("HN.UBND", m)
	reports := follow(t, site, "HN.UBND")
	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 1 || got.Telegrams[0].PossibleDuplicate {
		t.Fatalf("first delivery: %+v", got.Telegrams)
	}
	waitReceipt(t, reports, id, "NA.TU")

	// The sender and the addressee open their copies; the auditor gets the
	// sealed form, which it cannot read: the switch never held it in clear.
	for _, who := range []string{"NA.TU", "HN.UBND"} {
		h, b, err := site.Dial(who).Retrieve(ctx, id)
		if err != nil || h.ID != id || h.Subject != "Báo cáo" || !bytes.Equal(b, body) {
			t.Fatalf("%s retrieving: %s %q %d bytes, %v", who, h.ID, h.Subject, len(b), err)
		}
	}
	if h, b, err := site.Dial("auditor").Retrieve(ctx, id); err != nil || h.ID != id || !h.Sealed || h.Subject != "" ||
		!envelope.Is(b) || bytes.Contains(b, []byte("nội dung")) {
		t.Fatalf("auditor retrieving: %s sealed=%v %q %d bytes, %v; want the sealed form", h.ID, h.Sealed, h.Subject, len(b), err)
	}
	if _, _, err := site.Dial("CP.VPCP").Retrieve(ctx, id); !fault.Is(fault.Permission, err) {
		t.Fatalf("another agency retrieving: %v, want a permission error", err)
	}
	if _, _, err := site.Dial("NA.UBND").Retrieve(ctx, id); !fault.Is(fault.Invalid, err) {
		t.Fatalf("an addressee not yet delivered retrieving: %v, want to be told to wait", err)
	}
	if _, _, err := site.Dial("NA.TU").Retrieve(ctx, telegram.ID{1}); !fault.Is(fault.NotExist, err) {
		t.Fatalf("retrieving an unknown ID: %v", err)
	}
	if n := auditCount(t, site, store.AuditRetrieved, id); n != 3 {
		t.Fatalf("%d retrieved entries, want 3", n)
	}
	if again := site.Receive("NA.TU", inbox); len(again.Telegrams) != 0 {
		t.Fatalf("a retrieval reached the inbox: %d telegrams", len(again.Telegrams))
	}

	if _, err := site.Dial("CP.VPCP").Resend(ctx, id, "", "probe"); !fault.Is(fault.Permission, err) {
		t.Fatalf("another agency resending: %v, want a permission error", err)
	}
	r, err := site.Dial("HN.UBND").Resend(ctx, id, "", "the clerk's terminal lost it")
	if err != nil || len(r.Resent) != 1 || r.Resent[0] != "NA.TU" || len(r.Skipped) != 1 || r.Skipped[0] != "NA.UBND" {
		t.Fatalf("resend: %+v %v", r, err)
	}
	got = site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id || !got.Telegrams[0].PossibleDuplicate || !bytes.Equal(got.Telegrams[0].Body, body) {
		t.Fatalf("the copy sent again: %d telegrams", len(got.Telegrams))
	}
	waitReceipt(t, reports, id, "NA.TU")
	if n := auditCount(t, site, store.AuditResent, id); n != 1 {
		t.Fatalf("%d resent entries, want 1", n)
	}
	if n := auditCount(t, site, store.AuditDelivered, id); n != 2 {
		t.Fatalf("%d delivered entries, want 2", n)
	}
	// An operator may too, to one addressee; not to one that is not.
	if r, err := site.Dial("operator").Resend(ctx, id, "NA.TU", ""); err != nil || len(r.Resent) != 1 {
		t.Fatalf("operator resend: %+v %v", r, err)
	}
	if _, err := site.Dial("operator").Resend(ctx, id, "CP.VPCP", ""); !fault.Is(fault.Invalid, err) {
		t.Fatalf("resend to a non-addressee: %v", err)
	}
	healthy(t, site)
}

// At the end of its retention a settled telegram is purged: audited once,
// then neither retrieved nor sent again; its audit entries stay.
func TestJournalPurge(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		fastTimers(c)
		c.Journal.Retention = daemon.Duration(200 * time.Millisecond)
	})
	id := site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "short-lived"))
	if got := site.Receive("NA.TU", inbox); len(got.Telegrams) != 1 {
		t.Fatalf("received %d", len(got.Telegrams))
	}
	deadline := time.Now().Add(30 * time.Second)
	for auditCount(t, site, store.AuditPurged, id) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not purged 30 s after its retention of 200 ms")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, err := site.Dial("NA.TU").Retrieve(context.Background(), id); !fault.Is(fault.NotExist, err) {
		t.Fatalf("retrieving a purged telegram: %v", err)
	}
	if _, err := site.Dial("HN.UBND").Resend(context.Background(), id, "", ""); !fault.Is(fault.NotExist, err) {
		t.Fatalf("resending a purged telegram: %v", err)
	}
	if n := auditCount(t, site, store.AuditPurged, id); n != 1 {
		t.Fatalf("%d purge entries, want 1", n)
	}
	if n := auditCount(t, site, store.AuditDelivered, id); n != 1 {
		t.Fatalf("%d delivered entries after the purge, want 1 (audit entries stay)", n)
	}
	page, err := site.Dial("HN.UBND").Journal(context.Background(), wire.JournalQuery{})
	if err != nil || len(page.Rows) != 1 || page.Rows[0].ID != id || page.Rows[0].State != "purged" || page.Rows[0].From != "HN.UBND" {
		t.Fatalf("journal after the purge: %+v %v", page, err)
	}
}
