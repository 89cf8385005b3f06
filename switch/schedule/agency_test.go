package schedule

import (
	"sort"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// memQueue is an in-memory loader for the scheduler's own unit tests.
type memQueue struct {
	items map[[2]uint8][]Item // (prec, class) → items by seq
	reads int
}

func (m *memQueue) add(seq uint64, p telegram.Precedence, c telegram.Classification) {
	if m.items == nil {
		m.items = map[[2]uint8][]Item{}
	}
	k := [2]uint8{uint8(p), uint8(c)}
	m.items[k] = append(m.items[k], Item{Seq: seq})
}

func (m *memQueue) remove(it Item) {
	k := [2]uint8{uint8(it.Prec), uint8(it.Class)}
	l := m.items[k]
	for i := range l {
		if l[i].Seq == it.Seq {
			m.items[k] = append(l[:i], l[i+1:]...)
			return
		}
	}
}

func (m *memQueue) load(p telegram.Precedence, c telegram.Classification, from uint64, limit int) ([]Item, error) {
	m.reads++
	l := m.items[[2]uint8{uint8(p), uint8(c)}]
	i := sort.Search(len(l), func(i int) bool { return l[i].Seq >= from })
	out := append([]Item(nil), l[i:min(len(l), i+limit)]...)
	return out, nil
}

func none(telegram.Precedence) int { return 0 }

// drain hands out everything for a terminal that acknowledges each item
// at once, and returns the sequences in the order handed out.
func drain(t *testing.T, a *Agency, q *memQueue, clearance telegram.Classification) []uint64 {
	t.Helper()
	var out []uint64
	for {
		it, res, err := a.Next(clearance, none, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res != Got {
			if res != Empty {
				t.Fatalf("Next = %v with nothing in flight", res)
			}
			return out
		}
		out = append(out, it.Seq)
		q.remove(it)
		a.Acked(it)
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPrecedenceThenFilingOrder(t *testing.T) {
	q := &memQueue{}
	// seq, precedence, classification: filing order is seq order.
	q.add(1, telegram.Routine, telegram.Unclassified)
	q.add(2, telegram.Flash, telegram.Secret)
	q.add(3, telegram.Routine, telegram.Confidential)
	q.add(4, telegram.Immediate, telegram.Unclassified)
	q.add(5, telegram.Flash, telegram.Unclassified)
	q.add(6, telegram.Priority, telegram.TopSecret)
	q.add(7, telegram.Routine, telegram.Unclassified)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	got := drain(t, a, q, telegram.TopSecret)
	want := []uint64{2, 5, 4, 6, 1, 3, 7}
	if !equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestClearanceFiltersWithoutBlocking(t *testing.T) {
	q := &memQueue{}
	q.add(1, telegram.Flash, telegram.Secret) // above an UNCLASSIFIED terminal
	q.add(2, telegram.Routine, telegram.Unclassified)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	if got := drain(t, a, q, telegram.Unclassified); !equal(got, []uint64{2}) {
		t.Fatalf("uncleared terminal got %v, want [2]", got)
	}
	if got := drain(t, a, q, telegram.Secret); !equal(got, []uint64{1}) {
		t.Fatalf("cleared terminal got %v, want [1]", got)
	}
}

func TestHigherInFlightHoldsLower(t *testing.T) {
	q := &memQueue{}
	q.add(1, telegram.Flash, telegram.Unclassified)
	q.add(2, telegram.Routine, telegram.Unclassified)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	inflight := map[telegram.Precedence]int{}
	count := func(p telegram.Precedence) int { return inflight[p] }
	it, res, _ := a.Next(telegram.TopSecret, count, 4)
	if res != Got || it.Seq != 1 {
		t.Fatalf("first Next = %v %v", it.Seq, res)
	}
	inflight[telegram.Flash]++
	if _, res, _ := a.Next(telegram.TopSecret, count, 4); res != Blocked {
		t.Fatalf("with a FLASH in flight, Next = %v, want Blocked", res)
	}
	a.Acked(it)
	inflight[telegram.Flash]--
	if it, res, _ := a.Next(telegram.TopSecret, count, 4); res != Got || it.Seq != 2 {
		t.Fatalf("after the FLASH ack, Next = %v %v, want ROUTINE 2", it.Seq, res)
	}
}

func TestFlashPreemptsRoutineInFlight(t *testing.T) {
	q := &memQueue{}
	for s := uint64(1); s <= 3; s++ {
		q.add(s, telegram.Routine, telegram.Unclassified)
	}
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	inflight := map[telegram.Precedence]int{}
	count := func(p telegram.Precedence) int { return inflight[p] }
	for i := 0; i < 2; i++ {
		if _, res, _ := a.Next(telegram.TopSecret, count, 2); res != Got {
			t.Fatal("ROUTINE not handed out")
		}
		inflight[telegram.Routine]++
	}
	if _, res, _ := a.Next(telegram.TopSecret, count, 2); res != Blocked {
		t.Fatalf("ROUTINE window full: Next = %v, want Blocked", res)
	}
	q.add(4, telegram.Flash, telegram.Unclassified)
	a.Notify(Item{Seq: 4, Prec: telegram.Flash, Class: telegram.Unclassified})
	if it, res, _ := a.Next(telegram.TopSecret, count, 2); res != Got || it.Prec != telegram.Flash {
		t.Fatalf("FLASH during ROUTINE transfers: Next = %+v %v, want the FLASH", it, res)
	}
}

func TestFullWindowNeverFallsToLower(t *testing.T) {
	q := &memQueue{}
	q.add(1, telegram.Flash, telegram.Unclassified)
	q.add(2, telegram.Flash, telegram.Unclassified)
	q.add(3, telegram.Routine, telegram.Unclassified)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	n := 0
	count := func(p telegram.Precedence) int {
		if p == telegram.Flash {
			return n
		}
		return 0
	}
	if _, res, _ := a.Next(telegram.TopSecret, count, 1); res != Got {
		t.Fatal("first FLASH not handed out")
	}
	n = 1
	if it, res, _ := a.Next(telegram.TopSecret, count, 1); res != Blocked {
		t.Fatalf("FLASH waiting with full window: Next = %+v %v, want Blocked (never the ROUTINE)", it, res)
	}
}

func TestReturnMarksDuplicateAndRestoresOrder(t *testing.T) {
	q := &memQueue{}
	for s := uint64(1); s <= 3; s++ {
		q.add(s, telegram.Priority, telegram.Unclassified)
	}
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	first, _, _ := a.Next(telegram.TopSecret, none, 10)
	second, _, _ := a.Next(telegram.TopSecret, none, 10)
	a.Return([]Item{second, first})
	var got []Item
	for {
		it, res, _ := a.Next(telegram.TopSecret, none, 10)
		if res != Got {
			break
		}
		got = append(got, it)
	}
	if len(got) != 3 || got[0].Seq != 1 || got[1].Seq != 2 || got[2].Seq != 3 {
		t.Fatalf("after Return got %+v, want seqs 1,2,3", got)
	}
	if !got[0].Dup || !got[1].Dup || got[2].Dup {
		t.Fatalf("duplicate flags %v %v %v, want true true false", got[0].Dup, got[1].Dup, got[2].Dup)
	}
}

func TestHeadAfterAck(t *testing.T) {
	q := &memQueue{}
	for s := uint64(10); s <= 12; s++ {
		q.add(s, telegram.Routine, telegram.Unclassified)
	}
	heads := [4][4]uint64{}
	heads[telegram.Routine.Rank()][0] = 10
	a := NewAgency(q.load, heads, 0)
	i10, _, _ := a.Next(telegram.TopSecret, none, 10)
	i11, _, _ := a.Next(telegram.TopSecret, none, 10)
	if h := a.HeadsAfterAcks([]Item{i11})[0]; h != 10 {
		t.Errorf("acking 11 with 10 in flight: head %d, want 10", h)
	}
	if h := a.HeadsAfterAcks([]Item{i10})[0]; h != 11 {
		t.Errorf("acking 10 with 11 in flight: head %d, want 11", h)
	}
	// Acknowledged in one frame, each passes over the other.
	if h := a.HeadsAfterAcks([]Item{i11, i10}); h[0] != 12 || h[1] != 12 {
		t.Errorf("acking 11 and 10 together: heads %v, want [12 12]", h)
	}
	a.Acked(i10)
	a.Acked(i11)
	if h := a.HeadsAfterAcks([]Item{{Seq: 99, Prec: telegram.Routine, Class: telegram.Unclassified}})[0]; h != 12 {
		t.Errorf("with 12 buffered: head %d, want 12", h)
	}
}

// A head from disk means reads start there, not at the queue's start.
func TestReadsStartAtHead(t *testing.T) {
	q := &memQueue{}
	q.add(500, telegram.Routine, telegram.Unclassified)
	heads := [4][4]uint64{}
	heads[telegram.Routine.Rank()][0] = 500
	var froms []uint64
	load := func(p telegram.Precedence, c telegram.Classification, from uint64, limit int) ([]Item, error) {
		if p == telegram.Routine && c == telegram.Unclassified {
			froms = append(froms, from)
		}
		return q.load(p, c, from, limit)
	}
	a := NewAgency(load, heads, 0)
	if it, res, _ := a.Next(telegram.TopSecret, none, 1); res != Got || it.Seq != 500 {
		t.Fatalf("Next = %v %v", it.Seq, res)
	}
	if len(froms) == 0 || froms[0] != 500 {
		t.Fatalf("first read from %v, want 500", froms)
	}
}

// Memory is bounded: a sub-queue never buffers more than ReadAhead.
func TestReadAheadBound(t *testing.T) {
	q := &memQueue{}
	for s := uint64(1); s <= 10*ReadAhead; s++ {
		q.add(s, telegram.Routine, telegram.Unclassified)
	}
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	a.Next(telegram.TopSecret, none, 1)
	s := a.subs[telegram.Routine.Rank()][0]
	if len(s.buf) > ReadAhead {
		t.Fatalf("buffered %d entries, bound %d", len(s.buf), ReadAhead)
	}
}

func TestReceiptsFIFO(t *testing.T) {
	var rq []Item
	for s := uint64(1); s <= 3; s++ {
		rq = append(rq, Item{Seq: s})
	}
	load := func(p telegram.Precedence, c telegram.Classification, from uint64, limit int) ([]Item, error) {
		if p != 0 {
			return nil, nil
		}
		var out []Item
		for _, it := range rq {
			if it.Seq >= from && len(out) < limit {
				out = append(out, it)
			}
		}
		return out, nil
	}
	a := NewAgency(load, [4][4]uint64{}, 0)
	for want := uint64(1); want <= 3; want++ {
		it, ok, _ := a.NextReceipt()
		if !ok || it.Seq != want {
			t.Fatalf("receipt %d: got %v %v", want, it.Seq, ok)
		}
	}
	if _, ok, _ := a.NextReceipt(); ok {
		t.Fatal("a fourth receipt was handed out")
	}
}

func TestHoldsReturned(t *testing.T) {
	q := &memQueue{}
	q.add(1, telegram.Flash, telegram.Unclassified)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	it, _, _ := a.Next(telegram.TopSecret, none, 1)
	if a.HoldsReturned() {
		t.Fatal("nothing returned yet")
	}
	a.Return([]Item{it})
	if !a.HoldsReturned() {
		t.Fatal("a returned item is not reported")
	}
	it, _, _ = a.Next(telegram.TopSecret, none, 1)
	a.Acked(it)
	if a.HoldsReturned() {
		t.Fatal("still reported after the acknowledgement")
	}
}

func TestInFlightAndDrop(t *testing.T) {
	q := &memQueue{}
	q.add(1, telegram.Priority, telegram.Secret)
	q.add(2, telegram.Priority, telegram.Secret)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	it, _, _ := a.Next(telegram.TopSecret, none, 10)
	if !a.InFlight(telegram.Priority, telegram.Secret, it.Seq) || a.InFlight(telegram.Priority, telegram.Secret, 2) {
		t.Fatal("InFlight wrong")
	}
	a.Drop(telegram.Priority, telegram.Secret, 2)
	if _, res, _ := a.Next(telegram.TopSecret, none, 10); res != Empty {
		t.Fatalf("a dropped entry was handed out (%v)", res)
	}
}

// An entry an operator puts back below the read cursor (held, then
// released) goes out again, in its sequence order, once.
func TestReinsertBelowCursor(t *testing.T) {
	q := &memQueue{}
	for seq := uint64(1); seq <= 5; seq++ {
		q.add(seq, telegram.Routine, telegram.Secret)
	}
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	// Seq 2 is held: gone from the store, dropped from the buffer.
	first, _, _ := a.Next(telegram.Secret, none, 1)
	q.remove(first)
	a.Acked(first)
	q.remove(Item{Seq: 2, Prec: telegram.Routine, Class: telegram.Secret})
	a.Drop(telegram.Routine, telegram.Secret, 2)
	if got := drain(t, a, q, telegram.Secret); len(got) != 3 || got[0] != 3 {
		t.Fatalf("after the hold: %v, want [3 4 5]", got)
	}
	// Released: back in the store at 2, below the cursor.
	q.add(2, telegram.Routine, telegram.Secret)
	it := Item{Seq: 2, Prec: telegram.Routine, Class: telegram.Secret}
	a.Reinsert(it)
	a.Reinsert(it) // twice: still once
	if got := drain(t, a, q, telegram.Secret); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after the release: %v, want [2]", got)
	}
}

// A committed entry is buffered from its notification when the sub-queue
// was read to its end: no second read of storage. When it was not (the
// read-ahead is full), the entry is read from the cursor, in order.
func TestNotifyBuffersWithoutReading(t *testing.T) {
	q := &memQueue{}
	q.add(1, telegram.Routine, telegram.Secret)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	if it, res, _ := a.Next(telegram.TopSecret, none, 100); res != Got || it.Seq != 1 {
		t.Fatalf("Next = %+v %v, want seq 1", it, res)
	}
	reads := q.reads
	for seq := uint64(2); seq <= 4; seq++ {
		q.add(seq, telegram.Routine, telegram.Secret)
		a.Notify(Item{Seq: seq, Prec: telegram.Routine, Class: telegram.Secret})
	}
	for seq := uint64(2); seq <= 4; seq++ {
		if it, res, _ := a.Next(telegram.TopSecret, none, 100); res != Got || it.Seq != seq || it.Prec != telegram.Routine {
			t.Fatalf("Next = %+v %v, want seq %d", it, res, seq)
		}
	}
	if q.reads != reads {
		t.Errorf("%d reads of storage for notified entries, want none", q.reads-reads)
	}
	// Fill beyond the read-ahead: the rest must come from storage.
	for seq := uint64(5); seq < 5+ReadAhead+3; seq++ {
		q.add(seq, telegram.Routine, telegram.Secret)
		a.Notify(Item{Seq: seq, Prec: telegram.Routine, Class: telegram.Secret})
	}
	for seq := uint64(5); seq < 5+ReadAhead+3; seq++ {
		if it, res, _ := a.Next(telegram.TopSecret, none, 1000); res != Got || it.Seq != seq {
			t.Fatalf("Next = %+v %v, want seq %d", it, res, seq)
		}
	}
	if _, res, _ := a.Next(telegram.TopSecret, none, 1000); res != Empty {
		t.Fatalf("Next = %v, want Empty", res)
	}
	if q.reads == reads {
		t.Error("entries past the read-ahead were not read from storage")
	}
}

// A mask leaves the precedences outside it alone: neither handed out nor
// holding back the others (a link carries only what is routed over it).
func TestMaskedPrecedencesNeitherGoNorBlock(t *testing.T) {
	q := &memQueue{}
	q.add(1, telegram.Flash, telegram.Unclassified)
	q.add(2, telegram.Routine, telegram.Unclassified)
	q.add(3, telegram.Immediate, telegram.Unclassified)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	routineOnly := uint8(1) << telegram.Routine.Rank()
	it, res, err := a.NextOf(telegram.TopSecret, routineOnly, none, 4)
	if err != nil || res != Got || it.Seq != 2 {
		t.Fatalf("ROUTINE only: %v %v %v; want 2 although a FLASH and an IMMEDIATE wait", it.Seq, res, err)
	}
	if _, res, _ := a.NextOf(telegram.TopSecret, routineOnly, none, 4); res != Empty {
		t.Fatalf("ROUTINE only, nothing more: %v, want Empty", res)
	}
	if it, res, _ := a.Next(telegram.TopSecret, none, 4); res != Got || it.Seq != 1 {
		t.Fatalf("unmasked: %v %v, want the FLASH", it.Seq, res)
	}
}
