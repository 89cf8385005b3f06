package store

import (
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// An attempt made after a crash counts the attempt before it as cut by the
// crash: it stays in Attempts but not in Failed, which decides parking.
// Plain attempts count as failed until acknowledged.
func TestAttemptsCutByACrash(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	h := hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, "")
	res, err := s.File(&Filing{Header: h, Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	h.ID = res.ID
	for i, tc := range []struct {
		afterCrash       bool
		attempts, failed int
	}{
		{false, 1, 1},
		{true, 2, 1}, // the first was cut by a crash
		{false, 3, 2},
		{true, 4, 2},
		{true, 5, 2},
	} {
		s.Attempt(h, "NA.TU", "NA.TU/t", tc.afterCrash)
		if err := s.FlushAttempts(); err != nil {
			t.Fatal(err)
		}
		ds, err := s.Delivery(h.ID, "NA.TU")
		if err != nil {
			t.Fatal(err)
		}
		if ds.Attempts != tc.attempts || ds.Failed() != tc.failed {
			t.Fatalf("attempt %d: %d attempts, %d failed; want %d, %d", i, ds.Attempts, ds.Failed(), tc.attempts, tc.failed)
		}
	}
}
