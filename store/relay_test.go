package store

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// relayed is a telegram filed at TW-SW at filedAt for NA.TU and HN.UBND,
// as TW-SW hands it to this switch, NA-SW.
func relayed(filedAt time.Time, seq uint64, body string, to ...telegram.Address) *Relay {
	h := hdr("TW.VPTW", []telegram.Address{"NA.TU", "HN.UBND"}, telegram.Flash, "tw-1")
	h.ID = telegram.NewIDGen().New(filedAt)
	h.FiledAt = filedAt
	h.ExpiresAt = filedAt.Add(time.Hour)
	h.BodyLen = int64(len(body))
	h.Trace = []telegram.Hop{{Switch: "TW-SW", At: filedAt}}
	return &Relay{Header: h, Body: []byte(body), For: to, Peer: "TW-SW", Seq: seq, Self: "NA-SW"}
}

// A relayed telegram is taken with its ID, filing time and expiry; its
// trace gains this switch; only the copies handed over are queued; a copy
// handed over again is not taken twice; the link's sequence number
// survives a restart and a gap or a repeat is audited.
func TestFileRelayed(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	filedAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	r := relayed(filedAt, 1, "khẩn", "NA.TU")
	res, err := s.FileRelayed(r)
	if err != nil || res != (RelayResult{Taken: 1}) {
		t.Fatalf("FileRelayed = %+v, %v; want one copy taken", res, err)
	}
	h, err := s.Header(r.Header.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !h.FiledAt.Equal(filedAt) || !h.ExpiresAt.Equal(filedAt.Add(time.Hour)) || h.Ref != "tw-1" {
		t.Fatalf("header %+v: the filing switch's times and reference are kept", h)
	}
	if got := strings.Join(h.Passed(), ">"); got != "TW-SW>NA-SW" {
		t.Fatalf("trace %s, want TW-SW>NA-SW", got)
	}
	var body bytes.Buffer
	if err := writeBody(s, h, &body); err != nil || body.String() != "khẩn" {
		t.Fatalf("body %q, %v", body.String(), err)
	}
	naq := SubQueue{Agency: "NA.TU", Prec: telegram.Flash, Class: telegram.Secret}
	hnq := SubQueue{Agency: "HN.UBND", Prec: telegram.Flash, Class: telegram.Secret}
	if es, _ := s.ScanQueue(naq, 0, 10); len(es) != 1 || es[0].ID != h.ID {
		t.Fatalf("NA.TU's queue: %v", es)
	}
	if es, _ := s.ScanQueue(hnq, 0, 10); len(es) != 0 {
		t.Fatalf("HN.UBND's copy was not handed over, yet queued: %v", es)
	}
	if ids, _, _ := s.Due(DueExpiry, filedAt.Add(time.Hour), nil, 10); len(ids) != 1 || ids[0] != h.ID {
		t.Fatalf("expiry timer: %v", ids)
	}

	// The same copy again (the sender did not see the acknowledgement),
	// with the next sequence number: held already, nothing taken.
	again := *r
	again.Seq = 2
	if res, err := s.FileRelayed(&again); err != nil || res != (RelayResult{Held: 1}) {
		t.Fatalf("again: %+v, %v; want the copy found held", res, err)
	}
	s.Close()

	s, _ = open(t, dir)
	defer s.Close()
	if seq, err := s.LinkSeq("TW-SW"); err != nil || seq.In[0] != 2 {
		t.Fatalf("LinkSeq after a restart = %d, %v; want 2", seq, err)
	}
	// The other copy later (after a diversion, say), with a gap: taken,
	// and the gap audited.
	other := *r
	other.For, other.Seq = []telegram.Address{"HN.UBND"}, 5
	res, err = s.FileRelayed(&other)
	if err != nil || res.Taken != 1 || res.Held != 0 || res.Link != "gap on the FLASH channel of the link from TW-SW: expected 3, got 5 (2 missing)" {
		t.Fatalf("other copy: %+v, %v", res, err)
	}
	if es, _ := s.ScanQueue(hnq, 0, 10); len(es) != 1 {
		t.Fatalf("HN.UBND's queue: %v", es)
	}
	// A repeat of a number already seen.
	rep := *relayed(filedAt, 4, "x", "NA.TU")
	res, err = s.FileRelayed(&rep)
	if err != nil || res.Taken != 1 || res.Link != "repeat on the FLASH channel of the link from TW-SW: got 4 after 5" {
		t.Fatalf("repeat: %+v, %v", res, err)
	}
	if seq, _ := s.LinkSeq("TW-SW"); seq.In[0] != 5 {
		t.Fatalf("LinkSeq = %d after a repeat, want 5 (never lowered)", seq.In[0])
	}

	count := func(event string) int {
		es, err := s.QueryAudit(AuditQuery{Event: event, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	if n := count(audit.Received); n != 3 {
		t.Fatalf("%d received entries, want 3 (one per copy taken)", n)
	}
	if n := count(audit.Link); n != 2 {
		t.Fatalf("%d link entries, want 2 (the gap and the repeat)", n)
	}
	if n := count(audit.Filed); n != 0 {
		t.Fatalf("%d filed entries: a relayed telegram was filed elsewhere", n)
	}
}

// A hand-over that no switch keeping the protocol would send changes
// nothing.
func TestFileRelayedRefuses(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	at := time.Now().UTC().Truncate(time.Second)
	for name, mutate := range map[string]func(r *Relay){
		"no ID":               func(r *Relay) { r.Header.ID = telegram.ID{} },
		"no filing time":      func(r *Relay) { r.Header.FiledAt = time.Time{} },
		"no peer":             func(r *Relay) { r.Peer = "" },
		"for nobody":          func(r *Relay) { r.For = nil },
		"not an addressee":    func(r *Relay) { r.For = []telegram.Address{"HUE.UBND"} },
		"body length":         func(r *Relay) { r.Body = r.Body[:1] },
		"passed here already": func(r *Relay) { r.Header.Trace = append(r.Header.Trace, telegram.Hop{Switch: "NA-SW", At: at}) },
	} {
		r := relayed(at, 1, "abc", "NA.TU")
		mutate(r)
		if _, err := s.FileRelayed(r); fault.KindOf(err) != fault.Invalid {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
		if _, err := s.Header(r.Header.ID); !fault.Is(fault.NotExist, err) && !r.Header.ID.IsZero() {
			t.Errorf("%s: the telegram was stored: %v", name, err)
		}
	}
	if seq, _ := s.LinkSeq("TW-SW"); seq.In[0] != 0 {
		t.Fatalf("LinkSeq = %d after refusals, want 0", seq)
	}
}

// The sending half: the next switch's acknowledgement passes custody on.
// The copy is settled here as relayed (naming the next hop), with no
// report to the sender (the switch that delivers reports); the other
// addressee still waits, and once it is delivered the telegram is settled
// and its timers go.
func TestHandOver(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	h := hdr("NA.TU", []telegram.Address{"HN.UBND", "NA.UBND"}, telegram.Immediate, "")
	h.ExpiresAt = time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	res, err := s.File(&Filing{Header: h, Body: []byte("đi Hà Nội")})
	if err != nil {
		t.Fatal(err)
	}
	hn := SubQueue{Agency: "HN.UBND", Prec: telegram.Immediate, Class: telegram.Secret}
	es, _ := s.ScanQueue(hn, 0, 1)
	done, err := s.Ack(Ack{Queue: hn, Seq: es[0].Seq, ID: res.ID, Via: "HN-SW", LinkSeq: 7})
	if err != nil || !done {
		t.Fatalf("hand-over: %v, %v", done, err)
	}
	if done, _ := s.Ack(Ack{Queue: hn, Seq: es[0].Seq, ID: res.ID, Via: "HN-SW", LinkSeq: 8}); done {
		t.Fatal("a second hand-over of the same copy reported done")
	}
	if es, _ := s.ScanQueue(hn, 0, 10); len(es) != 0 {
		t.Fatalf("HN.UBND's queue still holds %d", len(es))
	}
	ds, _ := s.Delivery(res.ID, "HN.UBND")
	if ds.Via != "HN-SW" || ds.Pending() || ds.Status != 0 || ds.At.IsZero() {
		t.Fatalf("delivery state %+v: want relayed via HN-SW", ds)
	}
	if r, _ := s.ScanReceipts("NA.TU", 0, 10); len(r) != 0 {
		t.Fatalf("reports %+v: a hand-over owes the sender nothing here", r)
	}
	es2, _ := s.QueryAudit(AuditQuery{Event: audit.Relayed})
	if len(es2) != 1 || es2[0].To != "HN.UBND" || es2[0].Actor != "HN-SW" || es2[0].Reason != "to HN-SW, link sequence 7" {
		t.Fatalf("relayed entries %+v", es2)
	}
	if ids, _, _ := s.Due(DueExpiry, h.ExpiresAt, nil, 10); len(ids) != 1 {
		t.Fatalf("expiry timer gone while NA.UBND still waits: %v", ids)
	}
	na := SubQueue{Agency: "NA.UBND", Prec: telegram.Immediate, Class: telegram.Secret}
	es, _ = s.ScanQueue(na, 0, 1)
	if _, err := s.Ack(Ack{Queue: na, Seq: es[0].Seq, ID: res.ID, Terminal: "NA.UBND/t"}); err != nil {
		t.Fatal(err)
	}
	if ids, _, _ := s.Due(DueExpiry, h.ExpiresAt, nil, 10); len(ids) != 0 {
		t.Fatalf("settled, yet its expiry timer is still there: %v", ids)
	}
	if r, _ := s.ScanReceipts("NA.TU", 0, 10); len(r) != 1 || r[0].Receipt.Addressee != "NA.UBND" {
		t.Fatalf("reports %+v: want NA.UBND's only", r)
	}
}

// A stolen disk does not name the network's switches: the link's
// sequence number is kept under a keyed tag of the peer's name.
func TestLinkKeyNamesNoSwitch(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	if _, err := s.FileRelayed(relayed(time.Now().UTC().Truncate(time.Second), 1, "x", "NA.TU")); err != nil {
		t.Fatal(err)
	}
	err := s.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); bytes.Contains(k, []byte("TW-SW")) || bytes.Contains(k, []byte("NA-SW")) {
				t.Errorf("key %q names a switch", k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := s.LinkSeq("TW-SW"); err != nil || seq.In[0] != 1 {
		t.Fatalf("LinkSeq = %d, %v", seq, err)
	}
}

// A relayed telegram's copies come one agency at a time: one addressee's
// copy is acknowledged while another's has not been handed over yet (or
// is served by another switch). The acknowledgement is recorded.
func TestAckBeforeTheOtherCopyArrives(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	r := relayed(time.Now().Add(-time.Minute).UTC().Truncate(time.Second), 1, "b", "NA.TU")
	if _, err := s.FileRelayed(r); err != nil {
		t.Fatal(err)
	}
	q := SubQueue{Agency: "NA.TU", Prec: telegram.Flash, Class: telegram.Secret}
	es, _ := s.ScanQueue(q, 0, 1)
	if done, err := s.Ack(Ack{Queue: q, Seq: es[0].Seq, ID: r.Header.ID, Terminal: "NA.TU/t", Head: es[0].Seq + 1}); err != nil || !done {
		t.Fatalf("ack of NA.TU's copy while HN.UBND's is elsewhere: %v %v", done, err)
	}
}
