package switchboard

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/telegram"
)

// board opens a real store in a temporary folder with a switchboard over
// it, as the server wires them.
func board(t *testing.T) (*Board, *store.Store) {
	t.Helper()
	var b *Board
	var mu sync.Mutex
	st, err := store.Open(store.Options{Dir: t.TempDir(), OnCommit: func(evs []store.Event) {
		mu.Lock()
		bb := b
		mu.Unlock()
		if bb != nil {
			bb.OnCommit(evs)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mu.Lock()
	b = New(st, Config{Window: 4, MaxTerminals: 2, MaxAttempts: 3, AckTimeout: time.Minute})
	mu.Unlock()
	return b, st
}

func file(t *testing.T, st *store.Store, to telegram.Address, p telegram.Precedence) telegram.ID {
	t.Helper()
	res, err := st.File(&store.Filing{Header: telegram.Header{From: "HN.UBND", To: []telegram.Address{to}, Precedence: p,
		Classification: telegram.Unclassified}, Body: []byte("x"), Actor: "HN.UBND/t1"})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

var terminal = certs.Identity{Role: certs.Terminal, Agency: "NA.TU", Name: "NA.TU terminal 1", Clearance: telegram.Secret}

func next(t *testing.T, s *Seat) schedule.Item {
	t.Helper()
	it, res, err := s.NextTelegram()
	if err != nil || res != Got {
		t.Fatalf("NextTelegram = %v, %v", res, err)
	}
	return it
}

// A hand-out goes out most urgent first, tagged; its acknowledgement
// settles it and frees its slot; an unknown tag is refused.
func TestHandOutAndAck(t *testing.T) {
	b, st := board(t)
	routine := file(t, st, "NA.TU", telegram.Routine)
	flash := file(t, st, "NA.TU", telegram.Flash)
	seat, err := b.Attach(terminal, true, false, func() {})
	if err != nil {
		t.Fatal(err)
	}
	it := next(t, seat)
	if it.ID != flash || it.Tag == 0 {
		t.Fatalf("first hand-out %s (tag %d), want the FLASH %s", it.ID, it.Tag, flash)
	}
	d, err := seat.Prepare(it)
	if err != nil || d.Header.ID != flash || d.PossibleDuplicate {
		t.Fatalf("Prepare = %+v, %v", d, err)
	}
	seat.Written(it.Tag)
	// ROUTINE waits while the FLASH is in flight.
	if _, res, _ := seat.NextTelegram(); res != Blocked {
		t.Fatalf("with a FLASH in flight: %v, want blocked", res)
	}
	if err := seat.AckAll([]uint64{it.Tag + 100}, Rank(it)); !errors.Is(err, ErrUnknownTag) {
		t.Fatalf("unknown tag: %v", err)
	}
	if err := seat.AckAll([]uint64{it.Tag}, ReceiptRank); !errors.Is(err, ErrUnknownTag) {
		t.Fatalf("a telegram's tag acknowledged on the receipt stream: %v", err)
	}
	if err := seat.AckAll([]uint64{it.Tag}, Rank(it)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return seat.InFlight() == 0 })
	if ds, _ := st.Delivery(flash, "NA.TU"); ds.Status != telegram.Delivered {
		t.Fatalf("FLASH delivery state %+v", ds)
	}
	if it := next(t, seat); it.ID != routine {
		t.Fatalf("second hand-out %s, want the ROUTINE %s", it.ID, routine)
	}
}

// A hold takes out what waits and leaves what is in flight; a hand-out
// buffered before the hold is skipped at write time. A seat that closes
// returns its hand-outs, flagged, to the next terminal.
func TestHoldLeavesInFlightAlone(t *testing.T) {
	b, st := board(t)
	inFlight := file(t, st, "NA.TU", telegram.Priority)
	buffered := file(t, st, "NA.TU", telegram.Priority)
	seat, err := b.Attach(terminal, true, false, func() {})
	if err != nil {
		t.Fatal(err)
	}
	first, second := next(t, seat), next(t, seat)
	if first.ID != inFlight || second.ID != buffered {
		t.Fatalf("hand-outs %s, %s", first.ID, second.ID)
	}
	if _, err := seat.Prepare(first); err != nil {
		t.Fatal(err)
	}
	seat.Written(first.Tag)
	// Both are handed out: a hold skips both. Return the second first,
	// as a session whose stream could not open would: now it waits.
	seat.Return(second)
	res, err := b.Hold(buffered, "operator")
	if err != nil || len(res.Done) != 1 {
		t.Fatalf("hold of the waiting one: %+v, %v", res, err)
	}
	res, err = b.Hold(inFlight, "operator")
	if err != nil || len(res.Done) != 0 || len(res.Skipped) != 1 {
		t.Fatalf("hold of the one in flight: %+v, %v; want skipped", res, err)
	}
	if _, res, _ := seat.NextTelegram(); res == Got {
		t.Fatal("a held telegram was handed out")
	}
	seat.Close()
	other, err := b.Attach(terminal, true, false, func() {})
	if err != nil {
		t.Fatal(err)
	}
	it := next(t, other)
	if it.ID != inFlight || !it.Dup {
		t.Fatalf("after the seat closed: %s dup=%v, want %s flagged", it.ID, it.Dup, inFlight)
	}
	d, err := other.Prepare(it)
	if err != nil || !d.PossibleDuplicate {
		t.Fatalf("Prepare = %+v, %v; want a possible duplicate", d, err)
	}
}

// An expired telegram is withdrawn at write time, not written.
func TestExpiredAtWriteTimeIsWithdrawn(t *testing.T) {
	b, st := board(t)
	b.cfg.Expired = func(telegram.Header) bool { return true }
	id := file(t, st, "NA.TU", telegram.Routine)
	seat, _ := b.Attach(terminal, true, false, func() {})
	it := next(t, seat)
	if _, err := seat.Prepare(it); err != ErrWithdrawn {
		t.Fatalf("Prepare = %v, want ErrWithdrawn", err)
	}
	if ds, _ := st.Delivery(id, "NA.TU"); ds.Status != telegram.NotDelivered || ds.Reason != store.ReasonExpired {
		t.Fatalf("delivery state %+v", ds)
	}
	if seat.InFlight() != 0 {
		t.Fatalf("%d in flight after a withdrawal", seat.InFlight())
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// A seat whose session ended while its pump was asking for the next
// hand-out (Close ran between the scheduler's choice and the tag) takes
// nothing: the telegram stays for the agency's other terminal, unflagged
// since it never went out. Before, it stayed in flight to the closed
// seat, and the other terminal was told its queue was empty (the power-cut
// lab's lost telegram in CI).
func TestClosedSeatTakesNothing(t *testing.T) {
	b, st := board(t)
	id := file(t, st, "NA.TU", telegram.Priority)
	closing, err := b.Attach(terminal, true, false, func() {})
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.Attach(terminal, true, false, func() {})
	if err != nil {
		t.Fatal(err)
	}
	closing.Close()
	if it, res, err := closing.NextTelegram(); res == Got || err != nil {
		t.Fatalf("a closed seat was handed %s (%v, %v)", it.ID, res, err)
	}
	if closing.InFlight() != 0 {
		t.Fatalf("a closed seat holds %d hand-outs", closing.InFlight())
	}
	it := next(t, other)
	if it.ID != id || it.Dup {
		t.Fatalf("the other terminal was handed %s dup=%v, want %s unflagged", it.ID, it.Dup, id)
	}
}
