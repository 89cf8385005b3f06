package server

import (
	"testing"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/schedule"
)

// What decides parking: attempts that failed at the addressee's end. A
// hand-out after a crash counts the attempt before it as cut by the crash.
func TestFailedAttempts(t *testing.T) {
	cases := []struct {
		ds      store.DeliveryState
		suspect bool
		want    int
	}{
		{store.DeliveryState{Attempts: 5}, false, 5},
		{store.DeliveryState{Attempts: 5}, true, 4},
		{store.DeliveryState{Attempts: 5, Cut: 2}, false, 3},
		{store.DeliveryState{Attempts: 5, Cut: 2}, true, 2},
		{store.DeliveryState{Attempts: 2, Cut: 2}, true, 0}, // nothing left to count as cut
		{store.DeliveryState{}, true, 0},
	}
	for _, tc := range cases {
		if got := failedAttempts(tc.ds, schedule.Item{Suspect: tc.suspect}); got != tc.want {
			t.Errorf("%+v, suspect %v: %d failed, want %d", tc.ds, tc.suspect, got, tc.want)
		}
	}
}
