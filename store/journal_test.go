package store

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// A settled telegram stays for the retention, then its purge timer takes
// it (audited once); one sent again is skipped by the timer taken while it
// waits and purged by the next; the journal gives way early when asked.
func TestJournalRetention(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	s, _ := openWith(t, t.TempDir(), func(o *Options) { o.Retention = time.Hour; o.Now = clock })
	defer s.Close()
	q := SubQueue{Agency: "NA.TU", Prec: telegram.Routine, Class: telegram.Secret}
	deliver := func() {
		t.Helper()
		es, _ := s.ScanQueue(q, 0, 10)
		for _, e := range es {
			if done, err := s.Ack(Ack{Queue: q, Seq: e.Seq, ID: e.ID, Terminal: "NA.TU/t", Head: e.Seq + 1}); !done || err != nil {
				t.Fatalf("ack: %v %v", done, err)
			}
		}
	}
	purge := func(at time.Duration) int {
		t.Helper()
		n, err := s.PurgeDue(clock().Add(at), 100)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	kept := func(id telegram.ID) bool {
		h, err := s.Header(id)
		if fault.Is(fault.NotExist, err) {
			return false
		}
		var b bytes.Buffer
		return err == nil && writeBody(s, h, &b) == nil && b.String() == "giữ lại"
	}
	a, _ := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, "ref-a"), Body: []byte("giữ lại")})
	deliver()
	if n := purge(59 * time.Minute); n != 0 || !kept(a.ID) {
		t.Fatalf("before the retention ended: %d timers taken, kept %v", n, kept(a.ID))
	}
	// Sent again before its purge: the due timer is taken, the telegram stays.
	if r, err := s.Resend(a.ID, "", "HN.UBND/t", "lost"); err != nil || len(r.Done) != 1 {
		t.Fatalf("resend: %+v %v", r, err)
	}
	if n := purge(61 * time.Minute); n != 1 || !kept(a.ID) {
		t.Fatalf("a telegram sent again and waiting: %d timers taken, kept %v", n, kept(a.ID))
	}
	now.Add(int64(30 * time.Minute))
	deliver()
	if n := purge(59 * time.Minute); n != 0 || !kept(a.ID) {
		t.Fatalf("settled again 59 minutes ago: %d, kept %v", n, kept(a.ID))
	}
	if n := purge(61 * time.Minute); n != 1 || kept(a.ID) {
		t.Fatalf("retention over: %d timers taken, kept %v", n, kept(a.ID))
	}
	if _, err := s.Delivery(a.ID, "NA.TU"); !fault.Is(fault.NotExist, err) {
		t.Fatalf("delivery state after the purge: %v", err)
	}
	// The reference is free again; the audit entries stay.
	if r, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, "ref-a"), Body: []byte("giữ lại")}); err != nil || r.Duplicate {
		t.Fatalf("the reference of a purged telegram: %+v %v", r, err)
	}
	es, _ := s.QueryAudit(AuditQuery{ID: a.ID, Limit: 100})
	var events []string
	for _, e := range es {
		events = append(events, e.Event)
	}
	if got := strings.Join(events, " "); got != "filed queued delivered report_queued resent delivered report_queued purged" {
		t.Fatalf("audit of the purged telegram: %s", got)
	}
	// Early: the newest settled telegram goes too, with the reason.
	deliver()
	if n, err := s.PurgeEarly(100, "the disk is short of space"); err != nil || n != 1 {
		t.Fatalf("early purge: %d %v", n, err)
	}
	es, _ = s.QueryAudit(AuditQuery{Event: audit.Purged, Newest: true, Limit: 1})
	if len(es) != 1 || !strings.Contains(es[0].Reason, "short of space") {
		t.Fatalf("early purge audit %+v", es)
	}
	// Nothing left to send again.
	if _, err := s.Resend(a.ID, "", "op", ""); !fault.Is(fault.NotExist, err) {
		t.Fatalf("resend after the purge: %v", err)
	}
}

// The journal gives way, custody never: an early purge (disk pressure)
// takes the timer of a telegram sent again and still waiting, and leaves
// the telegram queued, whole.
func TestEarlyPurgeLeavesCustodyAlone(t *testing.T) {
	s, _ := openWith(t, t.TempDir(), func(o *Options) { o.Retention = time.Hour })
	defer s.Close()
	q := SubQueue{Agency: "NA.TU", Prec: telegram.Routine, Class: telegram.Secret}
	r, _ := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""), Body: []byte("giữ lại")})
	es, _ := s.ScanQueue(q, 0, 10)
	if done, err := s.Ack(Ack{Queue: q, Seq: es[0].Seq, ID: r.ID, Terminal: "NA.TU/t", Head: es[0].Seq + 1}); !done || err != nil {
		t.Fatalf("ack: %v %v", done, err)
	}
	if res, err := s.Resend(r.ID, "", "op", ""); err != nil || len(res.Done) != 1 {
		t.Fatalf("resend: %+v %v", res, err)
	}
	if n, err := s.PurgeEarly(100, "the disk is short of space"); err != nil || n != 1 {
		t.Fatalf("early purge: %d timers, %v; want the one", n, err)
	}
	h, err := s.Header(r.ID)
	var b bytes.Buffer
	if err != nil || writeBody(s, h, &b) != nil || b.String() != "giữ lại" {
		t.Fatalf("the telegram waiting again lost its records: %v", err)
	}
	if es, _ := s.ScanQueue(q, 0, 10); len(es) != 1 || es[0].ID != r.ID {
		t.Fatalf("queue after the early purge: %+v", es)
	}
	if es, _ := s.QueryAudit(AuditQuery{Event: audit.Purged, Limit: 10}); len(es) != 0 {
		t.Fatalf("%d purges audited, want none", len(es))
	}
}
