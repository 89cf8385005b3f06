package schedule

import (
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// After a crash, an entry below its sub-queue's suspect bound may have
// been handed out uncounted: it goes out flagged Dup, once or many times.
// Entries at or above the bound, and other sub-queues, are not flagged;
// with no bound (a clean stop) nothing is.
func TestSuspectEntriesAfterACrash(t *testing.T) {
	cases := []struct {
		name  string
		bound uint64 // FLASH/UNCLASSIFIED sub-queue's
		want  map[uint64]bool
	}{
		{"clean stop", 0, map[uint64]bool{10: false, 11: false, 12: false, 20: false}},
		{"crash, bound past everything", 21, map[uint64]bool{10: true, 11: true, 12: true, 20: true}},
		{"crash, bound in the middle", 12, map[uint64]bool{10: true, 11: true, 12: false, 20: false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &memQueue{}
			for _, seq := range []uint64{10, 11, 12, 20} {
				q.add(seq, telegram.Flash, telegram.Unclassified)
			}
			q.add(5, telegram.Routine, telegram.Unclassified)
			var bounds [4][4]uint64
			bounds[telegram.Flash.Rank()][0] = tc.bound
			a := NewAgency(q.load, [4][4]uint64{}, 0)
			a.Recover(bounds)
			for range len(tc.want) + 1 {
				it, res, err := a.Next(telegram.TopSecret, none, 10)
				if err != nil || res != Got {
					t.Fatalf("Next = %v, %v", res, err)
				}
				want := tc.want[it.Seq] // the ROUTINE entry: never
				if it.Dup != want {
					t.Errorf("entry %d: Dup %v, want %v", it.Seq, it.Dup, want)
				}
			}
		})
	}
}

// The first hand-out after a crash of an entry under its bound is marked
// Suspect (its last attempt may have been cut by the crash); once it came
// back unacknowledged in this run, it is a plain redelivery, flagged Dup
// but not Suspect, so the crash is not counted twice.
func TestSuspectOnlyOnTheFirstHandOut(t *testing.T) {
	q := &memQueue{}
	q.add(10, telegram.Flash, telegram.Unclassified)
	var bounds [4][4]uint64
	bounds[telegram.Flash.Rank()][0] = 11
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	a.Recover(bounds)
	first, res, _ := a.Next(telegram.TopSecret, none, 10)
	if res != Got || !first.Dup || !first.Suspect {
		t.Fatalf("first hand-out: %+v %v, want Dup and Suspect", first, res)
	}
	a.Return([]Item{first})
	again, res, _ := a.Next(telegram.TopSecret, none, 10)
	if res != Got || again.Seq != 10 || !again.Dup || again.Suspect {
		t.Fatalf("after coming back: %+v %v, want Dup, not Suspect", again, res)
	}
}

// A hand-out taken back before it went out (Untake: the session ended
// first) leaves the entry as it was: the next hand-out is the first after
// the crash again, Suspect, not a redelivery.
func TestUntakenHandOutIsTheFirstAgain(t *testing.T) {
	q := &memQueue{}
	q.add(10, telegram.Flash, telegram.Unclassified)
	q.add(12, telegram.Flash, telegram.Unclassified)
	var bounds [4][4]uint64
	bounds[telegram.Flash.Rank()][0] = 11
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	a.Recover(bounds)
	for _, want := range []struct {
		seq          uint64
		dup, suspect bool
	}{{10, true, true}, {12, false, false}} {
		first, res, _ := a.Next(telegram.TopSecret, none, 10)
		a.Untake(first)
		again, res2, _ := a.Next(telegram.TopSecret, none, 10)
		if res != Got || res2 != Got || again.Seq != want.seq || again.Dup != want.dup || again.Suspect != want.suspect {
			t.Fatalf("after Untake: %+v %v, want entry %d Dup %v Suspect %v", again, res2, want.seq, want.dup, want.suspect)
		}
		a.Acked(again)
	}
}
