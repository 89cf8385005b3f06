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
