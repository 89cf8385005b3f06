package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// A backup taken while the switch files under load holds exactly the
// telegrams committed before it; restored, the switch keeps every one of
// them and their references, sends them flagged possible duplicate (they
// may have been delivered after the backup, as they were here), records
// the restore in its audit log, and serves a log consistent with a
// checkpoint signed before the backup. A checkpoint signed after it is
// reported as the gap it is, naming the restore.
func TestBackupRestoreUnderLoad(t *testing.T) {
	bin := buildSwitchd(t)
	tg := filepath.Join(t.TempDir(), "tg")
	if out, err := exec.Command("go", "build", "-o", tg, "../tg").CombinedOutput(); err != nil {
		t.Fatalf("go build tg: %v\n%s", err, out)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "dev")
	config := filepath.Join(data, "switchd.toml")
	addr := freeUDPPort(t)
	p := startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	ctx := context.Background()
	sender := dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	ids := map[string]telegram.ID{}
	for i := range 100 {
		ref := fmt.Sprint("before-", i)
		r, err := sender.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Ref: ref, Body: []byte(ref)})
		if err != nil {
			t.Fatal(err)
		}
		ids[ref] = r.ID
	}
	tgRun := func(id string, args ...string) (string, error) {
		out, err := exec.Command(tg, append([]string{"--id", filepath.Join(data, "ids", id)}, args...)...).CombinedOutput()
		return string(out), err
	}
	early := filepath.Join(dir, "early.note")
	saveCheckpoint(t, p, data, early)

	// The backup, while four senders file as fast as they can.
	var filed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ref := fmt.Sprintf("load-%d-%d", w, i)
				if _, err := sender.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Ref: ref, Body: []byte(ref)}); err != nil {
					t.Error(err)
					return
				}
				filed.Add(1)
			}
		}()
	}
	for filed.Load() < 50 {
		time.Sleep(10 * time.Millisecond)
	}
	backup := filepath.Join(dir, "switch.backup")
	out, err := exec.Command(bin, "backup", "--config", config, backup).CombinedOutput()
	atBackup := filed.Load()
	for filed.Load() < atBackup+50 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err != nil || !strings.Contains(string(out), "backup taken at") {
		t.Fatalf("switchd backup: %v\n%s", err, out)
	}
	info, err := store.ReadBackup(mustOpen(t, backup), func(byte, []byte, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	total := 100 + int(filed.Load())
	if info.Filings <= 100+50 || int(info.Filings) >= total {
		t.Fatalf("the backup holds %d filings; %d were filed before it began and %d in all", info.Filings, 150, total)
	}
	t.Logf("backup under load: %d of %d filings, %d records, %d bytes; %s", info.Filings, total, info.Records, info.Bytes, strings.TrimSpace(string(out)))

	// After the backup: five more filings, every telegram delivered, and
	// an auditor's checkpoint of the longer log.
	for i := range 5 {
		ref := fmt.Sprint("after-", i)
		if _, err := sender.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Ref: ref, Body: []byte(ref)}); err != nil {
			t.Fatal(err)
		}
	}
	sender.Close()
	rcv := dialWhenUp(t, p, filepath.Join(data, "ids", "NA.UBND"))
	col := &daemontest.Collector{}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := rcv.Receive(rctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
		t.Fatal(err)
	}
	if len(col.Telegrams) != total+5 {
		t.Fatalf("before the restore NA.UBND received %d, want %d", len(col.Telegrams), total+5)
	}
	rcv.Close()
	late := filepath.Join(dir, "late.note")
	saveCheckpoint(t, p, data, late)
	p.stop(t)

	// Restore: refused while the store is there, then done.
	out, err = exec.Command(bin, "restore", "--config", config, backup).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already holds a store") {
		t.Fatalf("restore over a store: %v\n%s", err, out)
	}
	if err := os.Rename(filepath.Join(data, "data", "store"), filepath.Join(dir, "store.lost")); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "restore", "--config", config, backup).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restored the backup") {
		t.Fatalf("switchd restore: %v\n%s", err, out)
	}
	p = startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)

	// Every telegram of the backup comes again, each flagged.
	rcv = dialWhenUp(t, p, filepath.Join(data, "ids", "NA.UBND"))
	col = &daemontest.Collector{}
	if err := rcv.Receive(rctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
		t.Fatal(err)
	}
	rcv.Close()
	flagged := 0
	for _, d := range col.Telegrams {
		if d.PossibleDuplicate {
			flagged++
		}
	}
	if len(col.Telegrams) != int(info.Filings) || flagged != len(col.Telegrams) {
		t.Fatalf("after the restore NA.UBND received %d (%d flagged possible duplicate), want the backup's %d, all flagged",
			len(col.Telegrams), flagged, info.Filings)
	}

	// References: kept for what the backup holds, unknown after it.
	sender = dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	r, err := sender.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Ref: "before-7", Body: []byte("before-7")})
	if err != nil || !r.Duplicate || r.ID != ids["before-7"] {
		t.Fatalf("refiling before-7 after the restore: %+v %v, want a duplicate of %s", r, err, ids["before-7"])
	}
	if r, err = sender.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Ref: "after-1", Body: []byte("after-1")}); err != nil || r.Duplicate {
		t.Fatalf("refiling after-1 (filed after the backup): %+v %v, want a new filing", r, err)
	}
	sender.Close()

	// The audit log: the restore at the backup's size; the early
	// checkpoint consistent; the late one reported as a gap.
	auditor := dialWhenUp(t, p, filepath.Join(data, "ids", "auditor"))
	entries, err := auditor.AuditQuery(ctx, wire.AuditQuery{Event: audit.Restored})
	auditor.Close()
	if err != nil || len(entries.Entries) != 1 || entries.Entries[0].Index != info.AuditSize {
		t.Fatalf("restored entries: %+v %v, want one at index %d", entries.Entries, err, info.AuditSize)
	}
	if out, err := tgRun("auditor", "audit", "checkpoint", "--since", early); err != nil || !strings.Contains(out, "consistent with the earlier checkpoint") {
		t.Fatalf("the checkpoint signed before the backup: %v\n%s", err, out)
	}
	out2, err := tgRun("auditor", "audit", "checkpoint", "--since", late)
	want := fmt.Sprintf("restored from a backup at log size %d", info.AuditSize)
	if err == nil || !strings.Contains(out2, want) {
		t.Fatalf("the checkpoint signed after the backup: %v, want a refusal naming %q\n%s", err, want, out2)
	}
	t.Logf("tg audit checkpoint --since late.note:\n%s", out2)
	p.stop(t)
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// saveCheckpoint has the switch sign a checkpoint of its whole log, as an
// auditor, and saves it to path.
func saveCheckpoint(t *testing.T, p *process, data, path string) {
	t.Helper()
	auditor := dialWhenUp(t, p, filepath.Join(data, "ids", "auditor"))
	defer auditor.Close()
	note, _, err := auditor.AuditCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, note, 0o644); err != nil {
		t.Fatal(err)
	}
}
