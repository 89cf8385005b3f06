package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// keyringKeys reads how many data keys a keyring file holds (no secret
// needed: the IDs are not secret).
func keyringKeys(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, crypto.KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return len(f.Keys)
}

// Key rotation under load, killed mid-way: the switch resumes re-sealing
// when it starts again, retires the old key when done, and every telegram
// accepted before, during and after is still delivered whole.
func TestRotationKilledMidway(t *testing.T) {
	bin := buildSwitchd(t)
	data := filepath.Join(t.TempDir(), "dev")
	addr := freeUDPPort(t)
	// Plain UNCLASSIFIED telegrams: the test is of the switch's keys at
	// rest under load, and 30,000 sealed filings would be of the test's
	// own public-key work.
	p := startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr, "--allow-plain", "UNCLASSIFIED")
	ids := filepath.Join(data, "ids")

	var accepted atomic.Int64
	send := func(c *client.Client, n int, tag string) error {
		for done := 0; done < n; done += 500 {
			msgs := make([]client.Telegram, min(500, n-done))
			for i := range msgs {
				msgs[i] = client.Telegram{To: []telegram.Address{"NA.VINH.UBND"}, Body: []byte(fmt.Sprintf("%s %d", tag, done+i)), Plain: true}
			}
			res, err := c.SendBatch(context.Background(), msgs)
			if err != nil {
				return err
			}
			for _, r := range res {
				if r.Err == nil {
					accepted.Add(1)
				}
			}
		}
		return nil
	}
	c := dialWhenUp(t, p, filepath.Join(ids, "HN.UBND"))
	if err := send(c, 30_000, "before"); err != nil {
		t.Fatal(err)
	}
	// Under load: another sender keeps filing through the rotation and
	// the kill.
	var wg sync.WaitGroup
	var stop atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		var lc *client.Client
		n := 0
		// A filing whose answer was lost may have been committed: it is
		// refiled until answered, also once told to stop, as a terminal
		// would, or it would be delivered without being counted.
		unanswered := false
		for !stop.Load() || unanswered {
			if lc == nil {
				lc, _ = dialFast(filepath.Join(ids, "TW.VPTW"))
				if lc == nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			// A lost answer is refiled with the same reference, so it is
			// filed once.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := lc.Send(ctx, client.Telegram{To: []telegram.Address{"NA.VINH.UBND"}, Ref: fmt.Sprintf("during-%d", n),
				Body: []byte("during"), Plain: true})
			cancel()
			if err != nil {
				unanswered = true
				lc.Close()
				lc = nil
				continue
			}
			unanswered = false
			accepted.Add(1)
			n++
		}
	}()
	op := dialWhenUp(t, p, filepath.Join(ids, "operator"))
	k, err := op.RotateKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if k.Current != 2 || len(k.Keys) != 2 {
		t.Fatalf("after rotate: %+v", k)
	}
	time.Sleep(50 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	if n := keyringKeys(t, filepath.Join(data, "data")); n != 2 {
		t.Fatalf("the keyring holds %d keys after the kill; the kill did not land mid-way", n)
	}

	p = startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr, "--allow-plain", "UNCLASSIFIED")
	dialWhenUp(t, p, filepath.Join(ids, "HN.UBND")).Close()
	deadline := time.Now().Add(120 * time.Second)
	for keyringKeys(t, filepath.Join(data, "data")) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("re-sealing did not finish after the restart\n%s", p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if !strings.Contains(p.out.String(), "resuming re-sealing") {
		t.Errorf("the restarted switch did not say it resumed re-sealing")
	}

	// Everything accepted is delivered, whole.
	rc := dialWhenUp(t, p, filepath.Join(ids, "NA.VINH.UBND"))
	col := &daemontest.Collector{}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := rc.Receive(ctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
		t.Fatal(err)
	}
	if int64(len(col.Telegrams)) != accepted.Load() {
		t.Fatalf("delivered %d telegrams, %d were accepted", len(col.Telegrams), accepted.Load())
	}
	p.stop(t)
	// The audit log, written under both keys and re-sealed, still verifies
	// against every checkpoint signed before and after the kill.
	st := daemontest.OpenStore(t, data)
	size, checkpoints := daemontest.VerifyAudit(t, st)
	st.Close()
	t.Logf("rotation killed mid-way: %d telegrams accepted (before, during and after), all delivered; old key retired after restart; "+
		"audit log of %d entries verified against %d checkpoints", accepted.Load(), size, checkpoints)
}
