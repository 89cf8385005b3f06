package main

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/daemon"
	"go.uber.org/zap"
)

// tg group, against a replicated switch of three nodes run in this
// process (each with its own data folder and certificate, on loopback):
// the operator's status with its JSON fields, what a terminal is told, a
// member removed (audited).
func TestGroupCommands(t *testing.T) {
	var addrs, gaddrs []string
	var held []net.PacketConn
	for range 2 * daemon.DevGroupSize {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for i, c := range held {
		if i%2 == 0 {
			addrs = append(addrs, c.LocalAddr().String())
		} else {
			gaddrs = append(gaddrs, c.LocalAddr().String())
		}
		c.Close()
	}
	dir := filepath.Join(t.TempDir(), "group")
	cfgs, err := daemon.DevGroupAt(dir, addrs, gaddrs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, cfg := range cfgs {
		cfg.Group.Tick = daemon.Duration(20 * time.Millisecond)
		wg.Go(func() { daemon.Run(ctx, daemon.Options{Config: cfg, Logger: zap.NewNop(), KeepRuntime: true}) })
	}
	ops, hn, aud := filepath.Join(dir, "ids", "operator"), filepath.Join(dir, "ids", "HN.UBND"), filepath.Join(dir, "ids", "auditor")

	r := tg(t, "", "--id", ops, "--json", "group", "status")
	if r.code != 0 {
		t.Fatalf("tg group status: %d %s", r.code, r.stderr)
	}
	st := jsonLines(t, r.stdout)[0]
	members, _ := st["members"].([]any)
	if st["group"] != true || st["state"] != "leader" || len(members) != 3 || st["leader"] == 0.0 || st["term"] == 0.0 {
		t.Fatalf("status: %v", st)
	}
	for _, f := range []string{"node", "commit", "applied", "last_index", "snapshot"} {
		if _, ok := st[f]; !ok {
			t.Errorf("status has no %q", f)
		}
	}
	m0 := members[0].(map[string]any)
	for _, f := range []string{"id", "name", "address", "group_address", "leader", "match", "lag"} {
		if _, ok := m0[f]; !ok {
			t.Errorf("a member has no %q: %v", f, m0)
		}
	}
	r = tg(t, "", "--id", ops, "group")
	if !strings.Contains(r.stdout, "group of 3: leader node") || !strings.Contains(r.stdout, "LAST CONTACT") {
		t.Errorf("tg group:\n%s", r.stdout)
	}
	// A terminal learns the leader and the addresses, not Raft's figures.
	r = tg(t, "", "--id", hn, "group", "status")
	if !strings.Contains(r.stdout, "group of 3: leader node") || strings.Contains(r.stdout, "term") || !strings.Contains(r.stdout, addrs[0]) {
		t.Errorf("a terminal's tg group status:\n%s", r.stdout)
	}
	if r = tg(t, "", "--id", hn, "group", "remove", "2"); r.code == 0 || !strings.Contains(r.stderr, "only operators") {
		t.Errorf("a terminal removed a member: %d %s", r.code, r.stderr)
	}

	// Remove a follower: two members left, and the audit log says who.
	leader := int(st["leader"].(float64))
	gone := 1
	if gone == leader {
		gone = 2
	}
	r = tg(t, "", "--id", ops, "--json", "group", "remove", strconv.Itoa(gone))
	if r.code != 0 {
		t.Fatalf("tg group remove: %s", r.stderr)
	}
	if st := jsonLines(t, r.stdout)[0]; len(st["members"].([]any)) != 2 {
		t.Errorf("after the removal: %v", st)
	}
	r = tg(t, "", "--id", aud, "audit", "query", "--event", "group")
	if !strings.Contains(r.stdout, "member removed: node "+strconv.Itoa(gone)) || !strings.Contains(r.stdout, "operator") {
		t.Errorf("the removal is not audited:\n%s", r.stdout)
	}
	// Still one switch: a telegram goes through.
	if r = tg(t, "", "--id", hn, "send", "--to", "NA.UBND", "after"); r.code != 0 {
		t.Errorf("filing after the removal: %s", r.stderr)
	}
}
