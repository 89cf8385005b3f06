package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// usedLength is the length of a sparse log file up to its last non-zero
// byte: what was written of it.
func usedLength(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(bytes.TrimRight(b, "\x00"))
}

// A store whose write-ahead log was damaged after a crash (truncated to
// half of what was written) opens with its latest commits gone, and Badger
// says nothing. The switch notices, because its audit log is now shorter
// than the last checkpoint it signed (whose copy lives beside the keyring),
// and refuses to start, saying what was lost and what to do; started with
// --accept-loss it goes on with what is left and records the loss in the
// audit log.
func TestDamagedLogIsNotSilent(t *testing.T) {
	bin := buildSwitchd(t)
	data := filepath.Join(t.TempDir(), "dev")
	addr := freeUDPPort(t)
	p := startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	sender := dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	const n = 300
	for i := 0; i < n; i += 50 {
		batch := make([]client.Telegram, 50)
		for j := range batch {
			batch[j] = client.Telegram{To: []telegram.Address{"NA.UBND"}, Body: []byte(fmt.Sprint("telegram ", i+j))}
		}
		if _, err := sender.SendBatch(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	// An auditor has a checkpoint of the whole log signed.
	if _, _, err := dialWhenUp(t, p, filepath.Join(data, "ids", "auditor")).AuditCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	sender.Close()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	mems, _ := filepath.Glob(filepath.Join(data, "data", "store", "*.mem"))
	damaged := 0
	for _, m := range mems {
		if used := usedLength(t, m); used > 64<<10 {
			if err := os.Truncate(m, int64(used/2)); err != nil {
				t.Fatal(err)
			}
			damaged++
		}
	}
	if damaged != 1 {
		t.Fatalf("%d write-ahead logs with data among %v, want 1", damaged, mems)
	}

	p = startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	select {
	case err := <-p.done:
		out := p.out.String()
		if err == nil || !strings.Contains(out, "shorter than its last checkpoint") || !strings.Contains(out, "--accept-loss") {
			t.Fatalf("the switch on a shortened log exited with %v:\n%s", err, out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the switch started on a shortened log without a word:\n%s", p.out.String())
	}

	p = startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr, "--accept-loss")
	col := &daemontest.Collector{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := dialWhenUp(t, p, filepath.Join(data, "ids", "NA.UBND")).Receive(ctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	st := daemontest.OpenStore(t, data)
	defer st.Close()
	entries, err := st.QueryAudit(store.AuditQuery{Event: store.AuditIntegrity, Limit: 10})
	if err != nil || len(entries) != 1 || !strings.Contains(entries[0].Reason, "accept-loss") {
		t.Fatalf("integrity entries %+v (%v), want one recording the loss", entries, err)
	}
	t.Logf("after the damage: %d of %d telegrams delivered; %s", len(col.Telegrams), n, entries[0].Reason)
	if len(col.Telegrams) >= n {
		t.Fatalf("all %d telegrams delivered: the damage lost nothing, so this test shows nothing", n)
	}
}
