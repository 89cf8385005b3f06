package server_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/schedule"
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

// An agency has at most max_terminals terminals receiving at once: one
// more inbox subscription is refused with "retry later", and accepted once
// a terminal stops; a subscription to delivery reports is not counted.
func TestTerminalsPerAgencyBounded(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) { c.Limits.MaxTerminals = 1 })
	second := issueTerminal(t, site, "NA.TU", telegram.Secret)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	first := site.Dial("NA.TU")
	done := make(chan error, 1)
	go func() {
		done <- first.Receive(ctx, client.ReceiveOptions{Inbox: true, Follow: true}, &daemontest.Collector{})
	}()
	// Wait until the first terminal is receiving.
	deadline := time.Now().Add(10 * time.Second)
	op := site.Dial("operator")
	defer op.Close()
	for {
		ss, err := op.Sessions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) > 0 && ss[0].Agency == "NA.TU" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	err := site.Dial(second).Receive(context.Background(), inbox, &daemontest.Collector{})
	if !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("a second receiving terminal: %v, want refused with retry later", err)
	}
	if got := site.Receive(second, client.ReceiveOptions{Receipts: true}); len(got.Receipts) != 0 {
		t.Fatalf("receipts: %d", len(got.Receipts))
	}
	stop()
	<-done
	id := site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "after"))
	// The switch notices the first one's close within moments.
	got := &daemontest.Collector{}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := site.Dial(second).Receive(context.Background(), inbox, got)
		if err == nil {
			break
		}
		if !fault.Is(fault.Unavailable, err) || time.Now().After(deadline) {
			t.Fatalf("once the first stopped, the second: %v", err)
		}
	}
	if len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id {
		t.Fatalf("once the first stopped, the second got %d telegrams", len(got.Telegrams))
	}
}

// After a crash, what an agency's terminals may have had in flight goes out
// flagged as a possible duplicate, to whichever terminal of the agency
// takes it, even if the attempt was never counted: the first
// schedule.Suspects(window, max_terminals) entries of each queue of an
// agency that was receiving, filed before the crash (66 here, with a
// window of 1 and one terminal). Later entries, telegrams filed after the
// restart, and agencies that had no terminal receiving are not flagged.
// (The crash is a copy of the running switch's folder: Badger writes
// synchronously, so it holds what was committed.)
func TestCrashFlagsWhatMayHaveBeenInFlight(t *testing.T) {
	small := func(c *daemon.Config) { c.Limits.Window, c.Limits.MaxTerminals = 1, 1 }
	suspects := schedule.Suspects(1, 1)
	dir := filepath.Join(t.TempDir(), "site")
	site := daemontest.StartWith(t, dir, nil, small)
	batch := make([]client.Telegram, suspects+4)
	for i := range batch {
		batch[i] = tg("NA.TU", telegram.Flash, fmt.Sprint("before ", i))
	}
	res, err := site.Dial("HN.UBND").SendBatch(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want := map[telegram.ID]bool{}
	for i, r := range res {
		want[r.ID] = i < suspects
	}
	offline := site.Send("HN.UBND", tg("NA.UBND", telegram.Flash, "to an agency not receiving"))
	site.StuckInFlight("NA.TU", res[0].ID)
	img := filepath.Join(t.TempDir(), "crashed")
	if out, err := exec.Command("cp", "-a", "--sparse=always", dir, img).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	site.Stop()

	site = daemontest.StartWith(t, img, nil, small)
	want[site.Send("HN.UBND", tg("NA.TU", telegram.Flash, "after"))] = false
	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != len(want) {
		t.Fatalf("NA.TU got %d telegrams after the crash, want %d", len(got.Telegrams), len(want))
	}
	for i, d := range got.Telegrams {
		if d.PossibleDuplicate != want[d.Header.ID] {
			t.Errorf("delivery %d (%s): possible duplicate %v, want %v", i, d.Header.ID, d.PossibleDuplicate, want[d.Header.ID])
		}
	}
	if got := site.Receive("NA.UBND", inbox); len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != offline || got.Telegrams[0].PossibleDuplicate {
		t.Fatalf("NA.UBND, which had no terminal receiving, got %+v, want %s unflagged", got.Telegrams, offline)
	}
}
