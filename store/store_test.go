package store

import (
	"bytes"
	"fmt"
	"github.com/dgraph-io/badger/v4"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/telegram"
)

// testRing returns the keyring kept beside a test's store folder,
// creating it (with a key file) the first time.
func testRing(t testing.TB, dir string) *crypto.Keyring {
	t.Helper()
	secret := crypto.Secret{KeyFile: dir + ".key"}
	if _, err := os.Stat(secret.KeyFile); err != nil {
		if err := crypto.NewKeyFile(secret.KeyFile); err != nil {
			t.Fatal(err)
		}
		k, err := crypto.CreateKeyring(dir+".ring", secret)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k, err := crypto.OpenKeyring(dir+".ring", secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func open(t *testing.T, dir string) (*Store, *[]Event) {
	t.Helper()
	return openWith(t, dir, nil)
}

// openWith is open with options set by set (if not nil).
func openWith(t *testing.T, dir string, set func(*Options)) (*Store, *[]Event) {
	t.Helper()
	var mu sync.Mutex
	evs := &[]Event{}
	opts := Options{Dir: dir, Keyring: testRing(t, dir), OnCommit: func(e []Event) {
		mu.Lock()
		*evs = append(*evs, e...)
		mu.Unlock()
	}}
	if set != nil {
		set(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, evs
}

func hdr(from string, to []telegram.Address, p telegram.Precedence, ref string) telegram.Header {
	return telegram.Header{From: telegram.Address(from), To: to, Precedence: p, Classification: telegram.Secret, Ref: ref, Subject: "s"}
}

// Durability is not Badger's default: the store must run with synchronous
// writes and checksum verification on tables, blocks and values.
func TestDurableSettings(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	o := s.DB().Opts()
	if !o.SyncWrites {
		t.Error("SyncWrites is off: ACCEPTED would not mean on disk")
	}
	if o.ChecksumVerificationMode != options.OnBlockRead { // whole tables: tables.go and the scrub
		t.Errorf("ChecksumVerificationMode = %v, want OnBlockRead", o.ChecksumVerificationMode)
	}
	if !o.VerifyValueChecksum {
		t.Error("VerifyValueChecksum is off: a corrupted value-log entry would be read silently")
	}
	if len(o.EncryptionKey) != 0 {
		t.Error("Badger's encryption is on: its compaction then holds encrypted copies of every table it builds, past the memory bound (see doc.go)")
	}
}

// A filing writes header, body, one queue entry and one delivery state per
// addressee, and its audit records, and announces one event per addressee.
func TestFileWritesEverythingOnce(t *testing.T) {
	s, evs := open(t, t.TempDir())
	defer s.Close()
	body := bytes.Repeat([]byte("b"), 3*ChunkSize+5)
	res, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND", "NA.TU"}, telegram.Flash, ""), Body: body, Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Header(res.ID)
	if err != nil || h.BodyLen != int64(len(body)) || h.FiledAt.IsZero() || h.ID != res.ID {
		t.Fatalf("header %+v %v", h, err)
	}
	var got bytes.Buffer
	if err := writeBody(s, h, &got); err != nil || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("body round trip: %d bytes, %v", got.Len(), err)
	}
	for _, a := range []telegram.Address{"NA.UBND", "NA.TU"} {
		e, err := s.ScanQueue(SubQueue{Agency: a, Prec: telegram.Flash, Class: telegram.Secret}, 0, 10)
		if err != nil || len(e) != 1 || e[0].ID != res.ID {
			t.Errorf("%s queue: %+v %v", a, e, err)
		}
	}
	if len(*evs) != 2 {
		t.Errorf("%d events, want 2", len(*evs))
	}
	audit, _ := s.Audit(0, 100)
	var events []string
	for _, e := range audit {
		events = append(events, e.Event)
	}
	if fmt.Sprint(events) != "[filed queued queued]" {
		t.Errorf("audit events %v", events)
	}
}

func TestRefIsIdempotentEvenWithinOneCommit(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	const n = 50
	ids := make([]telegram.ID, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, "REF-1"), Body: []byte("x")})
			if err != nil {
				t.Error(err)
			}
			ids[i] = r.ID
		}(i)
	}
	wg.Wait()
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("filing %d got ID %s, filing 0 got %s", i, ids[i], ids[0])
		}
	}
	e, _ := s.ScanQueue(SubQueue{Agency: "NA.TU", Prec: telegram.Routine, Class: telegram.Secret}, 0, 100)
	if len(e) != 1 {
		t.Fatalf("%d queue entries, want 1", len(e))
	}
}

// Acknowledging removes the entry, queues exactly one report for the
// sender, persists the head, and deletes the body once all addressees have
// it. A repeated acknowledgement changes nothing.
func TestAck(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	res, _ := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND", "NA.TU"}, telegram.Priority, ""), Body: []byte("body")})
	q1 := SubQueue{Agency: "NA.UBND", Prec: telegram.Priority, Class: telegram.Secret}
	e1, _ := s.ScanQueue(q1, 0, 1)
	done, err := s.Ack(Ack{Queue: q1, Seq: e1[0].Seq, ID: res.ID, Terminal: "NA.UBND/t", Head: e1[0].Seq + 1})
	if err != nil || !done {
		t.Fatalf("ack: %v %v", done, err)
	}
	if done, _ := s.Ack(Ack{Queue: q1, Seq: e1[0].Seq, ID: res.ID, Terminal: "NA.UBND/t"}); done {
		t.Fatal("a repeated acknowledgement reported done")
	}
	if h := queueHead(s, q1); h != e1[0].Seq+1 {
		t.Errorf("head %d, want %d", h, e1[0].Seq+1)
	}
	if e, _ := s.ScanQueue(q1, 0, 10); len(e) != 0 {
		t.Errorf("queue still holds %d", len(e))
	}
	r, _ := s.ScanReceipts("HN.UBND", 0, 10)
	if len(r) != 1 || r[0].Receipt.Status != telegram.Delivered || r[0].Receipt.Addressee != "NA.UBND" {
		t.Fatalf("receipts %+v", r)
	}
	h, _ := s.Header(res.ID)
	var b bytes.Buffer
	if err := writeBody(s, h, &b); err != nil {
		t.Fatalf("body gone while NA.TU still waits: %v", err)
	}
	q2 := SubQueue{Agency: "NA.TU", Prec: telegram.Priority, Class: telegram.Secret}
	e2, _ := s.ScanQueue(q2, 0, 1)
	if _, err := s.Ack(Ack{Queue: q2, Seq: e2[0].Seq, ID: res.ID, Terminal: "NA.TU/t"}); err != nil {
		t.Fatal(err)
	}
	// Settled: the body stays in the journal (journal_test.go).
	if err := writeBody(s, h, &b); err != nil {
		t.Errorf("body gone from the journal once settled: %v", err)
	}
	if d, _ := s.Delivery(res.ID, "NA.TU"); d.Status != telegram.Delivered || d.Terminal != "NA.TU/t" {
		t.Errorf("delivery state %+v", d)
	}
	if ok, err := s.AckReceipt("HN.UBND", r[0].Seq, "HN.UBND/t", r[0].Seq+1); !ok || err != nil {
		t.Fatalf("receipt ack: %v %v", ok, err)
	}
	if r, _ := s.ScanReceipts("HN.UBND", 0, 10); len(r) != 1 {
		t.Errorf("after one report acknowledged, %d remain; want 1", len(r))
	}
}

// Counters survive a reopen, so sequences and audit entries never repeat.
func TestReopenKeepsCounters(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""), Body: []byte("x")})
	before := s.st
	s.Close()
	s, _ = open(t, dir)
	defer s.Close()
	if s.st != before {
		t.Fatalf("counters after reopen %+v, before %+v", s.st, before)
	}
	s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""), Body: []byte("y")})
	e, _ := s.ScanQueue(SubQueue{Agency: "NA.TU", Prec: telegram.Routine, Class: telegram.Secret}, 0, 10)
	if len(e) != 2 || e[0].Seq >= e[1].Seq {
		t.Fatalf("entries %+v", e)
	}
	a, _ := s.Audit(0, 100)
	for i := 1; i < len(a); i++ {
		if a[i].Index != a[i-1].Index+1 {
			t.Fatalf("audit sequence jumps from %d to %d", a[i-1].Index, a[i].Index)
		}
	}
}

// A batch that does not fit one Badger transaction is split; each filing
// still commits whole.
func TestOversizeBatchIsSplit(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	// 64 addressees make about 200 entries per filing; a batch of 1,024 of
	// them exceeds Badger's per-transaction limits.
	const n, addressees = 2000, 64
	to := make([]telegram.Address, 0, addressees)
	for j := 0; j < addressees; j++ {
		to = append(to, telegram.Address(fmt.Sprintf("A.B%d", j)))
	}
	fs := make([]*Filing, n)
	for i := range fs {
		fs[i] = &Filing{Header: hdr("HN.UBND", to, telegram.Routine, ""), Body: make([]byte, 100)}
	}
	// Hold the commit loop until every filing is queued, so that it takes
	// full batches whatever the scheduler does.
	release, holding := make(chan struct{}), make(chan struct{})
	s.submitAsync(&op{apply: func(*commitCtx) error { close(holding); <-release; return nil }})
	<-holding // the loop is inside the blocker's commit: nothing else is taken until release
	done := make(chan []error, 1)
	go func() { _, errs := s.FileBatch(fs); done <- errs }()
	for len(s.ops) < n {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for _, err := range <-done {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.splits.Load() == 0 {
		t.Fatal("no batch was split: the test did not exercise the split")
	}
	total := 0
	for _, a := range to {
		e, _ := s.ScanQueue(SubQueue{Agency: a, Prec: telegram.Routine, Class: telegram.Secret}, 0, 10000)
		total += len(e)
	}
	if total != n*addressees {
		t.Fatalf("%d queue entries, want %d", total, n*addressees)
	}
	// The audit tree survived the discarded transactions: it matches the
	// leaves, recomputed independently.
	if got := checkLog(t, s); got != n*(1+addressees) {
		t.Fatalf("%d audit entries, want %d", got, n*(1+addressees))
	}
}

// Due pages through deadlines with a cursor, so entries left in the index
// are not returned again in the same pass.
func TestDuePaging(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	var want []telegram.ID
	for i := 0; i < 7; i++ {
		h := hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, "")
		h.ExpiresAt = time.Now().Add(time.Duration(i) * time.Millisecond)
		r, err := s.File(&Filing{Header: h, Body: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.ID)
	}
	var got []telegram.ID
	var cursor []byte
	for {
		ids, next, err := s.Due(DueExpiry, time.Now().Add(time.Second), cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids...)
		if len(ids) < 3 {
			break
		}
		cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
	if ids, _, _ := s.Due(DueExpiry, time.Now().Add(-time.Hour), nil, 10); len(ids) != 0 {
		t.Fatalf("%d due an hour ago, want 0", len(ids))
	}
}

// writeBody copies the body of telegram h to w, a chunk at a time.
func writeBody(s *Store, h telegram.Header, w io.Writer) error {
	b := s.Body(h)
	for {
		chunk, err := b.Next()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
}

// queueHead is the persisted head of sub-queue q.
func queueHead(s *Store, q SubQueue) uint64 {
	heads, _, _ := s.Heads(q.Agency)
	return heads[q.Prec.Rank()][q.Class-1]
}

// A crash between Badger creating a write-ahead or value-log file and
// sizing it leaves an empty file, which Badger v4.9.6 refuses to open
// (dgraph-io/badger#2207; met in the crash loop). The store opens anyway,
// with everything committed before.
func TestOpensAfterCrashLeftEmptyLogFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	r, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Flash, ""), Body: []byte("kept")})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, name := range []string{"99999.mem", "099999.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, _ = open(t, dir)
	defer s.Close()
	if h, err := s.Header(r.ID); err != nil || h.ID != r.ID {
		t.Fatalf("after reopening: %v", err)
	}
}

// Stored body chunks are padded to a power of two (from 256 bytes), so
// the disk shows a body's size only to that: bodies of 300, 400 and 500
// bytes take equal stored values; each reads back exact.
func TestBodySizesPadded(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	var ids []telegram.ID
	for _, n := range []int{300, 400, 500, 70000} {
		body := bytes.Repeat([]byte{'x'}, n)
		res, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""), Body: body, Actor: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
		h, err := s.Header(res.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		b := s.Body(h)
		for {
			chunk, err := b.Next()
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, chunk...)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("a body of %d bytes read back as %d", n, len(got))
		}
	}
	stored := func(id telegram.ID, chunk uint32) int {
		var n int
		s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(s.BodyKey(id, chunk))
			if err != nil {
				t.Fatal(err)
			}
			n = int(item.ValueSize())
			return nil
		})
		return n
	}
	if a, b, c := stored(ids[0], 0), stored(ids[1], 0), stored(ids[2], 0); a != b || b != c {
		t.Fatalf("stored sizes of 300, 400 and 500-byte bodies: %d, %d, %d; want equal", a, b, c)
	}
	// 300 bytes pad to 512; the 4,464 bytes past the first chunk of
	// 70,000 to 8,192: the sealing overhead is the same for both.
	if last, small := stored(ids[3], 1), stored(ids[0], 0); last-small != 8192-512 {
		t.Fatalf("the last chunk of a 70,000-byte body is stored in %d bytes, a 300-byte body in %d: want 8 KiB and 512 B plus the same overhead", last, small)
	}
}

// Acknowledgements taken together are recorded in order, each on its own:
// one already recorded changes nothing and reports false, the others are
// delivered, and one delivery report each is queued for the sender.
func TestAckAll(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	q := SubQueue{Agency: "NA.TU", Prec: telegram.Routine, Class: telegram.Secret}
	for range 3 {
		if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""), Body: []byte("b")}); err != nil {
			t.Fatal(err)
		}
	}
	es := mustScan(t, s, q)
	if len(es) != 3 {
		t.Fatalf("%d queued, want 3", len(es))
	}
	ack := func(e Entry) Ack { return Ack{Queue: q, Seq: e.Seq, ID: e.ID, Terminal: "t", Head: e.Seq + 1} }
	if done, err := s.Ack(ack(es[1])); !done || err != nil {
		t.Fatalf("first ack: %v %v", done, err)
	}
	res := s.AckAll([]Ack{ack(es[0]), ack(es[1]), ack(es[2])})
	if len(res) != 3 || !res[0].Done || res[1].Done || !res[2].Done || res[0].Err != nil || res[1].Err != nil || res[2].Err != nil {
		t.Fatalf("AckAll: %+v, want done, not done (already), done", res)
	}
	if left := mustScan(t, s, q); len(left) != 0 {
		t.Fatalf("%d left in the queue", len(left))
	}
	if rs, err := s.ScanReceipts("HN.UBND", 0, 10); err != nil || len(rs) != 3 {
		t.Fatalf("%d delivery reports (%v), want 3", len(rs), err)
	}
	ras := s.AckReceipts("HN.UBND", []ReceiptAck{{Seq: 1}, {Seq: 2}, {Seq: 99}}, "t2")
	if !ras[0].Done || !ras[1].Done || ras[2].Done {
		t.Fatalf("AckReceipts: %+v, want done, done, not done (never queued)", ras)
	}
	if rs, _ := s.ScanReceipts("HN.UBND", 0, 10); len(rs) != 1 || rs[0].Seq != 3 {
		t.Fatalf("reports left: %+v, want the third", rs)
	}
}
