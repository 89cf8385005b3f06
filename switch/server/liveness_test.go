package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// A terminal that reconnects while its old session still holds a delivery
// (its process died mid-transfer; the switch has not noticed yet) gets that
// delivery at once on the new session, flagged as a possible duplicate:
// the new subscription replaces the old session of the same certificate.
// (It used to report "drained" and leave the telegram in flight on the
// dead session until the idle or ack timeout.) Another terminal of the same
// agency, with its own certificate, is not disturbed by it (it is cleared
// below the telegram, so it cannot take it either).
func TestReconnectingTerminalGetsWhatWasInFlight(t *testing.T) {
	site := daemontest.Start(t)
	other := issueTerminal(t, site, "NA.TU", telegram.Unclassified)
	m := tg("NA.TU", telegram.Flash, "in flight")
	m.Classification = telegram.Confidential
	id := site.Send("HN.UBND", m)

	old := site.StuckInFlight("NA.TU", id)
	// The other terminal of the agency follows its inbox meanwhile.
	otherCol := &daemontest.Collector{}
	otherCtx, stopOther := context.WithCancel(context.Background())
	defer stopOther()
	otherDone := make(chan error, 1)
	go func() {
		otherDone <- site.Dial(other).Receive(otherCtx, client.ReceiveOptions{Inbox: true, Follow: true}, otherCol)
	}()

	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id || !got.Telegrams[0].PossibleDuplicate {
		t.Fatalf("the reconnected terminal got %d telegrams (%+v), want %s flagged as a possible duplicate",
			len(got.Telegrams), got.Telegrams, id)
	}
	select {
	case <-old.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the replaced session is still open")
	}
	select {
	case err := <-otherDone:
		t.Fatalf("the agency's other terminal was disconnected: %v", err)
	default:
	}
	stopOther()
	if err := <-otherDone; err != nil {
		t.Fatalf("the agency's other terminal: %v", err)
	}
	if len(otherCol.Telegrams) != 0 {
		t.Fatalf("the agency's other terminal got %d telegrams, want 0 (the first terminal had it)", len(otherCol.Telegrams))
	}
}
