package server

import "testing"

// The body budget's reserve is taken only by FLASH bytes, also in a batch
// that mixes precedences; routine bytes never go past the reserve line.
func TestBudgetReserveIsForFlashBytes(t *testing.T) {
	b := newBudget(8, 2) // routine bytes up to 6
	for _, c := range []struct {
		routine, flash int64
		ok             bool
	}{
		{5, 0, true},  // used 5
		{1, 1, true},  // mixed: its routine byte fits below 6, its FLASH byte in the reserve; used 7
		{1, 0, false}, // a routine byte past the line
		{0, 1, true},  // FLASH into the reserve; used 8
		{0, 1, false}, // full
	} {
		if got := b.take(c.routine, c.flash, 0); got != c.ok {
			t.Fatalf("take(%d routine, %d flash) with %d used = %v, want %v", c.routine, c.flash, b.used, got, c.ok)
		}
	}
}
