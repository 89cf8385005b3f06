package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/pelletier/go-toml/v2"
)

// smallDisk mounts a tmpfs of size bytes for the test, or skips where that
// is not allowed (CI runs as root and must not skip).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (%v %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// A switch whose disk fills keeps its promises instead of dying (Badger
// writes through memory-mapped files, which a full disk answers with
// SIGBUS): it refuses ROUTINE first while FLASH is still filed, then
// everything, with "switch storage full"; it keeps delivering; once
// delivered bodies' space is reclaimed (the journal gives way: settled
// telegrams are purged before their retention ends, audited) it files
// again; and after being
// stopped on a disk filled to the last byte by something else, it starts
// (its reserve is released) and delivers what it holds.
func TestFullDisk(t *testing.T) {
	bin := buildSwitchd(t)
	data := filepath.Join(smallDisk(t, "160m"), "dev")
	addr := freeUDPPort(t)
	p := startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND")).Close()
	p.stop(t)
	conf := filepath.Join(data, "switchd.toml")
	cfg, err := daemon.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage = daemon.Storage{LowWatermark: 80 << 20, CriticalWatermark: 32 << 20, Reserve: 16 << 20,
		ReclaimInterval: daemon.Duration(time.Second)}
	b, err := toml.Marshal(cfg)
	if err == nil {
		err = os.WriteFile(conf, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	p = startSwitchd(t, bin, "--config", conf)
	sender := dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	body := bytes.Repeat([]byte("telegram body "), 512<<10/14) // about half a MiB
	send := func(p telegram.Precedence) (telegram.ID, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := sender.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Precedence: p, Body: body})
		return res.ID, err
	}
	full := func(err error) bool {
		return fault.Is(fault.Unavailable, err) && strings.Contains(err.Error(), "switch storage full")
	}
	// Fill with ROUTINE until it is refused; FLASH still goes in.
	var accepted []telegram.ID
	for {
		id, err := send(telegram.Routine)
		if full(err) {
			break
		}
		if err != nil {
			t.Fatalf("after %d ROUTINE filings: %v\n%s", len(accepted), err, p.out.String())
		}
		accepted = append(accepted, id)
		if len(accepted) > 1000 {
			t.Fatal("1,000 filings of half a MiB on a 160 MiB disk, none refused")
		}
	}
	id, err := send(telegram.Flash)
	if err != nil {
		t.Fatalf("a FLASH right after ROUTINE was refused: %v", err)
	}
	accepted = append(accepted, id)
	// Then FLASH too, at the critical watermark; the switch stays up.
	for n := 0; ; n++ {
		id, err := send(telegram.Flash)
		if full(err) {
			break
		}
		if err != nil || n > 1000 {
			t.Fatalf("FLASH filing %d: %v\n%s", n, err, p.out.String())
		}
		accepted = append(accepted, id)
	}
	t.Logf("%d telegrams filed before the disk was full", len(accepted))

	// Delivery goes on, and frees the space: filing works again.
	receive := func(want []telegram.ID) {
		t.Helper()
		col := &daemontest.Collector{}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		if err := dialWhenUp(t, p, filepath.Join(data, "ids", "NA.UBND")).Receive(ctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
			t.Fatalf("receive: %v\n%s", err, p.out.String())
		}
		got := map[telegram.ID]bool{}
		for _, d := range col.Telegrams {
			got[d.Header.ID] = true
		}
		for _, id := range want {
			if !got[id] {
				t.Fatalf("accepted telegram %s not delivered (%d of %d delivered)", id, len(got), len(want))
			}
		}
	}
	receive(accepted)
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := send(telegram.Routine)
		if err == nil {
			break
		}
		if !full(err) || time.Now().After(deadline) {
			t.Fatalf("after delivering everything: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	es, err := dialWhenUp(t, p, filepath.Join(data, "ids", "auditor")).AuditQuery(context.Background(),
		wire.AuditQuery{Event: "purged", Limit: 10000})
	if err != nil || len(es.Entries) == 0 || !strings.Contains(es.Entries[0].Reason, "short of space") {
		t.Fatalf("no early purge audited: %d entries, %v", len(es.Entries), err)
	}
	t.Logf("%d delivered telegrams purged from the journal early", len(es.Entries))

	// Something else fills the disk to the last byte while the switch is
	// stopped; it starts anyway and delivers what it holds.
	queued, err := send(telegram.Flash)
	if err != nil {
		t.Fatal(err)
	}
	sender.Close()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	filler, err := os.Create(filepath.Join(filepath.Dir(data), "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()
	p = startSwitchd(t, bin, "--config", conf)
	sender = dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	if _, err := send(telegram.Flash); !full(err) {
		t.Fatalf("filing on a full disk: %v, want switch storage full", err)
	}
	receive([]telegram.ID{queued})
	sender.Close()
	p.stop(t)
}
