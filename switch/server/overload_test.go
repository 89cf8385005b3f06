package server_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// orderSink records, for each telegram delivered, its place in one
// sequence of events shared with the test's filings. A ROUTINE takes a
// little time to store, so ROUTINE traffic backs up in the switch.
type orderSink struct {
	seq     *atomic.Int64
	mu      sync.Mutex
	at      map[telegram.ID]int64
	routine []int64 // the sequence of each ROUTINE delivery
}

func (s *orderSink) Telegram(d client.Delivery) error {
	if d.Header.Precedence == telegram.Routine {
		time.Sleep(time.Millisecond)
	}
	n := s.seq.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at[d.Header.ID] = n
	if d.Header.Precedence == telegram.Routine {
		s.routine = append(s.routine, n)
	}
	return nil
}

func (s *orderSink) Receipt(telegram.Receipt) error { return nil }

// Under a flood of ROUTINE filings that backs up in the switch, every
// FLASH filed meanwhile goes ahead of the ROUTINE telegrams still waiting:
// checked by order, not time. Between a FLASH's ACCEPTED and its delivery
// the terminal stores at most what was already handed to it (the ROUTINE
// window, 32, and the next ones the same acknowledgement frees), while
// hundreds of ROUTINE filed before the FLASH are delivered after it.
func TestFlashAheadOfWaitingRoutine(t *testing.T) {
	// Admission control off: it is there to keep the flood from backing
	// up (TestAdmissionControl), and the order is seen only when it does.
	off := false
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) { c.Admission.Enabled = &off })
	var seq atomic.Int64
	sink := &orderSink{seq: &seq, at: map[telegram.ID]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recv := site.Dial("NA.TU")
	go recv.Receive(ctx, client.ReceiveOptions{Inbox: true, Follow: true}, sink)

	type routine struct {
		id       telegram.ID
		accepted int64
	}
	var mu sync.Mutex
	var routines []routine
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, from := range []string{"HN.UBND", "CP.VPCP"} {
		c := site.Dial(from)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				batch := make([]client.Telegram, 16)
				for i := range batch {
					batch[i] = tg("NA.TU", telegram.Routine, "thường")
				}
				res, err := c.SendBatch(ctx, batch)
				if err != nil {
					t.Errorf("routine filing: %v", err)
					return
				}
				n := seq.Add(1)
				mu.Lock()
				for _, r := range res {
					if r.Err == nil {
						routines = append(routines, routine{r.ID, n})
					}
				}
				mu.Unlock()
			}
		})
	}
	type flash struct {
		id              telegram.ID
		filed, accepted int64
	}
	var flashes []flash
	urgent := site.Dial("NA.UBND")
	// FLASH filings start once the flood has backed up: 400 ROUTINE
	// accepted and not yet stored.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		accepted := len(routines)
		mu.Unlock()
		sink.mu.Lock()
		stored := len(sink.routine)
		sink.mu.Unlock()
		if accepted-stored >= 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flood did not back up in 30 s: %d accepted, %d stored", accepted, stored)
		}
	}
	for range 10 {
		filed := seq.Add(1)
		id, err := urgent.Send(ctx, tg("NA.TU", telegram.Flash, "hỏa tốc"))
		if err != nil {
			t.Fatal(err)
		}
		flashes = append(flashes, flash{id.ID, filed, seq.Add(1)})
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	// Everything delivered.
	mu.Lock()
	total := len(routines) + len(flashes)
	mu.Unlock()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		sink.mu.Lock()
		n := len(sink.at)
		sink.mu.Unlock()
		if n >= total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d telegrams delivered after 60 s", n, total)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	deepest, most := 0, 0
	for i, f := range flashes {
		at, ok := sink.at[f.id]
		if !ok {
			t.Fatalf("FLASH %d never delivered", i)
		}
		// ROUTINE stored between the FLASH's ACCEPTED and its delivery.
		between := 0
		for _, n := range sink.routine {
			if n > f.accepted && n < at {
				between++
			}
		}
		most = max(most, between)
		if between > 64 {
			t.Errorf("FLASH %d: %d ROUTINE stored between its ACCEPTED and its delivery; at most the window's worth may be", i, between)
		}
		// ROUTINE accepted before the FLASH was filed, delivered after it:
		// those it overtook.
		overtaken := 0
		for _, r := range routines {
			if r.accepted < f.filed && sink.at[r.id] > at {
				overtaken++
			}
		}
		deepest = max(deepest, overtaken)
	}
	if deepest < 200 {
		t.Fatalf("the flood never backed up: at most %d ROUTINE waiting behind a FLASH; the test shows nothing", deepest)
	}
	t.Logf("%d ROUTINE, %d FLASH; up to %d ROUTINE filed earlier were overtaken by a FLASH; at most %d stored between a FLASH's ACCEPTED and its delivery",
		len(routines), len(flashes), deepest, most)
}

// Backpressure from a recipient stays with that recipient: a terminal that
// stops reading (its handler never returns, so its streams fill up to QUIC
// flow control) does not slow filing for it or delivery to others. Every
// filing is accepted, and another agency gets every one of its telegrams,
// while the stuck terminal holds what was handed to it.
func TestStuckRecipientSlowsNoOneElse(t *testing.T) {
	site := daemontest.Start(t)
	ctx := context.Background()
	first := site.Send("HN.UBND", tg("NA.TU", telegram.Routine, "đầu tiên"))
	site.StuckInFlight("NA.TU", first)
	// 32 in flight of 256 KiB: more than the terminal's QUIC receive
	// window, so the switch's writer to it blocks.
	big, body := make([]byte, 256<<10), make([]byte, 8<<10)
	const toStuck, toOther = 100, 200
	var wg sync.WaitGroup
	for _, from := range []string{"HN.UBND", "CP.VPCP"} {
		c := site.Dial(from)
		wg.Go(func() {
			for i := 0; i < toStuck/2; i += 10 {
				batch := make([]client.Telegram, 10)
				for j := range batch {
					batch[j] = client.Telegram{To: []telegram.Address{"NA.TU"}, Precedence: telegram.Routine, Body: big}
				}
				res, err := c.SendBatch(ctx, batch)
				if err != nil {
					t.Errorf("filing for the stuck agency: %v", err)
					return
				}
				for _, r := range res {
					if r.Err != nil {
						t.Errorf("filing for the stuck agency: %v", r.Err)
					}
				}
			}
		})
	}
	other := site.Dial("TW.VPTW")
	for i := 0; i < toOther; i += 20 {
		batch := make([]client.Telegram, 20)
		for j := range batch {
			batch[j] = client.Telegram{To: []telegram.Address{"NA.UBND"}, Precedence: telegram.Routine, Body: body}
		}
		if _, err := other.SendBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	got := site.Receive("NA.UBND", inbox)
	if len(got.Telegrams) != toOther {
		t.Fatalf("NA.UBND got %d telegrams while NA.TU was stuck, want %d", len(got.Telegrams), toOther)
	}
	if waiting := waitingFor(t, site, "NA.TU"); waiting != toStuck+1 {
		t.Fatalf("%d waiting for the stuck agency, want %d (every filing accepted, none delivered)", waiting, toStuck+1)
	}
}
