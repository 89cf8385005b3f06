package store

import (
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// A deferred telegram is in custody from its filing (it survives a
// restart) but in no queue until Undefer, which queues it for every
// addressee, keeps its sequence (EvReinserted: the scheduler hands it out
// in filing order) and drops its timer; the audit log says deferred, then
// queued.
func TestDeferredDelivery(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	h := hdr("HN.UBND", []telegram.Address{"NA.TU", "HUE.UBND"}, telegram.Flash, "")
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	h.DeliverAt = at
	res, err := s.File(&Filing{Header: h, Body: []byte("hẹn giờ"), Actor: "HN.UBND/t1", SpeedTarget: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	s.Close()

	s, evs := open(t, dir)
	defer s.Close()
	stats := func(a telegram.Address) Counts {
		st, err := s.QueueStats(a)
		if err != nil || len(st.Queues) != 1 {
			t.Fatalf("QueueStats(%s) = %+v, %v", a, st, err)
		}
		return st.Queues[0].Counts
	}
	if c := stats("NA.TU"); c != (Counts{Deferred: 1}) {
		t.Fatalf("after filing: %+v, want one deferred", c)
	}
	q := SubQueue{Agency: "NA.TU", Prec: telegram.Flash, Class: telegram.Secret}
	if es, _ := s.ScanQueue(q, 0, 10); len(es) != 0 {
		t.Fatalf("a deferred telegram is in the queue: %v", es)
	}
	if ids, _, _ := s.Due(DueDeferral, at.Add(-time.Second), nil, 10); len(ids) != 0 {
		t.Fatalf("due before its time: %v", ids)
	}
	ids, _, _ := s.Due(DueDeferral, at, nil, 10)
	if len(ids) != 1 || ids[0] != id {
		t.Fatalf("due at its time: %v, want %s", ids, id)
	}
	stored, err := s.Header(id)
	if err != nil || !stored.DeliverAt.Equal(at) || !stored.OverdueAt.Equal(at.Add(time.Minute)) {
		t.Fatalf("header %+v, %v: want deliver-at %s and the speed target counted from it", stored, err, at)
	}

	queued, err := s.Undefer(id)
	if err != nil || len(queued) != 2 {
		t.Fatalf("Undefer = %v, %v; want both addressees", queued, err)
	}
	if c := stats("NA.TU"); c != (Counts{Waiting: 1}) {
		t.Fatalf("after its time: %+v, want one waiting", c)
	}
	es, _ := s.ScanQueue(q, 0, 10)
	if len(es) != 1 || es[0].ID != id {
		t.Fatalf("queue after its time: %v", es)
	}
	reinserted := 0
	for _, e := range *evs {
		if e.Kind == EvReinserted && e.ID == id {
			reinserted++
		}
	}
	if reinserted != 2 {
		t.Fatalf("%d reinsert events, want 2", reinserted)
	}
	if ids, _, _ := s.Due(DueDeferral, at.Add(time.Hour), nil, 10); len(ids) != 0 {
		t.Fatalf("timer still there: %v", ids)
	}
	if again, err := s.Undefer(id); err != nil || len(again) != 0 {
		t.Fatalf("second Undefer = %v, %v; want nothing", again, err)
	}
	log, err := s.QueryAudit(AuditQuery{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Event+"/"+string(e.To)+"/"+e.Reason)
	}
	want := "filed//,deferred/NA.TU/until " + at.Format(time.RFC3339) + ",deferred/HUE.UBND/until " + at.Format(time.RFC3339) +
		",queued/NA.TU/,queued/HUE.UBND/"
	if strings.Join(got, ",") != want {
		t.Fatalf("audit:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
}

// A deferred telegram cancelled before its time leaves the deferred list
// and its timer goes with its body.
func TestDeferredCancelled(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	h := hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, "")
	at := time.Now().Add(time.Hour)
	h.DeliverAt = at
	res, err := s.File(&Filing{Header: h, Body: []byte("x"), Actor: "HN.UBND/t1"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Cancel(res.ID, "op", "not needed", nil)
	if err != nil || len(r.Done) != 1 {
		t.Fatalf("Cancel = %+v, %v", r, err)
	}
	st, _ := s.QueueStats("NA.TU")
	for _, q := range st.Queues {
		if q.Counts != (Counts{}) {
			t.Fatalf("figures after cancel: %+v", q.Counts)
		}
	}
	if ids, _, _ := s.Due(DueDeferral, at.Add(time.Hour), nil, 10); len(ids) != 0 {
		t.Fatalf("timer of a cancelled telegram still there: %v", ids)
	}
	ds, _ := s.Delivery(res.ID, "NA.TU")
	if ds.Status != telegram.NotDelivered || ds.Deferred {
		t.Fatalf("delivery state %+v", ds)
	}
}
