package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/pelletier/go-toml/v2"
)

// A replicated switch's tests run three real switchd processes, each with
// its own data folder, keyring and switch certificate, on loopback. Every
// node reaches every other through a UDP forwarder of its own (one per
// direction), so that a test can cut one node off from the others.
//
// CI runs a short kill loop. The long one:
//
//	DIENBAO_GROUP_CYCLES=50 go test ./cmd/switchd -run TestGroupLeaderKillLoop -v -timeout 60m

type groupRig struct {
	t      *testing.T
	bin    string
	dir    string
	cfgs   []*daemon.Config
	gaddrs []string // the nodes' own group addresses
	procs  []*process
	// fw[i][j] carries node i+1's traffic to node j+1.
	fw [][]*daemontest.Forwarder
}

func newGroupRig(t *testing.T) *groupRig {
	g := &groupRig{t: t, bin: buildSwitchd(t), dir: filepath.Join(t.TempDir(), "group")}
	n := daemon.DevGroupSize
	// The nodes' ports are held while the forwarders take theirs, so that
	// none takes a node's.
	var addrs, gaddrs []string
	var held []net.PacketConn
	reserve := func() string {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		return c.LocalAddr().String()
	}
	for range n {
		addrs = append(addrs, reserve())
		gaddrs = append(gaddrs, reserve())
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	cfgs, err := daemon.DevGroupAt(g.dir, addrs, gaddrs)
	if err != nil {
		t.Fatal(err)
	}
	g.fw = make([][]*daemontest.Forwarder, n)
	for i, cfg := range cfgs {
		g.fw[i] = make([]*daemontest.Forwarder, n)
		cfg.Log = "json"
		cfg.HTTP = freeTCPAddr(t)
		cfg.Group.Tick = daemon.Duration(50 * time.Millisecond)
		cfg.Group.SnapshotEvery, cfg.Group.KeepEntries = 200, 20
		cfg.Group.ProposeTimeout = daemon.Duration(3 * time.Second)
		for j := range cfg.Group.Members {
			if j != i {
				g.fw[i][j] = daemontest.NewForwarder(t, gaddrs[j])
				cfg.Group.Members[j].GroupAddress = g.fw[i][j].Addr
			}
		}
		b, err := toml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(g.cfgPath(i), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.cfgs, g.gaddrs = cfgs, gaddrs
	g.procs = make([]*process, n)
	return g
}

func (g *groupRig) cfgPath(i int) string {
	return filepath.Join(g.dir, fmt.Sprintf("node-%d", i+1), "switchd.toml")
}

// scrape reads path from node i's monitoring listener.
func (g *groupRig) scrape(i int, path string) string {
	g.t.Helper()
	resp, err := http.Get("http://" + g.cfgs[i].HTTP + path)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func freeTCPAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (g *groupRig) idDir(name string) string { return filepath.Join(g.dir, "ids", name) }

func (g *groupRig) startNode(i int) {
	g.procs[i] = startSwitchd(g.t, g.bin, "--config", g.cfgPath(i))
}

func (g *groupRig) kill(i int) {
	p := g.procs[i]
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	g.procs[i] = nil
}

// stopAll stops the group with every node holding the same audit log.
// The followers stop first, then the leader (see stopOnce); but an entry
// the leader writes by a timer (admission control ending, a checkpoint)
// can still commit with the second follower after the first has stopped.
// Then the group is started again, caught up, and stopped again (at most
// three times), so that the comparison that follows (openStores) is of a
// group at rest, not of a stop's timing.
func (g *groupRig) stopAll() {
	for round := 1; ; round++ {
		g.stopOnce()
		if g.sameLogs() || round == 3 {
			return
		}
		g.t.Logf("round %d: an entry committed while the group stopped; starting it again to compare at rest", round)
		for i := range g.procs {
			g.startNode(i)
		}
		waitCaughtUp(g.t, g)
	}
}

// sameLogs reports whether every node's audit log (the group stopped)
// has the same leaves.
func (g *groupRig) sameLogs() bool {
	var first []byte
	for i, cfg := range g.cfgs {
		st, err := daemon.OpenStore(cfg)
		if err != nil {
			g.t.Fatalf("node %d: %v", i+1, err)
		}
		h := sha256.New()
		err = st.AuditLeaves(0, 1<<30, func(_ uint64, leaf []byte) error {
			h.Write(leaf)
			h.Write([]byte{0})
			return nil
		})
		st.Close()
		if err != nil {
			g.t.Fatal(err)
		}
		if sum := h.Sum(nil); i == 0 {
			first = sum
		} else if !bytes.Equal(sum, first) {
			return false
		}
	}
	return true
}

// stopOnce stops the followers first, then the leader, so that the
// leader's stop entry is refused for want of a quorum (and committed at
// the group's next start).
func (g *groupRig) stopOnce() {
	live := 0
	for _, p := range g.procs {
		if p != nil {
			live++
		}
	}
	leader := -1
	if live >= 2 {
		leader, _ = g.status()
	}
	for i, p := range g.procs {
		if p != nil && i != leader {
			p.stop(g.t)
			g.procs[i] = nil
		}
	}
	if leader >= 0 && g.procs[leader] != nil {
		g.procs[leader].stop(g.t)
		g.procs[leader] = nil
	}
}

// isolate cuts node i off from the others (both ways), or heals it.
func (g *groupRig) isolate(i int, cut bool) {
	for a := range g.fw {
		for b, f := range g.fw[a] {
			if f != nil && (a == i || b == i) {
				if cut {
					f.Cut()
				} else {
					f.Restore()
				}
			}
		}
	}
}

// groupUntil asks the group (whichever node leads) as the operator until
// ok holds of its answer, for up to 60 s while it elects or catches up.
func (g *groupRig) groupUntil(what string, ok func(wire.GroupStatus) bool) wire.GroupStatus {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := dialFast(g.idDir("operator"))
		if err == nil {
			var st wire.GroupStatus
			st, err = c.Group(context.Background())
			c.Close()
			if err == nil && ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: not within 60 s (%v)\n%s", what, err, g.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status is the leader's index in procs, and the number of members.
func (g *groupRig) status() (leader int, members int) {
	st := g.groupUntil("a leader", func(st wire.GroupStatus) bool { return st.Leader > 0 })
	return int(st.Leader) - 1, len(st.Members)
}

func (g *groupRig) logs() string {
	var s string
	for i, p := range g.procs {
		if p != nil {
			out := p.out.String()
			s += fmt.Sprintf("--- node %d:\n%s\n", i+1, out[max(0, len(out)-3000):])
		}
	}
	return s
}

// openStores opens every node's records (stopped) and checks that their
// audit logs are the same, leaf for leaf, with the same latest signed
// checkpoint, each verifying against every checkpoint; it returns node
// 1's store.
func (g *groupRig) openStores() *store.Store {
	t := g.t
	var first [32]byte
	var firstCP string
	var keep *store.Store
	for i, cfg := range g.cfgs {
		st, err := daemon.OpenStore(cfg)
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		h := sha256.New()
		n := 0
		if err := st.AuditLeaves(0, 1<<30, func(_ uint64, leaf []byte) error {
			h.Write(leaf)
			h.Write([]byte{0})
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		cp, _, err := st.LatestCheckpoint()
		if err != nil {
			t.Fatal(err)
		}
		daemontest.VerifyAudit(t, st)
		if i == 0 {
			first, firstCP, keep = sum, string(cp.Note), st
			t.Logf("node 1: %d audit entries", n)
			continue
		}
		if sum != first {
			t.Errorf("node %d's audit log (%d entries) differs from node 1's", i+1, n)
			if e, err := st.Audit(uint64(max(n, 3)-3), 3); err == nil {
				for _, x := range e {
					t.Logf("node %d: entry %d %s %s", i+1, x.Index, x.Event, x.Reason)
				}
			}
			if e, err := keep.Audit(uint64(max(n, 3)-3), 4); err == nil {
				for _, x := range e {
					t.Logf("node 1: entry %d %s %s", x.Index, x.Event, x.Reason)
				}
			}
		}
		if string(cp.Note) != firstCP {
			t.Errorf("node %d's latest checkpoint differs from node 1's:\n%s\n%s", i+1, cp.Note, firstCP)
		}
		st.Close()
	}
	return keep
}

// TestGroupLeaderKillLoop files and receives through a group of three
// while its leader is killed (SIGKILL) and started again, cycle after
// cycle; then every telegram answered ACCEPTED must be in its addressees'
// inboxes exactly once (later copies flagged), and every node's audit
// log the same, verifying against every checkpoint.
func TestGroupLeaderKillLoop(t *testing.T) {
	cycles := cyclesFromEnv(t, "DIENBAO_GROUP_CYCLES", 3)
	g := newGroupRig(t)
	for i := range g.procs {
		g.startNode(i)
	}
	r := newCrashRig(t, g.dir, g.cfgs[0].Listen)
	r.group = true
	var killedAt time.Time
	var resumes []time.Duration
	var killed int
	r.startFn = func() {
		if !killedAt.IsZero() {
			g.startNode(killed)
		}
		leader, _ := g.status()
		r.mu.Lock()
		r.proc = g.procs[leader]
		r.mu.Unlock()
		if !killedAt.IsZero() {
			// Service resumed: the next ACCEPTED after the kill.
			n := len(r.filings)
			for {
				r.mu.Lock()
				got := len(r.filings) > n
				r.mu.Unlock()
				if got {
					resumes = append(resumes, time.Since(killedAt))
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	r.killFn = func() {
		leader, _ := g.status()
		killed, killedAt = leader, time.Now()
		g.kill(leader)
	}
	r.finish = func() { waitCaughtUp(t, g); g.stopAll() }
	r.openStore = g.openStores
	r.run(cycles)
	sort.Slice(resumes, func(i, j int) bool { return resumes[i] < resumes[j] })
	if len(resumes) > 0 {
		t.Logf("group kill loop: %d leader kills; from kill to the next ACCEPTED (taken after the leader was found again): p50 %v, p99 %v, max %v",
			cycles, resumes[len(resumes)/2], resumes[min(len(resumes)-1, len(resumes)*99/100)], resumes[len(resumes)-1])
	}
}

// TestGroupMinorityAndMajority cuts the leader off from the others: it
// accepts nothing and says so, while the two others elect a leader and
// go on; healed, it catches up. Then two of three are killed: the
// survivor refuses filings with a clear error; the others restarted,
// everything accepted before is there.
func TestGroupMinorityAndMajority(t *testing.T) {
	g := newGroupRig(t)
	for i := range g.procs {
		g.startNode(i)
	}
	send := func(idDir, ref string) (telegram.ID, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := dialIn(ctx, t, idDir)
		if err != nil {
			return telegram.ID{}, err
		}
		defer c.Close()
		res, err := c.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Precedence: telegram.Routine, Ref: ref, Body: []byte(ref)})
		return res.ID, err
	}
	var accepted []telegram.ID
	for i := range 5 {
		id, err := send(g.idDir("HN.UBND"), fmt.Sprintf("before-%d", i))
		if err != nil {
			t.Fatalf("filing before the cut: %v\n%s", err, g.logs())
		}
		accepted = append(accepted, id)
	}

	// The minority: the leader cut off.
	old, _ := g.status()
	g.isolate(old, true)
	// A terminal that knows only the old leader's address.
	only := filepath.Join(t.TempDir(), "only-old")
	copyFolder(t, g.idDir("HN.UBND"), only, g.cfgs[old].Listen)
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// Until it notices it lost its quorum, the old leader takes the
		// request but cannot commit it: the answer is an error, never
		// ACCEPTED. Then it answers "not leader".
		_, lastErr = send(only, "cut-off")
		if lastErr == nil {
			t.Fatalf("the cut-off node accepted a telegram")
		}
		if client.NotLeader(lastErr) {
			break
		}
	}
	if !client.NotLeader(lastErr) {
		t.Fatalf("the cut-off node did not say it is not the leader: %v", lastErr)
	}
	t.Logf("the cut-off node answers: %v", lastErr)
	leader, _ := g.status()
	if leader == old {
		t.Fatalf("the cut-off node still leads")
	}
	// Its metrics say so; the new leader's say it leads, and its console
	// shows the group.
	if m := g.scrape(old, "/metrics"); !strings.Contains(m, "dienbao_group_leader 0") || !strings.Contains(m, "dienbao_group_has_leader 0") {
		t.Errorf("the cut-off node's metrics do not show it without a leader:\n%s", m)
	}
	if m := g.scrape(leader, "/metrics"); !strings.Contains(m, "dienbao_group_leader 1") || !strings.Contains(m, "dienbao_group_member_lag_entries") {
		t.Errorf("the new leader's metrics do not show it leading:\n%s", m)
	}
	if st := g.scrape(leader, "/api/state"); !strings.Contains(st, `"group":{"node":`+strconv.Itoa(leader+1)+`,"state":"leader"`) {
		t.Errorf("the console's state does not show the group: %s", st)
	}
	for i := range 300 { // past the snapshot interval: the node catches up from a snapshot
		id, err := send(g.idDir("HN.UBND"), fmt.Sprintf("majority-%d", i))
		if err != nil {
			t.Fatalf("the majority did not serve: %v", err)
		}
		accepted = append(accepted, id)
	}
	g.isolate(old, false)
	waitCaughtUp(t, g)

	// The majority lost: two killed, the survivor refuses.
	leader, _ = g.status()
	survivor := (leader + 1) % 3
	for i := range 3 {
		if i != survivor {
			g.kill(i)
		}
	}
	only2 := filepath.Join(t.TempDir(), "only-survivor")
	copyFolder(t, g.idDir("HN.UBND"), only2, g.cfgs[survivor].Listen)
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, lastErr = send(only2, "alone")
		if lastErr == nil {
			t.Fatalf("the survivor accepted a telegram it cannot replicate")
		}
		if client.NotLeader(lastErr) && strings.Contains(lastErr.Error(), "cannot reach a quorum") {
			break
		}
	}
	if !strings.Contains(lastErr.Error(), "cannot reach a quorum") {
		t.Fatalf("the survivor did not refuse clearly: %v", lastErr)
	}
	t.Logf("the survivor answers: %v", lastErr)
	for i := range 3 {
		if i != survivor {
			g.startNode(i)
		}
	}
	g.status()
	// Everything accepted is there, once: drain NA.UBND's inbox.
	c := dialWhenUpGroup(t, g, "NA.UBND")
	inbox := &client.Inbox{Dir: filepath.Join(t.TempDir(), "inbox")}
	h := &inboxCounter{inbox: inbox, seen: map[telegram.ID]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Receive(ctx, client.ReceiveOptions{Inbox: true}, h); err != nil {
		t.Fatal(err)
	}
	for _, id := range accepted {
		if h.seen[id] != 1 {
			t.Errorf("accepted telegram %s stored %d times", id, h.seen[id])
		}
	}
	if len(h.seen) != len(accepted) {
		t.Errorf("the inbox holds %d telegrams, %d were accepted", len(h.seen), len(accepted))
	}
	waitCaughtUp(t, g)
	g.stopAll()
	g.openStores().Close()
	// A stolen disk of any node: nothing readable in its data folder,
	// Raft's log included.
	for i, cfg := range g.cfgs {
		filepath.WalkDir(cfg.Data, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"majority-1", "before-2", "HN.UBND", "NA.UBND", "PRIVATE KEY"} {
				if bytes.Contains(b, []byte(m)) {
					t.Errorf("node %d: %s holds %q in plaintext", i+1, path, m)
				}
			}
			return nil
		})
	}
}

// TestGroupWipedFollower replaces a follower whose disk was wiped
// (records, keyring, Raft log): an operator removes it from the group and
// adds it back under a new ID (tg group remove, tg group add); started
// with join = true, it is sent the leader's records as a snapshot, the
// log having been compacted meanwhile.
func TestGroupWipedFollower(t *testing.T) {
	g := newGroupRig(t)
	for i := range g.procs {
		g.startNode(i)
	}
	leader, _ := g.status()
	f := (leader + 1) % 3
	g.procs[f].stop(t)
	g.procs[f] = nil
	if err := os.RemoveAll(g.cfgs[f].Data); err != nil {
		t.Fatal(err)
	}
	op := dialWhenUpGroup(t, g, "operator")
	st, err := op.GroupRemove(context.Background(), uint64(f+1))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 2 {
		t.Fatalf("after the removal, %d members", len(st.Members))
	}
	c := dialWhenUpGroup(t, g, "HN.UBND")
	for i := range 300 { // past the snapshot interval: the log is compacted
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := c.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Precedence: telegram.Routine, Ref: fmt.Sprintf("w-%d", i), Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	c.Close()
	old := g.cfgs[f].Group.Members[f]
	m := daemon.GroupMember{ID: 4, Name: old.Name, Address: old.Address, GroupAddress: g.gaddrs[f]}
	if _, err := op.GroupAdd(context.Background(), wire.GroupMember{ID: m.ID, Name: m.Name, Addr: m.Address, GroupAddr: m.GroupAddress}); err != nil {
		t.Fatal(err)
	}
	op.Close()
	cfg := g.cfgs[f]
	cfg.Group.Node, cfg.Group.Join = 4, true
	cfg.Group.Members[f] = m
	b, err := toml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.cfgPath(f), b, 0o644); err != nil {
		t.Fatal(err)
	}
	g.startNode(f)
	waitCaughtUp(t, g)
	// The node's log is written through a buffer flushed every few
	// hundred milliseconds.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(g.procs[f].out.String(), "snapshot loaded") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(g.procs[f].out.String(), "snapshot loaded") {
		var why []string
		for i, p := range g.procs {
			for _, l := range strings.Split(p.out.String(), "\n") {
				if strings.Contains(l, "napshot") || strings.Contains(l, "became") || strings.Contains(l, "switched to configuration") {
					why = append(why, fmt.Sprintf("node %d: %.300s", i+1, l))
				}
			}
		}
		t.Errorf("the new node did not load a snapshot:\n%s", strings.Join(why, "\n"))
	}
	g.stopAll()
	g.openStores().Close()
}

// waitCaughtUp waits until every member holds the leader's last entry.
func waitCaughtUp(t *testing.T, g *groupRig) {
	t.Helper()
	g.groupUntil("every member caught up", func(st wire.GroupStatus) bool {
		return len(st.Members) == 3 && !slices.ContainsFunc(st.Members, func(m wire.GroupMember) bool { return m.Match < st.LastIndex })
	})
}

// dialIn connects as the identity in idDir (finding the group's leader).
func dialIn(ctx context.Context, t *testing.T, idDir string) (*client.Client, error) {
	t.Helper()
	f, err := certs.LoadFolder(idDir)
	if err != nil {
		t.Fatal(err)
	}
	return client.Dial(ctx, f)
}

func dialWhenUpGroup(t *testing.T, g *groupRig, name string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := dialIn(ctx, t, g.idDir(name))
	if err != nil {
		t.Fatalf("%v\n%s", err, g.logs())
	}
	return c
}

// copyFolder copies an identity folder, naming only addr as the switch.
func copyFolder(t *testing.T, from, to, addr string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{certs.FolderCert, certs.FolderKey, certs.FolderCA} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(to, certs.FolderSwitch), []byte(addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

type inboxCounter struct {
	mu    sync.Mutex
	inbox *client.Inbox
	seen  map[telegram.ID]int
}

func (h *inboxCounter) Telegram(d client.Delivery) error {
	stored, err := h.inbox.Store(d)
	if err != nil || !stored {
		return err
	}
	h.mu.Lock()
	h.seen[d.Header.ID]++
	h.mu.Unlock()
	return nil
}

func (h *inboxCounter) Receipt(telegram.Receipt) error { return nil }

// TestGroupInboxFollowsTheLeader: one Receive with Follow (tg inbox
// --follow) goes on across a change of leader: the telegrams filed before
// and after the leader is killed all reach it, and it never returns.
func TestGroupInboxFollowsTheLeader(t *testing.T) {
	g := newGroupRig(t)
	for i := range g.procs {
		g.startNode(i)
	}
	g.status()
	rc := dialWhenUpGroup(t, g, "NA.UBND")
	h := &inboxCounter{inbox: &client.Inbox{Dir: filepath.Join(t.TempDir(), "inbox")}, seen: map[telegram.ID]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- rc.Receive(ctx, client.ReceiveOptions{Inbox: true, Follow: true}, h) }()
	send := func(ref string) telegram.ID {
		c := dialWhenUpGroup(t, g, "HN.UBND")
		defer c.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer scancel()
		res, err := c.Send(sctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Precedence: telegram.Immediate, Ref: ref, Body: []byte(ref)})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	wait := func(id telegram.ID) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			h.mu.Lock()
			n := h.seen[id]
			h.mu.Unlock()
			if n == 1 {
				return
			}
			select {
			case err := <-ended:
				t.Fatalf("Receive with Follow returned: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not reach the following inbox\n%s", id, g.logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(send("before"))
	for k := range 2 {
		leader, _ := g.status()
		g.kill(leader)
		wait(send(fmt.Sprintf("after-%d", k)))
		g.startNode(leader)
	}
	cancel()
	if err := <-ended; err != nil {
		t.Errorf("Receive ended with %v", err)
	}
	if len(h.seen) != 3 {
		t.Errorf("the inbox holds %d telegrams, want 3", len(h.seen))
	}
}
