package auditlog

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The indexes are one record per commit per telegram and per agency; a
// query by agency over any range, in either direction, and a telegram's
// entries, read exactly the entries that name them, also across records
// and from the one-key-per-entry form written before.
func TestIndexRecords(t *testing.T) {
	tx := memTxn{}
	l, _ := NewKey(tx, "dienbao/test", meta, tags)
	a, b := telegram.ID{1}, telegram.ID{2}
	var wantNA, wantA []uint64
	// Entries 0-3: the form written before, one empty key per entry.
	for i := uint64(0); i < 4; i++ {
		e := audit.Entry{Index: i, Event: audit.Attempt, Actor: "x", From: "HN.UBND", To: "NA.TU"}
		leaf, _ := audit.Leaf(e)
		tx.Set(LeafKey(i), leaf)
		tx.Set(binary.BigEndian.AppendUint64(tags.agencyPrefix("NA.TU"), i), nil)
		wantNA = append(wantNA, i)
	}
	// Then 96 entries in commits of 1 to 9.
	size := uint64(4)
	for c := 1; size < 100; c = c%9 + 1 {
		for j := 0; j < c && size < 100; j++ {
			e := audit.Entry{Index: size, Event: audit.Attempt, Actor: "x", From: "HN.UBND"}
			if size%3 == 0 {
				e.To = "NA.TU"
				wantNA = append(wantNA, size)
			}
			e.ID = b
			if size%5 == 0 {
				e.ID = a
				wantA = append(wantA, size)
			}
			if err := l.Append(tx, e); err != nil {
				t.Fatal(err)
			}
			size++
		}
		if err := l.Flush(tx); err != nil {
			t.Fatal(err)
		}
	}
	records := len(tx.sorted(tags.agencyPrefix("NA.TU")))
	if records >= len(wantNA) {
		t.Fatalf("%d index records for %d entries naming NA.TU: not one per commit", records, len(wantNA))
	}
	for lo := uint64(0); lo < 100; lo += 7 {
		for hi := lo + 1; hi <= 100; hi += 11 {
			for _, newest := range []bool{false, true} {
				var got []uint64
				err := walkIndex(tx, tags.agencyPrefix("NA.TU"), lo, hi, newest, func(i uint64) (bool, error) {
					got = append(got, i)
					return true, nil
				})
				var want []uint64
				for _, i := range wantNA {
					if i >= lo && i < hi {
						want = append(want, i)
					}
				}
				if newest {
					slices.Reverse(want)
				}
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("NA.TU in [%d, %d) newest %v: %v (%v), want %v", lo, hi, newest, got, err, want)
				}
			}
		}
	}
	got, err := l.EntriesOf(tx, a)
	if err != nil || !slices.Equal(got, wantA) {
		t.Fatalf("entries of a: %v (%v), want %v", got, err, wantA)
	}
	es, err := l.Select(tx, size, Query{ID: a, Newest: true, Limit: 3})
	if err != nil || len(es) != 3 || es[0].Index != wantA[len(wantA)-1] {
		t.Fatalf("newest 3 of a: %+v %v", es, err)
	}
}
