package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The relay kill loop runs the dev network (TW, HN, NA) as three switchd
// processes, files from HN to NA (every telegram relayed by TW) and kills
// TW with SIGKILL at random moments, restarting it each time. Then every
// telegram HN answered ACCEPTED must be in NA.UBND's inbox exactly once,
// every sender must have its DELIVERED report, and no switch may have
// audited a gap or a repeat in a link's sequence numbers.
//
// CI runs a short version. The long one:
//
//	DIENBAO_RELAY_CYCLES=50 go test ./cmd/switchd -run TestRelayKillLoop -v -timeout 60m
func TestRelayKillLoop(t *testing.T) {
	cycles := cyclesFromEnv(t, "DIENBAO_RELAY_CYCLES", 3)
	bin := buildSwitchd(t)
	dir := filepath.Join(t.TempDir(), "net")
	names := daemon.DevNetworkSwitches()
	addrs := make([]string, len(names))
	for i := range addrs {
		addrs[i] = freeUDPPort(t)
	}
	if _, err := daemon.DevNetworkAt(dir, addrs); err != nil {
		t.Fatal(err)
	}
	site := func(name string) string { return filepath.Join(dir, name) }
	idDir := func(sw, id string) string { return filepath.Join(site(sw), "ids", id) }
	launch := func(name string) *process {
		p := startSwitchd(t, bin, "--config", filepath.Join(site(name), "switchd.toml"))
		dialWhenUp(t, p, idDir(name, "operator")).Close()
		return p
	}
	procs := map[string]*process{}
	for _, n := range names {
		procs[n] = launch(n)
	}

	var mu sync.Mutex
	accepted := map[telegram.ID]bool{}
	stored := map[telegram.ID]int{}
	delivered := map[telegram.ID]bool{}
	var dups atomic.Int64
	var stopSend, stopRecv atomic.Bool
	var senders, recipients sync.WaitGroup
	senders.Go(func() { // HN.UBND files for NA.UBND; HN is never killed
		rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
		c, err := dialFast(idDir("HN", "HN.UBND"))
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for i := 0; !stopSend.Load(); i++ {
			msg := client.Telegram{To: []telegram.Address{"NA.UBND"}, Precedence: telegram.Precedences[rng.IntN(4)],
				Ref: fmt.Sprintf("relay-%06d", i), Body: []byte(fmt.Sprintf("điện %d %s", i, make([]byte, rng.IntN(2048))))}
			res, err := c.Send(context.Background(), msg)
			if err != nil {
				t.Errorf("filing at HN: %v", err)
				return
			}
			mu.Lock()
			accepted[res.ID] = true
			mu.Unlock()
			time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
		}
	})
	rec := &relayRecorder{inbox: &client.Inbox{Dir: filepath.Join(t.TempDir(), "inbox")}, mu: &mu, stored: stored, dups: &dups}
	recipients.Go(func() {
		receiveLoop(idDir("NA", "NA.UBND"), client.ReceiveOptions{Inbox: true, Follow: true}, rec, &stopRecv)
	})
	rep := &relayRecorder{mu: &mu, delivered: delivered}
	recipients.Go(func() {
		receiveLoop(idDir("HN", "HN.UBND"), client.ReceiveOptions{Receipts: true, Follow: true}, rep, &stopRecv)
	})

	rng := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	for range cycles {
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		procs["TW"].cmd.Process.Signal(syscall.SIGKILL)
		<-procs["TW"].done
		procs["TW"] = launch("TW")
	}
	time.Sleep(300 * time.Millisecond)
	stopSend.Store(true)
	senders.Wait()
	mu.Lock()
	total := len(accepted)
	mu.Unlock()
	// Everything accepted reaches NA.UBND and its report reaches HN.UBND.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		mu.Lock()
		got, reported := len(stored), len(delivered)
		mu.Unlock()
		if got >= total && reported >= total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the loop: %d of %d telegrams reached NA.UBND, %d reports reached HN.UBND", got, total, reported)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopRecv.Store(true)
	recipients.Wait()
	for _, n := range names {
		procs[n].stop(t)
	}
	for id := range accepted {
		if stored[id] != 1 {
			t.Fatalf("%s stored %d times at NA.UBND", id, stored[id])
		}
		if !delivered[id] {
			t.Fatalf("no DELIVERED report for %s", id)
		}
	}
	if len(stored) != total {
		t.Fatalf("NA.UBND stored %d telegrams, %d were accepted", len(stored), total)
	}
	var links [3]int
	var relayed int
	for i, n := range names {
		st := daemontest.OpenStore(t, site(n))
		es, err := st.QueryAudit(store.AuditQuery{Event: "link", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		links[i] = len(es)
		for _, e := range es {
			t.Errorf("%s audited a link event: %s", n, e.Reason)
		}
		if n == "TW" {
			for from := uint64(0); ; {
				rs, resume, err := st.QueryAuditPage(store.AuditQuery{Event: "relayed", From: from, Limit: 10000, Scan: 5000})
				if err != nil {
					t.Fatal(err)
				}
				relayed += len(rs)
				if resume == 0 {
					break
				}
				from = resume
			}
		}
		size, checkpoints := daemontest.VerifyAudit(t, st)
		t.Logf("%s: audit log of %d entries verified against %d checkpoints", n, size, checkpoints)
		st.Close()
	}
	t.Logf("%d kills of TW; %d telegrams accepted at HN, each stored once at NA.UBND (%d deliveries flagged possible duplicate); %d reports back; TW relayed %d copies; link events %v",
		cycles, total, dups.Load(), len(delivered), relayed, links)
}

// relayRecorder stores telegrams in an inbox and counts first stores, or
// counts DELIVERED reports.
type relayRecorder struct {
	inbox     *client.Inbox
	mu        *sync.Mutex
	stored    map[telegram.ID]int
	delivered map[telegram.ID]bool
	dups      *atomic.Int64
}

func (h *relayRecorder) Telegram(d client.Delivery) error {
	if d.PossibleDuplicate {
		h.dups.Add(1)
	}
	first, err := h.inbox.Store(d)
	if err != nil || !first {
		return err
	}
	h.mu.Lock()
	h.stored[d.Header.ID]++
	h.mu.Unlock()
	return nil
}

func (h *relayRecorder) Receipt(r telegram.Receipt) error {
	if r.Status == telegram.Delivered {
		h.mu.Lock()
		h.delivered[r.ID] = true
		h.mu.Unlock()
	}
	return nil
}

// receiveLoop receives as the identity in idDir until stop, reconnecting
// whenever the session ends.
func receiveLoop(idDir string, opts client.ReceiveOptions, h client.Handler, stop *atomic.Bool) {
	for !stop.Load() {
		c, err := dialFast(idDir)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for !stop.Load() && ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
		}()
		c.Receive(ctx, opts, h)
		cancel()
		c.Close()
	}
}
