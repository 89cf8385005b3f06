package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// preemptHandler holds the terminal's ROUTINE stream still inside the
// first ROUTINE's handler until the FLASH has arrived. With several MiB
// ROUTINE bodies still in flight behind it on the same connection, the
// FLASH can arrive only if the switch hands it out at once and it travels
// on a stream of its own.
type preemptHandler struct {
	mu       sync.Mutex
	events   []string
	fileOnce sync.Once
	file     func()
	flashGot chan struct{}
}

func (h *preemptHandler) Telegram(d client.Delivery) error {
	h.mu.Lock()
	h.events = append(h.events, strings.TrimSpace(string(d.Body[:min(len(d.Body), 16)])))
	h.mu.Unlock()
	switch d.Header.Precedence {
	case telegram.Flash:
		close(h.flashGot)
	case telegram.Routine:
		h.fileOnce.Do(func() {
			h.file()
			select {
			case <-h.flashGot:
			case <-time.After(60 * time.Second):
				h.mu.Lock()
				h.events = append(h.events, "gave up waiting for the FLASH")
				h.mu.Unlock()
			}
		})
	}
	return nil
}

func (h *preemptHandler) Receipt(telegram.Receipt) error { return nil }

func TestFlashPreemptsLargeRoutine(t *testing.T) {
	site := daemontest.Start(t)
	const size = 6 << 20
	for i := 0; i < 3; i++ {
		body := append([]byte(fmt.Sprintf("ROUTINE-%d       ", i)[:16]), bytes.Repeat([]byte{'r'}, size-16)...)
		site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Precedence: telegram.Routine, Body: body})
	}
	h := &preemptHandler{flashGot: make(chan struct{})}
	h.file = func() {
		site.Send("TW.VPTW", client.Telegram{To: []telegram.Address{"NA.TU"}, Precedence: telegram.Flash, Body: []byte("FLASH")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := site.Dial("NA.TU").Receive(ctx, client.ReceiveOptions{Inbox: true}, h); err != nil {
		t.Fatal(err)
	}
	want := "[ROUTINE-0 FLASH ROUTINE-1 ROUTINE-2]"
	if got := fmt.Sprint(h.events); got != want {
		t.Fatalf("arrival order %s, want %s", got, want)
	}
}
