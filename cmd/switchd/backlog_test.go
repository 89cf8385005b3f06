package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/telegram"
)

// memSample is a process's resident memory, from /proc/PID/status.
type memSample struct {
	anon, file, hwm int64 // RssAnon, RssFile, VmHWM in bytes
}

func readMem(pid int) (memSample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memSample{}, err
	}
	var m memSample
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "RssAnon":
			m.anon = kb << 10
		case "RssFile":
			m.file = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		}
	}
	return m, nil
}

// memPeaks samples a process's memory until the returned function is
// called, and returns the largest values seen.
func memPeaks(pid int) (stop func() memSample) {
	var peak memSample
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			if m, err := readMem(pid); err == nil {
				peak.anon, peak.file, peak.hwm = max(peak.anon, m.anon), max(peak.file, m.file), max(peak.hwm, m.hwm)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() memSample {
		close(done)
		<-finished
		return peak
	}
}

// The switch's memory does not grow with the backlog: with many small
// telegrams queued for one offline agency, its peak resident memory stays
// under 256 MiB, it restarts on that backlog, and a FLASH filed for the
// agency is the first thing its terminal gets.
//
// CI queues 50,000. The issue's figure:
//
//	DIENBAO_BACKLOG=1000000 go test ./cmd/switchd -run TestBacklogMemory -v -timeout 30m
func TestBacklogMemory(t *testing.T) {
	total := 50_000
	if s := os.Getenv("DIENBAO_BACKLOG"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("DIENBAO_BACKLOG=%q", s)
		}
		total = n
	}
	const limit = 256 << 20
	bin := buildSwitchd(t)
	data := filepath.Join(t.TempDir(), "dev")
	addr := freeUDPPort(t)
	cg := newMemCgroup(t, limit)
	run := func() *process {
		if cg != nil {
			return startCmd(t, cg.command(bin, "--dev", "--data", data, "--listen", addr, "--allow-plain", "UNCLASSIFIED"))
		}
		// The backlog is of plain UNCLASSIFIED telegrams: filling it sealed
		// would measure the terminals' public-key work, not the switch.
		return startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr, "--allow-plain", "UNCLASSIFIED")
	}
	p := run()
	dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND")).Close()

	// A terminal for HCM.UBND, which the dev site lists but serves none.
	ca, err := certs.LoadCA(filepath.Join(data, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(certs.Request{Name: "HCM.UBND terminal", Role: certs.Terminal, Agency: "HCM.UBND",
		Clearance: telegram.TopSecret, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	hcm := filepath.Join(data, "ids", "HCM.UBND")
	if err := certs.WriteFolder(hcm, iss, ca.PEM, addr); err != nil {
		t.Fatal(err)
	}
	if err := daemon.EnsureDevAgencyKeys(data, "HCM.UBND", hcm); err != nil {
		t.Fatal(err)
	}

	// Fill: four senders, batches of 1,000 small ROUTINE telegrams.
	stopFill := memPeaks(p.cmd.Process.Pid)
	start := time.Now()
	const batch = 1000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	per := total / 4
	for i, name := range []string{"HN.UBND", "TW.VPTW", "CP.VPCP", "NA.TU"} {
		wg.Add(1)
		go func(i int, name string) {
			defer wg.Done()
			c := dialWhenUp(t, p, filepath.Join(data, "ids", name))
			defer c.Close()
			n := per
			if i == 3 {
				n = total - 3*per
			}
			for sent := 0; sent < n; sent += batch {
				msgs := make([]client.Telegram, min(batch, n-sent))
				for j := range msgs {
					msgs[j] = client.Telegram{To: []telegram.Address{"HCM.UBND"}, Body: []byte(fmt.Sprintf("backlog %s %d", name, sent+j)), Plain: true}
				}
				res, err := c.SendBatch(context.Background(), msgs)
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							err = r.Err
							break
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(i, name)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if cg != nil && cg.oomKills() > 0 {
			t.Fatalf("the kernel killed the switch for exceeding %d MiB while filling (%v)", limit>>20, err)
		}
		t.Fatal(err)
	}
	fill := time.Since(start)
	fillPeak := stopFill()
	p.stop(t)

	// Restart on the backlog.
	start = time.Now()
	p = run()
	stopRestart := memPeaks(p.cmd.Process.Pid)
	sender := dialWhenUp(t, p, filepath.Join(data, "ids", "TW.VPTW"))
	startup := time.Since(start)
	if _, err := sender.Send(context.Background(), client.Telegram{To: []telegram.Address{"HCM.UBND"},
		Precedence: telegram.Flash, Classification: telegram.Secret, Body: []byte("FLASH over the backlog")}); err != nil { // sealed
		t.Fatal(err)
	}
	sender.Close()

	// The agency's terminal connects: the FLASH comes first, then the
	// backlog in filing order. Take the first few thousand.
	c := dialWhenUp(t, p, hcm)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &firstN{n: min(5000, total+1), done: cancel}
	start = time.Now()
	c.Receive(ctx, client.ReceiveOptions{Inbox: true, Follow: true}, h)
	drain := time.Since(start)
	restartPeak := stopRestart()
	p.stop(t)

	if len(h.got) == 0 || string(h.got[0].Body) != "FLASH over the backlog" {
		t.Fatalf("the first delivery over the backlog was not the FLASH")
	}
	for i := 1; i < len(h.got); i++ {
		if h.got[i].Header.Precedence != telegram.Routine {
			t.Fatalf("delivery %d is %s", i, h.got[i].Header.Precedence)
		}
		if i > 1 && h.got[i].Header.ID.String() < h.got[i-1].Header.ID.String() {
			t.Fatalf("backlog out of filing order at %d", i)
		}
	}
	mib := func(b int64) int64 { return b >> 20 }
	t.Logf("backlog %d: filled in %v (%.0f/s); restart to serving %v; FLASH first, then %d ROUTINE in %v",
		total, fill.Round(time.Millisecond), float64(total)/fill.Seconds(), startup.Round(time.Millisecond),
		len(h.got)-1, drain.Round(time.Millisecond))
	t.Logf("peak memory while filling: %d MiB anonymous (the switch's own), %d MiB file-backed (mapped Badger files), VmHWM %d MiB",
		mib(fillPeak.anon), mib(fillPeak.file), mib(fillPeak.hwm))
	t.Logf("peak memory after restart: %d MiB anonymous, %d MiB file-backed, VmHWM %d MiB",
		mib(restartPeak.anon), mib(restartPeak.file), mib(restartPeak.hwm))
	if cg != nil {
		t.Logf("run inside a memory cgroup limited to %d MiB: peak charged %d MiB (page cache included), %d OOM kills",
			limit>>20, mib(cg.peak()), cg.oomKills())
		if cg.oomKills() > 0 {
			t.Errorf("the kernel killed the switch for exceeding %d MiB", limit>>20)
		}
	} else {
		t.Logf("no memory cgroup available: the hard limit was not applied")
	}
	if fillPeak.anon > limit || restartPeak.anon > limit {
		t.Errorf("the switch's own resident memory peaked at %d MiB (filling) and %d MiB (after restart); the bound is %d MiB",
			mib(fillPeak.anon), mib(restartPeak.anon), limit>>20)
	}
}

// firstN keeps the first n deliveries, then stops receiving.
type firstN struct {
	mu   sync.Mutex
	n    int
	got  []client.Delivery
	done func()
}

func (h *firstN) Telegram(d client.Delivery) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) < h.n {
		h.got = append(h.got, d)
		if len(h.got) == h.n {
			h.done()
		}
	}
	return nil
}

func (h *firstN) Receipt(telegram.Receipt) error { return nil }
