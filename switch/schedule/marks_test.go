package schedule

import (
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// After a crash, an entry still queued below both its sub-queue's durable
// hand-out mark and the first sequence of the new run may have been handed
// out uncounted: it goes out flagged Dup. Entries at or above the mark, or
// filed in the new run, are not flagged; after a clean stop (suspectBelow
// zero) nothing is.
func TestSuspectEntriesAfterACrash(t *testing.T) {
	cases := []struct {
		name         string
		mark         uint64 // FLASH/UNCLASSIFIED sub-queue's mark
		suspectBelow uint64
		want         map[uint64]bool // seq → flagged
	}{
		{"clean stop", 12, 0, map[uint64]bool{10: false, 11: false, 12: false, 20: false}},
		{"crash, mark above everything old", 30, 20, map[uint64]bool{10: true, 11: true, 12: true, 20: false}},
		{"crash, mark in the middle", 12, 20, map[uint64]bool{10: true, 11: true, 12: false, 20: false}},
		{"crash, nothing handed out before", 0, 20, map[uint64]bool{10: false, 11: false, 12: false, 20: false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &memQueue{}
			for _, seq := range []uint64{10, 11, 12, 20} {
				q.add(seq, telegram.Flash, telegram.Unclassified)
			}
			var marks [4][4]uint64
			marks[telegram.Flash.Rank()][0] = tc.mark
			a := NewAgency(q.load, [4][4]uint64{}, 0)
			a.Recover(marks, tc.suspectBelow)
			for range tc.want {
				it, res, err := a.Next(telegram.TopSecret, none, 10)
				if err != nil || res != Got {
					t.Fatalf("Next = %v, %v", res, err)
				}
				if it.Dup != tc.want[it.Seq] {
					t.Errorf("entry %d: Dup %v, want %v", it.Seq, it.Dup, tc.want[it.Seq])
				}
			}
		})
	}
}

// No entry is written before it lies below its sub-queue's durable mark:
// MarkFor asks for a mark MarkStep past the entry, and once it is
// reported durable, the entries below it need no further write. Marks only
// go up.
func TestMarksCoverHandOuts(t *testing.T) {
	q := &memQueue{}
	q.add(5, telegram.Routine, telegram.Secret)
	q.add(5+MarkStep, telegram.Routine, telegram.Secret)
	a := NewAgency(q.load, [4][4]uint64{}, 0)
	first, _, _ := a.Next(telegram.TopSecret, none, 10)
	mark, covered := a.MarkFor(first)
	if covered || mark != 5+MarkStep {
		t.Fatalf("MarkFor(5) = %d, %v; want %d, false", mark, covered, 5+MarkStep)
	}
	a.Marked(first.Prec, first.Class, mark)
	if _, covered := a.MarkFor(first); !covered {
		t.Fatal("entry 5 not covered once its mark is durable")
	}
	second, _, _ := a.Next(telegram.TopSecret, none, 10)
	if m, covered := a.MarkFor(second); covered || m != 5+2*MarkStep {
		t.Fatalf("MarkFor(%d) = %d, %v; want %d, false", second.Seq, m, covered, 5+2*MarkStep)
	}
	a.Marked(first.Prec, first.Class, 3) // a late, lower report
	if _, covered := a.MarkFor(first); !covered {
		t.Fatal("a lower mark reported late moved the mark down")
	}
	// Other sub-queues have marks of their own.
	if _, covered := a.MarkFor(Item{Seq: 1, Prec: telegram.Flash, Class: telegram.Secret}); covered {
		t.Fatal("the FLASH sub-queue shares the ROUTINE one's mark")
	}
}
